"""The mock's IAM and ECS metadata services (spec/mock/README.md, "IAM and
metadata"). Imported by server.py; answers on the same port as the VPCEP
mock, under IAM's and the metadata service's own paths. Python standard
library only."""
import datetime
import json
import time
import uuid
from urllib.parse import parse_qsl

import sdk_signer

DEFAULT_IAM = {
    "users": {},             # name -> {"password":, "domain":, "project_id": (optional)}
    "projects": {},          # region -> [project ids] (GET /v3/projects?name=<region>)
    "token_ttl": 86400,      # seconds a password or federated token is valid (mock clock)
    "key_ttl": 86400,        # seconds temporary keys are valid (mock clock)
    "expires_shift": 0,      # added to the expires_at told (not to the validity)
    "token_size": 6000,      # bytes of an X-Subject-Token
    "idps": {},              # idp id -> the id token it accepts
    "metadata_token": "on",  # "on", or the status PUT .../api/token answers (404, 405, 503)
    "agency": True,          # False: securitykey answers 401 "Please configure Cloud Service Agency first"
    "malformed": None,       # an endpoint name (see COUNTED) whose 2xx answer is nonsense
}

COUNTED = ("iam_tokens", "iam_projects", "idp_tokens", "idp_securitytokens", "metadata_token",
           "metadata_securitykey", "vpcep")


def endpoint_name(method, path):
    """Which service endpoint a request is for (the key of its count)."""
    if path == "/v3/auth/tokens":
        return "iam_tokens"
    if path == "/v3/projects":
        return "iam_projects"
    if path == "/v3.0/OS-AUTH/id-token/tokens":
        return "idp_tokens"
    if path == "/v3.0/OS-CREDENTIAL/securitytokens":
        return "idp_securitytokens"
    if path == "/meta-data/latest/api/token":
        return "metadata_token"
    if path == "/openstack/latest/securitykey":
        return "metadata_securitykey"
    return "vpcep"


class IamState:
    def __init__(self):
        self.reset()

    def reset(self):
        self.conf = json.loads(json.dumps(DEFAULT_IAM))
        self.offset = 0.0        # the mock clock: time.time() + offset
        self.tokens = {}         # token -> valid until (mock clock)
        self.subjects = {}       # federated subject token -> valid until
        self.keys = {}           # ak -> {"sk":, "security_token":, "until":}
        self.meta_tokens = set()
        self.counts = {k: 0 for k in COUNTED}

    def now(self):
        return time.time() + self.offset

    def iso(self, t):
        dt = datetime.datetime.fromtimestamp(t + self.conf.get("expires_shift", 0), datetime.timezone.utc)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def token_ok(self, token):
        until = self.tokens.get(token)
        return until is not None and self.now() < until

    def key_of(self, ak):
        k = self.keys.get(ak)
        if k is None or self.now() >= k["until"]:
            return None
        return k

    def new_keys(self):
        ak = "TMP" + uuid.uuid4().hex[:17].upper()
        k = {"sk": "tmp-sk-" + uuid.uuid4().hex, "security_token": "tmp-st-" + uuid.uuid4().hex * 4,
             "until": self.now() + self.conf["key_ttl"]}
        self.keys[ak] = k
        return {"access": ak, "secret": k["sk"], "securitytoken": k["security_token"],
                "expires_at": self.iso(k["until"])}


def trace(h):
    """IAM names its answers with X-IAM-Trace-Id (and no X-Request-Id)."""
    return {"X-IAM-Trace-Id": "trace-" + h.request_id, "X-Request-Id": None}


def iam_error(h, status, code, msg):
    h.send_json(status, {"error": {"code": status, "message": msg, "title": code}},
                headers=trace(h))


