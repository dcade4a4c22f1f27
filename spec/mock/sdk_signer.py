#!/usr/bin/python3
"""Independent implementation of Huawei Cloud's SDK-HMAC-SHA256 signature.

Written from the algorithm in /work/shared/API.md and the behaviour of the
official signers (huaweicloudsdkcore / apig-sdk): query keys and values are
percent-decoded (a '+' stays a literal '+'), then re-encoded with RFC 3986
(unreserved A-Z a-z 0-9 - _ . ~ kept, space -> %20).

    sign(method, raw_path, raw_query, headers_list, body_bytes, ak, sk, date,
         signed_headers=None) -> "SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=..."
    verify(method, raw_path, raw_query, headers_list, body_bytes, ak, sk,
           authorization) -> (ok: bool, reason: str)

headers_list is a list of (name, value) pairs as sent; `date` (YYYYMMDDTHHMMSSZ)
is taken from X-Sdk-Date in headers_list when not given. Run this file to
check the five published test vectors (exit status 1 on any mismatch).
"""
import hashlib
import hmac
import sys
from urllib.parse import quote_from_bytes, unquote_to_bytes

ALGORITHM = "SDK-HMAC-SHA256"
UNRESERVED_SAFE = b"-_.~"  # quote_from_bytes keeps A-Z a-z 0-9 and "_.-~" anyway


