#!/usr/bin/python3
"""Mock Huawei Cloud VPC Endpoint (VPCEP) service for the vpcep test suite.

    /usr/bin/python3 spec/mock/server.py --port 0 --port-file FILE \
        [--tls-cert CERT --tls-key KEY] [--quiet]

Python standard library only. Listens on 127.0.0.1. See README.md beside this
file for the control API (/_mock/...).
"""
import argparse
import datetime
import io
import json
import os
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdk_signer  # noqa: E402
import iam  # noqa: E402

DEFAULT_AUTH = {
    "token": "mock-token",
    "ak": "MOCKAK0000000000000X",
    "sk": "mock-secret-key-0123456789",
    "security_token": None,
}
DEFAULT_CONFIG = {"delay_ms": 0, "transition_ms": 0, "skew_check": True}
STATUSES = ("pendingAcceptance", "creating", "accepted", "rejected", "failed", "deleting")
BASE_TIME = datetime.datetime(2024, 1, 1, 0, 0, 0, tzinfo=datetime.timezone.utc)
FIELDS = ("id", "marker_id", "created_at", "updated_at", "domain_id", "status", "description")

API_RE = re.compile(r"^/v1/([^/?]+)/vpc-endpoint-services/([^/?]+)/connections(/action)?$")
DESC_RE = re.compile(r"^/v1/([^/?]+)/vpc-endpoint-services/([^/?]+)/connections/description$")
DESC_MAX = 512  # bytes of UTF-8, the service's cap on a description

QUIET = False


def fmt_time(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso():
    return fmt_time(datetime.datetime.now(datetime.timezone.utc))


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.stats_lock = threading.Lock()
        self.connections_opened = 0
        self.connections_open = 0  # accepted and not yet closed (the stats call's own included)
        self.requests = 0
        self.in_flight = 0       # API requests being answered now
        # Of the API requests that arrived since the last reset or
        # stats/clear (an epoch), how many are being answered now and the
        # most at once: a request left hanging by an earlier test is not
        # counted.
        self.epoch = 0
        self.epoch_in_flight = 0
        self.max_in_flight = 0
        self.marker_seq = 100000000000
        self.iam = iam.IamState()
        self.reset()

    def reset(self):
        with self.lock:
            self.services = {}
            self.faults = []
            self.log = []
            self.config = dict(DEFAULT_CONFIG)
            self.auth = dict(DEFAULT_AUTH)
            self.iam.reset()
        self.new_epoch()

    def new_epoch(self):
        with self.stats_lock:
            self.epoch += 1
            self.epoch_in_flight = 0
            self.max_in_flight = 0

    def next_marker(self):
        with self.lock:
            self.marker_seq += 1
            return self.marker_seq

    # -- connections -------------------------------------------------------
    def make_conn(self, spec, index):
        created = fmt_time(BASE_TIME + datetime.timedelta(seconds=index))
        c = {
            "id": str(spec.get("id")),
            "marker_id": spec["marker_id"] if "marker_id" in spec else self.next_marker(),
            "created_at": spec.get("created_at", created),
            "updated_at": spec.get("updated_at", spec.get("created_at", created)),
            "domain_id": spec.get("domain_id", "d0"),
            "status": spec.get("status", "pendingAcceptance"),
            "description": spec.get("description", ""),
        }
        if "error" in spec:
            c["error"] = spec["error"]
        elif c["status"] == "failed":
            c["error"] = [{"error_code": "EndPoint.9999", "error_message": "seeded as failed"}]
        c["_fail_with"] = spec.get("fail_with")
        c["_until"] = None
        c["_final"] = None
        return c

    @staticmethod
    def settle(c):
        """Apply a pending creating -> accepted/failed transition (lazily)."""
        if c.get("_until") is not None and time.monotonic() >= c["_until"]:
            c["status"] = c["_final"]
            if c["_final"] == "failed":
                fw = c["_fail_with"] or {}
                c["error"] = [{"error_code": fw.get("error_code", ""),
                               "error_message": fw.get("error_message", "")}]
            c["_until"] = None
            c["_final"] = None

    @staticmethod
    def public(c):
        out = {k: c[k] for k in FIELDS}
        if c["status"] == "failed" and "error" in c:
            out["error"] = c["error"]
        return out


STATE = State()


def new_request_id():
    return uuid.uuid4().hex


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, handler, ssl_ctx=None):
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, handler)
        if ssl_ctx is not None:
            self.socket = ssl_ctx.wrap_socket(self.socket, server_side=True,
                                              do_handshake_on_connect=False)

    def get_request(self):
        sock, addr = self.socket.accept()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with STATE.stats_lock:
            STATE.connections_opened += 1
            STATE.connections_open += 1
        return sock, addr

    def shutdown_request(self, request):
        # every accepted connection ends here once its thread is done with it
        try:
            super().shutdown_request(request)
        finally:
            with STATE.stats_lock:
                STATE.connections_open -= 1

    def handle_error(self, request, client_address):
        if not QUIET:
            super().handle_error(request, client_address)


