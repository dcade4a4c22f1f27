#!/usr/bin/python3
"""Recompute the SDK-HMAC-SHA256 Authorization of one request with sdk_signer.

    /usr/bin/python3 spec/mock/verify_logged.py REQUEST.json

REQUEST.json is one entry of the mock's log (GET /_mock/log) plus the
credentials: {"method", "path" (raw target, with the query), "headers":
[[name, value], ...], "body" (latin-1 text, as logged), "ak", "sk"}.
The signed header list and the date are taken from the request's own
Authorization and X-Sdk-Date headers. Prints one JSON object:
{"authorization": <recomputed>, "given": <the request's>, "ok": bool,
"reason": str, "canonical_request": str}. Exit status 2 on unusable input.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdk_signer  # noqa: E402


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], "rb") as f:
        req = json.loads(f.read().decode("utf-8"))
    headers = [(h[0], h[1]) for h in req["headers"]]
    body = req.get("body") or ""
    body = body.encode("latin-1")
    path, _, query = req["path"].partition("?")
    given = None
    date = None
    for name, value in headers:
        if name.lower() == "authorization" and given is None:
            given = value
        if name.lower() == "x-sdk-date" and date is None:
            date = value
    parsed = sdk_signer.parse_authorization(given)
    if parsed is None or date is None:
        print(json.dumps({"authorization": None, "given": given, "ok": False,
                          "reason": "no SDK-HMAC-SHA256 Authorization or no X-Sdk-Date",
                          "canonical_request": None}))
        return 2
    signed = parsed["signed_headers"]
    unsigned = [(n, v) for n, v in headers if n.lower() != "authorization"]
    again = sdk_signer.sign(req["method"], path, query, unsigned, body, req["ak"], req["sk"],
                            date=date, signed_headers=signed)
    ok, reason = sdk_signer.verify(req["method"], path, query, headers, body, req["ak"], req["sk"], given)
    creq, _ = sdk_signer.canonical_request(req["method"], path, query, unsigned, body, signed)
    print(json.dumps({"authorization": again, "given": given, "ok": ok, "reason": reason,
                      "canonical_request": creq}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