def new_token(st, size):
    t = "MIIT" + uuid.uuid4().hex
    return (t * (size // len(t) + 1))[:max(size, 40)]


def body_json(body):
    try:
        return json.loads(body.decode("utf-8"))
    except Exception:
        return None


def dig(doc, *path):
    for p in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(p)
    return doc


def malformed(h, st, name, status):
    if st.conf.get("malformed") == name:
        h.send(status, "{\"not\": \"what was asked\"", trace(h))
        return True
    return False


def password_token(h, st, body):
    doc = body_json(body)
    user = dig(doc, "auth", "identity", "password", "user")
    methods = dig(doc, "auth", "identity", "methods")
    if not isinstance(user, dict) or methods != ["password"]:
        return iam_error(h, 400, "Bad Request", "malformed password auth body")
    u = st.conf["users"].get(user.get("name"))
    if u is None or u.get("password") != user.get("password") or \
            u.get("domain") != dig(user, "domain", "name"):
        return iam_error(h, 401, "Unauthorized", "The username or password is wrong.")
    scope = dig(doc, "auth", "scope", "project") or {}
    if "name" in scope:
        ids = st.conf["projects"].get(scope["name"]) or []
        if len(ids) != 1:
            return iam_error(h, 400, "Bad Request", "no single project named %s" % scope["name"])
        pid, pname = ids[0], scope["name"]
    elif "id" in scope:
        pid, pname = scope["id"], "scoped-by-id"
    else:
        return iam_error(h, 400, "Bad Request", "no scope")
    if malformed(h, st, "iam_tokens", 201):
        return
    token = new_token(st, int(st.conf["token_size"]))
    until = st.now() + st.conf["token_ttl"]
    st.tokens[token] = until
    h.send_json(201, {"token": {"expires_at": st.iso(until), "methods": ["password"],
                                "project": {"id": pid, "name": pname},
                                "user": {"name": user.get("name")}}},
                headers=dict(trace(h), **{"X-Subject-Token": token}))


def projects(h, st, query, body):
    name = dict(parse_qsl(query, keep_blank_values=True)).get("name")
    token = h.headers.get("X-Auth-Token")
    authz = h.headers.get("Authorization")
    if token is not None:
        if not st.token_ok(token) and token != h.state_auth().get("token"):
            return iam_error(h, 401, "Unauthorized", "The request you have made requires authentication.")
    elif authz is not None:
        parsed = sdk_signer.parse_authorization(authz)
        if parsed is None:
            return iam_error(h, 401, "Unauthorized", "malformed Authorization")
        auth = h.state_auth()
        ak = parsed["access"]
        if ak == auth.get("ak"):
            sk, want_st = auth.get("sk"), auth.get("security_token")
        else:
            k = st.key_of(ak)
            if k is None:
                return iam_error(h, 401, "Unauthorized", "unknown or expired access key")
            sk, want_st = k["sk"], k["security_token"]
        path = h.path.partition("?")[0]
        ok, why = sdk_signer.verify(h.command, path, query, list(h.headers.items()), body, ak, sk, authz)
        if not ok:
            return iam_error(h, 401, "Unauthorized", "signature check failed")
        if want_st is not None and h.headers.get("X-Security-Token") != want_st:
            return iam_error(h, 401, "Unauthorized", "security token invalid")
    else:
        return iam_error(h, 401, "Unauthorized", "no authentication")
    if malformed(h, st, "iam_projects", 200):
        return
    ids = st.conf["projects"].get(name) or []
    h.send_json(200, {"projects": [{"id": i, "name": name, "enabled": True} for i in ids],
                      "links": {"self": "mock"}},
                headers=trace(h))


def id_token(h, st, body):
    idp = h.headers.get("X-Idp-Id")
    tok = dig(body_json(body), "auth", "id_token", "id")
    want = st.conf["idps"].get(idp)
    if want is None or tok != want:
        return iam_error(h, 401, "Unauthorized", "the id token was refused")
    if malformed(h, st, "idp_tokens", 201):
        return
    subject = new_token(st, int(st.conf["token_size"]))
    st.subjects[subject] = st.now() + st.conf["token_ttl"]
    h.send_json(201, {"token": {"expires_at": st.iso(st.subjects[subject]), "methods": ["mapped"]}},
                headers=dict(trace(h), **{"X-Subject-Token": subject}))


def securitytokens(h, st, body):
    doc = body_json(body)
    subject = dig(doc, "auth", "identity", "token", "id")
    until = st.subjects.get(subject)
    if dig(doc, "auth", "identity", "methods") != ["token"] or until is None or st.now() >= until:
        return iam_error(h, 401, "Unauthorized", "the token was refused")
    if malformed(h, st, "idp_securitytokens", 201):
        return
    h.send_json(201, {"credential": st.new_keys()}, headers=trace(h))


def metadata_token(h, st):
    mode = st.conf["metadata_token"]
    if mode != "on":
        return h.send(int(mode), "no such thing", content_type="text/plain")
    if h.command != "PUT" or h.headers.get("X-Metadata-Token-Ttl-Seconds") != "21600":
        return h.send(400, "bad token request", content_type="text/plain")
    t = "meta-" + uuid.uuid4().hex
    st.meta_tokens.add(t)
    h.send(200, t, content_type="text/plain")


def securitykey(h, st):
    if st.conf["metadata_token"] == "on" and h.headers.get("X-Metadata-Token") not in st.meta_tokens:
        return h.send_json(401, {"message": "metadata token invalid"})
    if not st.conf["agency"]:
        return h.send_json(401, {"message": "Please configure Cloud Service Agency first"})
    if malformed(h, st, "metadata_securitykey", 200):
        return
    h.send_json(200, {"credential": st.new_keys()})


def answer(h, st, name, query, body):
    """Answers a request for IAM or the metadata service; False for the rest."""
    if name == "iam_tokens" and h.command == "POST":
        password_token(h, st, body)
    elif name == "iam_projects" and h.command == "GET":
        projects(h, st, query, body)
    elif name == "idp_tokens" and h.command == "POST":
        id_token(h, st, body)
    elif name == "idp_securitytokens" and h.command == "POST":
        securitytokens(h, st, body)
    elif name == "metadata_token":
        metadata_token(h, st)
    elif name == "metadata_securitykey" and h.command == "GET":
        securitykey(h, st)
    else:
        return False
    return True


def control(h, st, cmd, doc):
    """The /_mock/iam, /_mock/clock and /_mock/counts calls; None for others."""
    if cmd == ("POST", "/_mock/iam"):
        for k, v in doc.items():
            if k not in DEFAULT_IAM:
                raise ValueError("unknown IAM setting %s" % k)
            st.conf[k] = v
        return st.conf
    if cmd == ("POST", "/_mock/iam/revoke"):
        st.tokens.clear()
        st.keys.clear()
        st.subjects.clear()
        st.meta_tokens.clear()
        return {"ok": True}
    if cmd == ("POST", "/_mock/clock"):
        if "advance" in doc:
            st.offset += float(doc["advance"])
        if "offset" in doc:
            st.offset = float(doc["offset"])
        return {"offset": st.offset}
    if cmd == ("GET", "/_mock/clock"):
        return {"offset": st.offset, "now": st.iso(st.now())}
    if cmd == ("GET", "/_mock/counts"):
        return dict(st.counts)
    if cmd == ("POST", "/_mock/counts/clear"):
        st.counts = {k: 0 for k in COUNTED}
        return {"ok": True}
    return None