class Abort(Exception):
    """The connection was closed on purpose; stop handling it."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vpcep-mock/1.0"
    timeout = 300
    hold_answer = False  # send() keeps the answer in last_sent instead of writing it
    last_sent = b""      # the bytes of the last answer send() built
    list_fault = None    # the rule whose list_total / list_cycle shapes this list answer

    def version_string(self):
        return self.server_version

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    def log_message(self, format, *args):
        if not QUIET:
            sys.stderr.write("mock: %s - %s\n" % (self.address_string(), format % args))

    # -- plumbing ------------------------------------------------------------
    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except Abort:
            self.close_connection = True

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                out += self.rfile.read(size)
                self.rfile.readline(65537)
            return bytes(out)
        n = self.headers.get("Content-Length")
        if n:
            try:
                n = int(n)
            except ValueError:
                n = 0
            if n > 0:
                return self.rfile.read(n)
        return b""

    def send(self, status, body=b"", headers=None, content_type="application/json", request_id=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        hdrs = {"Content-Type": content_type, "X-Request-Id": request_id or self.request_id}
        lower = {k.lower(): k for k in hdrs}
        for k, v in (headers or {}).items():
            if k.lower() in lower:
                del hdrs[lower[k.lower()]]
            hdrs[k] = v
            lower[k.lower()] = k
        self.send_response(status)
        for k, v in hdrs.items():
            if v is not None and k.lower() != "content-length":
                self.send_header(k, str(v))
        if "content-length" in lower and hdrs.get(lower["content-length"]) is not None:
            self.send_header("Content-Length", str(hdrs[lower["content-length"]]))
        else:
            self.send_header("Content-Length", str(len(body)))
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.last_sent = b"".join(self._headers_buffer)
        if self.hold_answer:
            self._headers_buffer = []
            return
        self.flush_headers()

    def send_json(self, status, doc, headers=None):
        self.send(status, json.dumps(doc), headers)

    def flat_error(self, status, code, msg):
        self.send_json(status, {"error_code": code, "error_msg": msg})

    def gw_error(self, status, code, msg):
        self.send_json(status, {"error_code": code, "error_msg": msg, "request_id": self.request_id})

    def abort(self, rst=False):
        sock = self.connection
        try:
            if rst:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                try:
                    self.wfile.flush()
                except Exception:
                    pass
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        except OSError:
            pass
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except Exception:
                pass
        try:
            sock.close()
        except OSError:
            pass
        self.rfile = io.BytesIO()
        self.wfile = io.BytesIO()
        self.close_connection = True
        raise Abort()

    # -- dispatch ------------------------------------------------------------
    def dispatch(self):
        self.request_id = new_request_id()
        self.hold_answer = False
        self.last_sent = b""
        self.list_fault = None
        body = self.read_body()
        target = self.path
        if target.startswith("http://") or target.startswith("https://"):
            rest = target.split("://", 1)[1]
            target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        path, _, query = target.partition("?")
        if path.startswith("/_mock/") or path == "/_mock":
            return self.control(path, query, body)

        with STATE.lock:
            STATE.log.append({
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("latin-1"),
                "time": time.time(),
                "request_id": self.request_id,
            })
        with STATE.lock:
            name = iam.endpoint_name(self.command, path)
            STATE.iam.counts[name] += 1
        with STATE.stats_lock:
            STATE.requests += 1
            STATE.in_flight += 1
            STATE.epoch_in_flight += 1
            STATE.max_in_flight = max(STATE.max_in_flight, STATE.epoch_in_flight)
            epoch = STATE.epoch
        try:
            self.answer_api(path, query, body)
        finally:
            with STATE.stats_lock:
                STATE.in_flight -= 1
                if epoch == STATE.epoch:
                    STATE.epoch_in_flight -= 1

    def answer_api(self, path, query, body):
        rule = self.match_fault(path, query, body)
        extra = rule is not None and rule.get("extra") not in (None, False)
        self.hold_answer = extra and bool(rule.get("extra_same_write"))
        if rule is None or not self.apply_fault(rule, query):
            delay = STATE.config.get("delay_ms") or 0
            if delay:
                time.sleep(delay / 1000.0)
            self.api(path, query, body)
        if extra:
            self.send_extra(rule)

    def send_extra(self, rule):
        """After the answer, one more complete answer nobody asked for, on
        the same kept-alive connection: a copy of the answer (extra = true),
        the one given (an object, like answer), or raw bytes (a string)."""
        same_write, real = self.hold_answer, self.last_sent
        if rule["extra"] is True:
            extra = real
        elif isinstance(rule["extra"], str):
            extra = rule["extra"].encode("latin-1")
        else:
            self.hold_answer = True
            self.send_answer(rule["extra"])
            extra = self.last_sent
        self.hold_answer = False
        if same_write:
            data = real + extra
        else:
            time.sleep((rule.get("extra_delay_ms", 100) or 0) / 1000.0)
            data = extra
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass
        with STATE.lock:
            rule["_extra_sent"] = rule.get("_extra_sent", 0) + 1

    # -- faults --------------------------------------------------------------
    def endpoint_of(self, query, body):
        ids = set()
        for k, v in parse_qsl(query, keep_blank_values=True):
            if k == "id":
                ids.add(v)
        try:
            doc = json.loads(body.decode("utf-8")) if body else None
            if isinstance(doc, dict) and isinstance(doc.get("endpoints"), list):
                for e in doc["endpoints"]:
                    if isinstance(e, str):
                        ids.add(e)
        except Exception:
            pass
        return ids

    def match_fault(self, path, query, body):
        with STATE.lock:
            for rule in STATE.faults:
                if rule.get("_left") == 0:
                    continue
                m = rule.get("match") or {}
                if "method" in m and m["method"].upper() != self.command:
                    continue
                if "path_contains" in m and m["path_contains"] not in self.path:
                    continue
                if "endpoint" in m and m["endpoint"] not in self.endpoint_of(query, body):
                    continue
                if rule["_left"] is not None:
                    rule["_left"] -= 1
                rule["_hits"] = rule.get("_hits", 0) + 1
                return rule
        return None

    def apply_fault(self, rule, query=""):
        """Returns True when the request has been answered (or the socket closed)."""
        if rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        if rule.get("reset"):
            self.abort(rst=True)
        if rule.get("hang_ms") is not None:
            time.sleep(rule["hang_ms"] / 1000.0)
            self.abort()
        if rule.get("raw") is not None:
            try:
                self.wfile.write(rule["raw"].encode("latin-1"))
            except OSError:
                pass
            self.abort()
        if rule.get("truncate"):
            ans = rule.get("answer") or {}
            status = ans.get("status", 200)
            if "body" in ans:
                body = ans["body"].encode("utf-8")
            elif "json" in ans:
                body = json.dumps(ans["json"]).encode("utf-8")
            else:
                body = json.dumps({"connections": [{"id": "truncated", "marker_id": 1,
                                                    "status": "accepted", "description": "x" * 200}]
                                   }).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Request-Id", self.request_id)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body[: len(body) // 2])
            except OSError:
                pass
            self.abort()
        if rule.get("redirect"):
            self.send(302, json.dumps({"error_code": "APIGW.0302", "error_msg": "moved"}),
                      {"Location": rule["redirect"]})
            return True
        if rule.get("big_body") is not None:
            n = int(rule["big_body"])
            head = '{"connections":[],"total_count":0,"pad":"'
            tail = '"}'
            pad = max(0, n - len(head) - len(tail))
            self.send(200, head + "x" * pad + tail)
            return True
        if "answer" in rule:
            self.send_answer(rule["answer"])
            return True
        if rule.get("list_endless") is not None:
            return self.endless_page(rule, int(rule["list_endless"]), query)
        if rule.get("list_total") is not None or rule.get("list_cycle") is not None:
            self.list_fault = rule
        return False

    def send_answer(self, ans):
        ans = ans or {}
        if "body" in ans:
            body = ans["body"]
            if isinstance(body, str):
                try:
                    body = body.encode("latin-1")
                except UnicodeEncodeError:
                    body = body.encode("utf-8")
        elif "json" in ans:
            body = json.dumps(ans["json"])
        else:
            body = b""
        self.send(int(ans.get("status", 200)), body, ans.get("headers") or {})

    def endless_page(self, rule, n, query):
        """A list page of n connections never listed before, whose
        total_count always promises one more (none with list_total false)."""
        q = dict(parse_qsl(query, keep_blank_values=True))
        offset = int(q["offset"]) if q.get("offset", "").isdigit() else 0
        conns = [State.public(STATE.make_conn({"id": "endless-%d" % (offset + i)}, offset + i))
                 for i in range(n)]
        doc = {"connections": conns, "total_count": offset + n + 1}
        if rule.get("list_total") is False:
            del doc["total_count"]
        self.send_json(200, doc)
        return True

    # -- auth ----------------------------------------------------------------
    def authenticate(self, project_id, body):
        auth = STATE.auth
        token = self.headers.get("X-Auth-Token")
        if token is not None:
            if auth.get("token") is not None and token == auth["token"]:
                return True
            with STATE.lock:
                if STATE.iam.token_ok(token):
                    return True
            self.gw_error(401, "APIGW.0301", "Incorrect IAM authentication information: token invalid")
            return False
        authz = self.headers.get("Authorization")
        if authz is not None and authz.startswith("SDK-HMAC-SHA256 "):
            hdrs = list(self.headers.items())
            path, _, query = self.path.partition("?")
            parsed = sdk_signer.parse_authorization(authz)
            if parsed is None:
                self.gw_error(401, "APIGW.0301",
                              "Incorrect IAM authentication information: Authorization format incorrect")
                return False
            date = self.headers.get("X-Sdk-Date") or ""
            try:
                dt = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
            except ValueError:
                self.gw_error(401, "APIGW.0301",
                              "Incorrect IAM authentication information: x-sdk-date invalid")
                return False
            if STATE.config.get("skew_check", True):
                skew = abs((datetime.datetime.now(datetime.timezone.utc) - dt).total_seconds())
                if skew > 15 * 60:
                    self.gw_error(401, "APIGW.0303",
                                  "Incorrect app authentication information: the request has expired")
                    return False
            ak, sk, st = auth.get("ak"), auth.get("sk"), auth.get("security_token")
            with STATE.lock:
                tmp = STATE.iam.key_of(parsed["access"]) if parsed["access"] != ak else None
            if tmp is not None:  # temporary keys the mock's IAM or metadata service gave out
                ak, sk, st = parsed["access"], tmp["sk"], tmp["security_token"]
            ok, why = sdk_signer.verify(self.command, path, query, hdrs, body, ak, sk, authz)
            if not ok:
                self.gw_error(401, "APIGW.0301",
                              "Incorrect IAM authentication information: verify aksk signature fail")
                if not QUIET:
                    sys.stderr.write("mock: signature check failed: %s\n" % why)
                return False
            if self.headers.get("X-Project-Id") != project_id:
                self.gw_error(401, "APIGW.0301",
                              "Incorrect IAM authentication information: project id mismatch")
                return False
            if st is not None:
                signed = [h.lower() for h in parsed["signed_headers"]]
                if self.headers.get("X-Security-Token") != st or "x-security-token" not in signed:
                    self.gw_error(401, "APIGW.0301",
                                  "Incorrect IAM authentication information: security token invalid")
                    return False
            return True
        self.gw_error(401, "APIGW.0301",
                      "Incorrect IAM authentication information: no authentication information")
        return False

    # -- the service ---------------------------------------------------------
    def state_auth(self):
        return STATE.auth

    def api(self, path, query, body):
        with STATE.lock:
            if iam.answer(self, STATE.iam, iam.endpoint_name(self.command, path), query, body):
                return
        d = DESC_RE.match(path)
        if d:
            return self.describe_api(d, body)
        m = API_RE.match(path)
        is_action = bool(m and m.group(3))
        if not m or (is_action and self.command != "POST") or (not is_action and self.command != "GET"):
            self.flat_error(404, "APIGW.0101", "The API does not exist or has not been published in the environment")
            return
        project_id, service_id = unquote(m.group(1)), unquote(m.group(2))
        if not self.authenticate(project_id, body):
            return
        if is_action:
            self.action(project_id, service_id, body)
        else:
            self.list(project_id, service_id, query)

    def action(self, project_id, service_id, body):
        bad = "Invalid parameter: %s"
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return self.flat_error(400, "EndPoint.0001", bad % "Content-Type must be application/json")
        try:
            doc = json.loads(body.decode("utf-8"))
        except Exception:
            return self.flat_error(400, "EndPoint.0001", bad % "request body is not valid JSON")
        if not isinstance(doc, dict):
            return self.flat_error(400, "EndPoint.0001", bad % "request body must be an object")
        action = doc.get("action")
        if action not in ("receive", "reject"):
            return self.flat_error(400, "EndPoint.0001", bad % "action")
        eps = doc.get("endpoints")
        if not isinstance(eps, list) or len(eps) != 1 or not isinstance(eps[0], str) or eps[0] == "":
            return self.flat_error(400, "EndPoint.0001", bad % "endpoints")
        with STATE.lock:
            svc = STATE.services.get((project_id, service_id))
            c = svc.get(eps[0]) if svc is not None else None
            if c is None:
                return self.flat_error(404, "EndPoint.0005", "The requested resource does not exist.")
            State.settle(c)
            c["updated_at"] = now_iso()
            c["_until"] = None
            c.pop("error", None)
            if action == "reject":
                c["status"] = "rejected"
            else:
                final = "failed" if c.get("_fail_with") else "accepted"
                t = STATE.config.get("transition_ms") or 0
                if t > 0:
                    c["status"] = "creating"
                    c["_final"] = final
                    c["_until"] = time.monotonic() + t / 1000.0
                else:
                    c["_final"] = final
                    c["_until"] = 0
                    State.settle(c)
            out = State.public(c)
        self.send_json(200, {"connections": [out]})

    def list(self, project_id, service_id, query):
        q = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            q[k] = v
        bad = lambda what: self.flat_error(400, "EndPoint.0001", "Invalid parameter: %s" % what)  # noqa: E731
        limit, offset = 10, 0
        if "limit" in q:
            if not re.fullmatch(r"[0-9]{1,7}", q["limit"]) or int(q["limit"]) > 1000:
                return bad("limit")
            limit = int(q["limit"])
        if "offset" in q:
            if not re.fullmatch(r"[0-9]{1,12}", q["offset"]):
                return bad("offset")
            offset = int(q["offset"])
        if "sort_key" in q and q["sort_key"] not in ("create_at", "update_at"):
            return bad("sort_key")
        if "sort_dir" in q and q["sort_dir"] not in ("asc", "desc"):
            return bad("sort_dir")
        if "status" in q and q["status"] not in STATUSES:
            return bad("status")
        marker = None
        if "marker_id" in q:
            if not re.fullmatch(r"-?[0-9]{1,20}", q["marker_id"]):
                return bad("marker_id")
            marker = int(q["marker_id"])
        if "id" in q and not (1 <= len(q["id"]) <= 64):
            return bad("id")
        with STATE.lock:
            svc = STATE.services.get((project_id, service_id))
            if svc is None:
                return self.flat_error(404, "EndPoint.0005", "The requested resource does not exist.")
            conns = []
            for c in svc.values():
                State.settle(c)
                if "id" in q and c["id"] != q["id"]:
                    continue
                if marker is not None and c["marker_id"] != marker:
                    continue
                if "status" in q and c["status"] != q["status"]:
                    continue
                conns.append(State.public(c))
        if "sort_key" in q or "sort_dir" in q:
            key = "updated_at" if q.get("sort_key") == "update_at" else "created_at"
            conns.sort(key=lambda c: c[key], reverse=q.get("sort_dir", "desc") == "desc")
        total = len(conns)
        lf = self.list_fault or {}
        if lf.get("list_cycle") and limit > 0:
            offset %= int(lf["list_cycle"]) * limit
        doc = {"connections": conns[offset:offset + limit], "total_count": total}
        if lf.get("list_total") is False:
            del doc["total_count"]
        elif lf.get("list_total") is not None:
            doc["total_count"] = lf["list_total"]
        self.send_json(200, doc)

    # -- UpdateEndpointConnectionsDesc -----------------------------------------
    def describe_api(self, m, body):
        """PUT .../connections/description {"connections":[{"id","description"}]}
        -> 200 {"connections":[conn, ...]}, validated as the service does."""
        if self.command != "PUT":
            return self.flat_error(404, "APIGW.0101",
                                   "The API does not exist or has not been published in the environment")
        project_id, service_id = unquote(m.group(1)), unquote(m.group(2))
        if not self.authenticate(project_id, body):
            return
        bad = lambda what: self.flat_error(400, "EndPoint.0001", "Invalid parameter: %s" % what)  # noqa: E731
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return bad("Content-Type must be application/json")
        try:
            doc = json.loads(body.decode("utf-8"))
        except Exception:
            return bad("request body is not valid JSON")
        items = doc.get("connections") if isinstance(doc, dict) else None
        if not isinstance(items, list) or not items:
            return bad("connections")
        for it in items:
            if not isinstance(it, dict) or not isinstance(it.get("id"), str) or it["id"] == "":
                return bad("connections.id")
            text = it.get("description")
            if not isinstance(text, str) or len(text.encode("utf-8")) > DESC_MAX:
                return bad("connections.description")
            if "<" in text or ">" in text:
                return bad("connections.description must not contain '<' or '>'")
        with STATE.lock:
            svc = STATE.services.get((project_id, service_id))
            if svc is None or any(it["id"] not in svc for it in items):
                return self.flat_error(404, "EndPoint.0005", "The requested resource does not exist.")
            out = []
            for it in items:
                c = svc[it["id"]]
                State.settle(c)
                c["description"] = it["description"]
                c["updated_at"] = now_iso()
                out.append(State.public(c))
        self.send_json(200, {"connections": out})

    # -- control API -----------------------------------------------------------
    def control(self, path, query, body):
        try:
            doc = json.loads(body.decode("utf-8")) if body.strip() else {}
        except Exception:
            return self.send_json(400, {"error": "control body is not JSON"})
        cmd = (self.command, path.rstrip("/"))
        try:
            with STATE.lock:
                out = iam.control(self, STATE.iam, cmd, doc)
            if out is not None:
                return self.send_json(200, out)
            if cmd == ("POST", "/_mock/reset"):
                STATE.reset()
                return self.send_json(200, {"ok": True})
            if cmd == ("POST", "/_mock/services"):
                return self.ctl_services(doc)
            if cmd == ("POST", "/_mock/auth"):
                with STATE.lock:
                    for k in ("token", "ak", "sk", "security_token"):
                        if k in doc:
                            STATE.auth[k] = doc[k]
                    return self.send_json(200, dict(STATE.auth))
            if cmd == ("POST", "/_mock/config"):
                with STATE.lock:
                    for k, v in doc.items():
                        STATE.config[k] = v
                    return self.send_json(200, dict(STATE.config))
            if cmd == ("POST", "/_mock/faults"):
                rules = doc.get("rules")
                if rules is None:
                    rules = [doc]
                with STATE.lock:
                    for r in rules:
                        r = dict(r)
                        times = r.get("times", 1)
                        r["_left"] = None if times == 0 else int(times)
                        STATE.faults.append(r)
                    n = len(STATE.faults)
                return self.send_json(200, {"ok": True, "rules": n})
            if cmd == ("GET", "/_mock/faults"):
                with STATE.lock:
                    out = [{k: v for k, v in r.items() if k not in ("_left", "_hits", "_extra_sent")}
                           | {"left": r["_left"], "hits": r.get("_hits", 0),
                              "extra_sent": r.get("_extra_sent", 0)} for r in STATE.faults]
                return self.send_json(200, {"rules": out})
            if cmd == ("POST", "/_mock/faults/clear"):
                with STATE.lock:
                    STATE.faults = []
                return self.send_json(200, {"ok": True})
            if cmd == ("GET", "/_mock/log"):
                with STATE.lock:
                    return self.send_json(200, {"requests": list(STATE.log)})
            if cmd == ("POST", "/_mock/log/clear"):
                with STATE.lock:
                    STATE.log = []
                return self.send_json(200, {"ok": True})
            if cmd == ("GET", "/_mock/state"):
                q = dict(parse_qsl(query, keep_blank_values=True))
                with STATE.lock:
                    svc = STATE.services.get((q.get("project_id"), q.get("service_id")))
                    if svc is None:
                        return self.send_json(404, {"error": "no such service"})
                    out = []
                    for c in svc.values():
                        State.settle(c)
                        out.append(State.public(c))
                return self.send_json(200, {"connections": out})
            if cmd == ("POST", "/_mock/stats/clear"):
                STATE.new_epoch()
                return self.send_json(200, {"ok": True})
            if cmd == ("GET", "/_mock/stats"):
                with STATE.stats_lock:
                    return self.send_json(200, {"connections_opened": STATE.connections_opened,
                                                "connections_open": STATE.connections_open,
                                                "requests": STATE.requests,
                                                "in_flight": STATE.in_flight,
                                                "max_in_flight": STATE.max_in_flight})
        except Abort:
            raise
        except Exception as e:  # a bad control call is the test's bug: say so
            return self.send_json(400, {"error": "%s: %s" % (type(e).__name__, e)})
        return self.send_json(404, {"error": "unknown control call %s %s" % cmd})

    def ctl_services(self, doc):
        pid, sid = doc.get("project_id"), doc.get("service_id")
        if not isinstance(pid, str) or not isinstance(sid, str):
            return self.send_json(400, {"error": "project_id and service_id are required strings"})
        specs = list(doc.get("endpoints") or [])
        count = int(doc.get("count") or 0)
        prefix = doc.get("prefix", "ep-")
        width = max(4, len(str(max(count - 1, 0))))
        for i in range(count):
            s = {"id": "%s%0*d" % (prefix, width, i)}
            for k in ("status", "domain_id", "description"):
                if k in doc:
                    s[k] = doc[k]
            specs.append(s)
        svc = {}
        for i, s in enumerate(specs):
            if "id" not in s:
                return self.send_json(400, {"error": "endpoint without id"})
            c = STATE.make_conn(s, i)
            svc[c["id"]] = c
        with STATE.lock:
            STATE.services[(pid, sid)] = svc
        return self.send_json(200, {"ok": True, "count": len(svc)})


def main():
    global QUIET
    ap = argparse.ArgumentParser(description="mock VPCEP server")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    QUIET = a.quiet
    ctx = None
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
    srv = MockServer(("127.0.0.1", a.port), Handler, ctx)
    port = srv.server_address[1]

    def on_term(signum, frame):
        # Nothing to flush: leave at once instead of waiting for handler
        # threads parked on idle keep-alive connections.
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    if not QUIET:
        sys.stderr.write("mock: listening on %s://127.0.0.1:%d\n" % ("https" if ctx else "http", port))
    try:
        srv.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