def _enc(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return quote_from_bytes(b, safe="~")


def _to_str(x):
    if isinstance(x, bytes):
        return x.decode("latin-1")
    return x


def canonical_uri(raw_path):
    raw_path = _to_str(raw_path) or "/"
    segs = raw_path.split("/")
    out = "/".join(_enc(unquote_to_bytes(s)) for s in segs)
    if not out.endswith("/"):
        out += "/"
    return out


def parse_query(raw_query):
    raw_query = _to_str(raw_query) or ""
    pairs = []
    if raw_query.startswith("?"):
        raw_query = raw_query[1:]
    for kv in raw_query.split("&"):
        if kv == "":
            continue
        k, _, v = kv.partition("=")
        if k == "":
            continue
        pairs.append((unquote_to_bytes(k), unquote_to_bytes(v)))
    return pairs


def canonical_query(raw_query):
    pairs = sorted(parse_query(raw_query))
    return "&".join(_enc(k) + "=" + _enc(v) for k, v in pairs)


def _header_map(headers_list):
    m = {}
    for name, value in headers_list:
        name = _to_str(name).lower()
        value = _to_str(value)
        if name not in m:
            m[name] = value
    return m


def canonical_request(method, raw_path, raw_query, headers_list, body_bytes, signed_headers):
    hm = _header_map(headers_list)
    signed = sorted(h.lower() for h in signed_headers)
    ch = "".join("%s:%s\n" % (h, hm.get(h, "").strip()) for h in signed)
    if body_bytes is None:
        body_bytes = b""
    if isinstance(body_bytes, str):
        body_bytes = body_bytes.encode("utf-8")
    return "\n".join([
        method.upper(),
        canonical_uri(raw_path),
        canonical_query(raw_query),
        ch,
        ";".join(signed),
        hashlib.sha256(body_bytes).hexdigest(),
    ]), signed


def string_to_sign(canon_req, date):
    return "%s\n%s\n%s" % (ALGORITHM, date, hashlib.sha256(canon_req.encode("latin-1")).hexdigest())


def signature(method, raw_path, raw_query, headers_list, body_bytes, sk, date, signed_headers):
    creq, signed = canonical_request(method, raw_path, raw_query, headers_list, body_bytes, signed_headers)
    sts = string_to_sign(creq, date)
    sig = hmac.new(_to_bytes(sk), sts.encode("latin-1"), hashlib.sha256).hexdigest()
    return sig, signed


def _to_bytes(x):
    return x.encode("utf-8") if isinstance(x, str) else x


def default_signed_headers(headers_list):
    names = []
    for name, _ in headers_list:
        n = _to_str(name).lower()
        if "_" in n or n in names:
            continue
        names.append(n)
    return sorted(names)


def sign(method, raw_path, raw_query, headers_list, body_bytes, ak, sk, date=None, signed_headers=None):
    headers_list = list(headers_list)
    hm = _header_map(headers_list)
    if date is None:
        date = hm.get("x-sdk-date")
    if "x-sdk-date" not in hm:
        headers_list.append(("X-Sdk-Date", date))
    if signed_headers is None:
        signed_headers = default_signed_headers(headers_list)
    sig, signed = signature(method, raw_path, raw_query, headers_list, body_bytes, sk, date, signed_headers)
    return "%s Access=%s, SignedHeaders=%s, Signature=%s" % (ALGORITHM, ak, ";".join(signed), sig)


def parse_authorization(auth):
    """-> dict with access, signed_headers (list), signature; or None."""
    auth = _to_str(auth or "")
    if not auth.startswith(ALGORITHM + " "):
        return None
    out = {}
    for part in auth[len(ALGORITHM) + 1:].split(","):
        k, _, v = part.strip().partition("=")
        out[k.strip().lower()] = v.strip()
    if not all(k in out for k in ("access", "signedheaders", "signature")):
        return None
    return {
        "access": out["access"],
        "signed_headers": [h for h in out["signedheaders"].split(";") if h],
        "signature": out["signature"],
    }


def verify(method, raw_path, raw_query, headers_list, body_bytes, ak, sk, authorization=None):
    """Check an Authorization header (taken from headers_list when not given)."""
    hm = _header_map(headers_list)
    if authorization is None:
        authorization = hm.get("authorization")
    p = parse_authorization(authorization)
    if p is None:
        return False, "malformed Authorization"
    if p["access"] != ak:
        return False, "unknown AK"
    date = hm.get("x-sdk-date")
    if not date:
        return False, "missing X-Sdk-Date"
    if "x-sdk-date" not in [h.lower() for h in p["signed_headers"]]:
        return False, "X-Sdk-Date not signed"
    for h in p["signed_headers"]:
        if h.lower() not in hm:
            return False, "signed header %s missing" % h
    sig, _ = signature(method, raw_path, raw_query, headers_list, body_bytes, sk, date, p["signed_headers"])
    if not hmac.compare_digest(sig, p["signature"].lower()):
        return False, "signature mismatch"
    return True, "ok"


VECTORS = [
    dict(ak="AccessKey", sk="SecretKey", method="GET", path="/path", query="limit=1",
         headers=[("X-Sdk-Date", "20060102T150405Z")], body=b"",
         expect="SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, "
                "Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"),
    dict(ak="AccessKey", sk="SecretKey", method="POST", path="/path", query="key=value",
         headers=[("X-Sdk-Date", "20060102T150405Z")], body=b'{"Name":"test","Id":1}\n',
         expect="SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, "
                "Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59"),
    dict(ak="AccessKey", sk="SecretKey", method="GET", path="/resources", query="size=1",
         headers=[("Host", "service.endpoint.myhuaweicloud.com"), ("X-Sdk-Date", "20200608T023900Z")], body=b"",
         expect="SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, "
                "Signature=cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"),
    dict(ak="AccessKey", sk="SecretKey", method="POST", path="/resources", query="size=1",
         headers=[("Host", "service.endpoint.myhuaweicloud.com"), ("X-Sdk-Date", "20200608T023900Z")],
         body=b'{"name":"test","id":1}',
         expect="SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, "
                "Signature=436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f"),
    dict(ak="QTWAOYTTINDUT2QVKYUC", sk="MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc", method="GET",
         path="/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
         query="limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
         headers=[("Content-Type", "application/json"), ("Host", "service.region.example.com"),
                  ("X-Sdk-Date", "20191115T033655Z")], body=b"",
         expect="SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, "
                "Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"),
]


def self_test(verbose=True):
    bad = 0
    for i, v in enumerate(VECTORS, 1):
        got = sign(v["method"], v["path"], v["query"], v["headers"], v["body"], v["ak"], v["sk"])
        ok = got == v["expect"]
        if ok:
            hdrs = v["headers"] + [("Authorization", got)]
            ok2, why = verify(v["method"], v["path"], v["query"], hdrs, v["body"], v["ak"], v["sk"])
            if not ok2:
                ok = False
                got += " (verify: %s)" % why
            # a tampered body must fail verification
            ok3, _ = verify(v["method"], v["path"], v["query"], hdrs, v["body"] + b"x", v["ak"], v["sk"])
            if ok3:
                ok = False
                got += " (verify accepted a tampered body)"
        if not ok:
            bad += 1
        if verbose or not ok:
            print("vector %d: %s%s" % (i, "ok" if ok else "MISMATCH\n  got:    ", "" if ok else got +
                                       "\n  expect: " + v["expect"]))
    # encoding checks
    checks = [
        (canonical_uri("/a b/c"), "/a%20b/c/"),
        (canonical_uri("/v1/p/x%2Fy/"), "/v1/p/x%2Fy/"),
        (canonical_uri(""), "/"),
        (canonical_query("b=2&a=1&a=0&c=&d"), "a=0&a=1&b=2&c=&d="),
        (canonical_query("q=a%20b&r=a+b&s=~*"), "q=a%20b&r=a%2Bb&s=~%2A"),
    ]
    for got, want in checks:
        if got != want:
            bad += 1
            print("encoding MISMATCH: got %r want %r" % (got, want))
    return bad == 0


if __name__ == "__main__":
    sys.exit(0 if self_test(verbose="-q" not in sys.argv) else 1)
