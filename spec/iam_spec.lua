-- spec/iam_spec.lua: iam = {user=, password=, domain=}: the client gets an
-- IAM password token itself at its first call (never at vpcep.new), keeps
-- it per process, refreshes it when less than 40 minutes remain, fetches it
-- again once when the service answers 401, and never shows the password or
-- the token in an error, tostring or info. Against the mock's IAM
-- (spec/mock/README.md), on 127.0.0.1 only.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local D = helper.defaults
local SID = D.service_id
local PASSWORD = "pw-Zq8!x \"quoted\" \\ back"
local USER, DOMAIN = "alice", "acme"

local mock
local seen = {} -- every text the module gave: checked for secrets at the end

local function texts(...)
  for _, t in ipairs({ ... }) do seen[#seen + 1] = tostring(t) end
end

local function iam_opts(extra)
  return helper.merge({ endpoint = mock.url, project_id = D.project_id, iam_endpoint = mock.url,
                        iam = { user = USER, password = PASSWORD, domain = DOMAIN }, retries = 0 }, extra)
end

local function issued_tokens()
  local out = {}
  for _, r in ipairs(mock:log()) do
    if r.path:find("^/v1/") then out[#out + 1] = helper.header(r, "X-Auth-Token") end
  end
  return out
end

local function creds_error(f, ...)
  local err = helper.raised(f, ...)
  assert.are.equal("vpcep.credentials", err.code, tostring(err))
  assert.is_true(vpcep.is_error(err.cause), "err.cause is an error object")
  texts(err, err.message, err.cause, err.cause.message)
  return err
end

setup(function() mock = helper.start() end)
teardown(function() mock:stop() end)
before_each(function()
  mock:reset()
  vpcep._forget_credentials()
  mock:iam { users = { [USER] = { password = PASSWORD, domain = DOMAIN },
                       bob = { password = "bobs-password-1", domain = DOMAIN } } }
  mock:service { endpoints = { { id = "e1" }, { id = "e2" }, { id = "e3" } } }
end)

describe("iam = {user, password, domain}", function()
  it("fetches nothing at vpcep.new; the first call gets one token and uses it", function()
    local c = vpcep.new(iam_opts())
    texts(c)
    assert.are.equal(0, mock:counts().iam_tokens)
    local r = c:accept(SID, { "e1", "e2" })
    assert.are.equal("accepted", r[1].status)
    assert.are.equal("accepted", r[2].status)
    local n = mock:counts()
    assert.are.equal(1, n.iam_tokens)
    assert.are.equal(2, n.vpcep)
    -- the token is the one in the answer's X-Subject-Token (6000 bytes: no small buffer cut it)
    local toks = issued_tokens()
    assert.are.equal(2, #toks)
    assert.are.equal(6000, #toks[1])
    assert.are.equal(toks[1], toks[2])
    -- the request IAM got: the password body, scoped by the project id (an endpoint has no region)
    local req = mock:log()[1]
    assert.are.equal("POST", req.method)
    assert.are.equal("/v3/auth/tokens?nocatalog=true", req.path)
    local body = helper.json.decode(req.body)
    assert.are.same({ "password" }, body.auth.identity.methods)
    assert.are.equal(PASSWORD, body.auth.identity.password.user.password)
    assert.are.equal(DOMAIN, body.auth.identity.password.user.domain.name)
    assert.are.equal(D.project_id, body.auth.scope.project.id)
    c:close()
  end)

  it("takes a token of many KiB whole", function()
    mock:iam { token_size = 40000 }
    local c = vpcep.new(iam_opts())
    c:accept(SID, "e1")
    assert.are.equal(40000, #issued_tokens()[1])
  end)

  it("info() says iam, the project, the endpoint and when the token expires; never a secret", function()
    local c = vpcep.new(iam_opts())
    local info = c:info()
    assert.are.equal("iam", info.auth)
    assert.are.equal(D.project_id, info.project_id)
    assert.are.equal(mock.url, info.endpoint)
    assert.is_nil(info.region)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d", info.expires_at)
    assert.are.equal(1, mock:counts().iam_tokens)
    for k, v in pairs(info) do texts(k, v) end
    c:accept(SID, "e1")
    assert.are.equal(1, mock:counts().iam_tokens) -- info's token served the call
  end)

  it("a token client's info() fetches nothing", function()
    local c = helper.client(mock)
    assert.are.same({ auth = "token", project_id = D.project_id, endpoint = mock.url }, c:info())
    local a = vpcep.new(helper.aksk_opts(mock))
    assert.are.same({ auth = "aksk", project_id = D.project_id, endpoint = mock.url }, a:info())
    assert.are.equal(0, #mock:log())
  end)

  it("prepare() gets the token first and shows no password", function()
    local c = vpcep.new(iam_opts())
    local req = c:prepare("receive", SID, "e1")
    assert.are.equal(1, mock:counts().iam_tokens)
    assert.are.equal(6000, #req.headers["X-Auth-Token"])
    for k, v in pairs(req.headers) do texts(k, v) end
    texts(req.url, req.body)
  end)
end)

describe("client:plan (how vpcep.resty and vpcep.uv run a call)", function()
  -- carries each request the plan hands out over luasocket
  local function drive(op)
    local sent = {}
    while true do
      local what, x = op:next()
      if what == "done" then break end
      assert.are.equal("send", what)
      for _, i in ipairs(x) do
        local req = op:request(i)
        sent[#sent + 1] = req.method .. " " .. req.url:sub(#mock.url + 1)
        local status, body, headers = mock:request { method = req.method, path = req.url:sub(#mock.url + 1),
                                                     headers = req.headers, body = req.body }
        op:feed(i, status, body, headers)
      end
    end
    return sent, op:result()
  end

  it("the token fetch is the plan's first request; then the call's, with that token", function()
    local c = vpcep.new(iam_opts())
    local sent, conns = drive(c:plan("accept", SID, { "e1", "e2" }))
    assert.are.equal("accepted", conns[2].status)
    assert.are.same({ "POST /v3/auth/tokens?nocatalog=true",
                      "POST /v1/" .. D.project_id .. "/vpc-endpoint-services/" .. SID .. "/connections/action",
                      "POST /v1/" .. D.project_id .. "/vpc-endpoint-services/" .. SID .. "/connections/action" }, sent)
    assert.are.equal(6000, #issued_tokens()[1])
    -- the next plan of the same client fetches nothing
    sent = drive(c:plan("reject", SID, "e1"))
    assert.are.equal(1, #sent)
  end)

  it("plan(\"credentials\"): the fetch alone, true; a client that holds its token plans nothing", function()
    local c = vpcep.new(iam_opts())
    local sent, r = drive(c:plan("credentials"))
    assert.are.same({ "POST /v3/auth/tokens?nocatalog=true" }, sent)
    assert.is_true(r)
    sent, r = drive(c:plan("credentials"))
    assert.are.same({}, sent)
    assert.is_true(r)
  end)

  it("a refusal ends the plan with vpcep.credentials", function()
    local c = vpcep.new(iam_opts { iam = { user = USER, password = "wrong-password-9", domain = DOMAIN } })
    local ok, err = pcall(drive, c:plan("accept", SID, "e1"))
    assert.is_false(ok)
    assert.are.equal("vpcep.credentials", err.code)
    assert.are.equal(401, err.cause.status)
    texts(err)
  end)
end)

local have_luv, uv = pcall(require, "luv")
local describe_uv = have_luv and describe or function(name) pending(name .. ": luv is not installed for this Lua") end

describe_uv("vpcep.uv", function()
  it("fetches the token on the loop, once, and calls back with the connections", function()
    package.path = helper.spec_dir .. "/../lua/?.lua;" .. package.path
    local c = require("vpcep.uv").new(iam_opts(), { loop = uv })
    local got
    c:accept(SID, { "e1", "e2" }, nil, function(conns, err) got = { conns, err } end)
    assert.is_nil(got) -- returned before anything was fetched
    for _ = 1, 200000 do
      if got then break end
      uv.run("once")
    end
    assert.is_nil(got[2])
    assert.are.equal("accepted", got[1][2].status)
    assert.are.same({ 1, 2 }, { mock:counts().iam_tokens, mock:counts().vpcep })
    c:close()
    uv.run("nowait")
  end)

  local function run_until(done)
    for _ = 1, 200000 do
      if done() then return end
      uv.run("once")
    end
  end

  it("info(cb) fetches on the loop and calls back with what the client uses, no secret", function()
    local c = require("vpcep.uv").new(iam_opts(), { loop = uv })
    local got
    c:info(function(info, err) got = { info, err } end)
    assert.is_nil(got)
    assert.are.equal(0, mock:counts().iam_tokens)
    run_until(function() return got end)
    assert.is_nil(got[2])
    assert.are.equal("iam", got[1].auth)
    assert.are.equal(D.project_id, got[1].project_id)
    assert.is_string(got[1].expires_at)
    texts(helper.json.encode(got[1]))
    assert.are.same({ 1, 0 }, { mock:counts().iam_tokens, mock:counts().vpcep })
    assert.has_error(function() c:info() end)
    local bad = require("vpcep.uv").new(iam_opts { iam = { user = USER, password = "wrong-password-9",
                                                             domain = DOMAIN } }, { loop = uv })
    got = nil
    bad:info(function(info, err) got = { info, err } end)
    run_until(function() return got end)
    assert.is_nil(got[1])
    assert.are.equal("vpcep.credentials", got[2].code)
    texts(got[2])
    c:close()
    bad:close()
    uv.run("nowait")
  end)
end)

describe("the process cache", function()
  it("serves every client of the same user, password and IAM", function()
    local a, b = vpcep.new(iam_opts()), vpcep.new(iam_opts())
    a:accept(SID, "e1")
    b:accept(SID, "e2")
    a:close()
    local c = vpcep.new(iam_opts())
    c:reject(SID, "e3")
    assert.are.equal(1, mock:counts().iam_tokens)
    local t = issued_tokens()
    assert.are.equal(t[1], t[2])
    assert.are.equal(t[1], t[3])
  end)

  it("is keyed by user and by the password (its digest), not shared between them", function()
    vpcep.new(iam_opts()):accept(SID, "e1")
    vpcep.new(iam_opts { iam = { user = "bob", password = "bobs-password-1", domain = DOMAIN } }):accept(SID, "e2")
    assert.are.equal(2, mock:counts().iam_tokens)
    -- a wrong password does not get alice's cached token
    local bad = vpcep.new(iam_opts { iam = { user = USER, password = "not-the-password", domain = DOMAIN } })
    local err = creds_error(bad.accept, bad, SID, "e3")
    assert.are.equal(401, err.cause.status)
    assert.are.equal(3, mock:counts().iam_tokens)
  end)

  it("a bulk call of 1,000 ids fetches the token once, even one that expires soon", function()
    mock:iam { token_ttl = 39 * 60 }
    local ids = mock:seed(1000)
    local c = vpcep.new(iam_opts { concurrency = 16 })
    local r = c:accept(SID, ids)
    assert.are.equal(1000, #r)
    local n = mock:counts()
    assert.are.equal(1, n.iam_tokens)
    assert.are.equal(1000, n.vpcep)
  end)
end)

describe("refresh", function()
  it("keeps a token with more than 40 minutes left", function()
    mock:iam { token_ttl = 41 * 60 }
    local c = vpcep.new(iam_opts())
    c:accept(SID, "e1")
    c:accept(SID, "e2")
    assert.are.equal(1, mock:counts().iam_tokens)
  end)

  it("fetches a new token at the next call when less than 40 minutes remain", function()
    mock:iam { token_ttl = 39 * 60 }
    local c = vpcep.new(iam_opts())
    c:accept(SID, "e1")
    c:accept(SID, "e2")
    assert.are.equal(2, mock:counts().iam_tokens)
    local t = issued_tokens()
    assert.are_not.equal(t[1], t[2])
  end)

  it("a token the local clock calls expired at once still serves the call that fetched it", function()
    mock:iam { expires_shift = -3 * 86400 } -- valid at the mock, but said to have expired
    local c = vpcep.new(iam_opts())
    local r = c:accept(SID, { "e1", "e2" })
    assert.are.equal(2, #r)
    assert.are.same({ iam_tokens = 1, vpcep = 2 },
      { iam_tokens = mock:counts().iam_tokens, vpcep = mock:counts().vpcep })
    c:accept(SID, "e3") -- the next call asks again, once
    assert.are.same({ iam_tokens = 2, vpcep = 3 },
      { iam_tokens = mock:counts().iam_tokens, vpcep = mock:counts().vpcep })
  end)
end)

describe("a 401 from the service", function()
  it("fetches the token again once and resends only the refused requests (the clock moved past it)", function()
    local c = vpcep.new(iam_opts())
    c:accept(SID, { "e1", "e2", "e3" })
    mock:advance_clock(2 * 86400) -- the cached token has expired at the mock
    mock:clear_counts()
    local r = c:reject(SID, { "e1", "e2", "e3" })
    for i = 1, 3 do assert.are.equal("rejected", r[i].status) end
    local n = mock:counts()
    assert.are.equal(1, n.iam_tokens)
    assert.are.equal(6, n.vpcep) -- three refused, three resent
  end)

  it("resends only the requests refused, exactly once", function()
    mock:fault { match = { path_contains = "/connections/action", endpoint = "e2" }, times = 0,
                 answer = { status = 401, json = { error_code = "APIGW.0301",
                                                   error_msg = "Incorrect IAM authentication information" } } }
    local c = vpcep.new(iam_opts())
    local err = helper.raised(c.accept, c, SID, { "e1", "e2", "e3" })
    texts(err)
    assert.are.equal("accepted", err.results[1].status)
    assert.are.equal(401, err.results[2].status)
    assert.are.equal("APIGW.0301", err.results[2].code)
    assert.are.equal("accepted", err.results[3].status)
    local n = mock:counts()
    assert.are.equal(2, n.iam_tokens)
    assert.are.equal(4, n.vpcep) -- e1, e2, e3, then e2 once more
    local e2 = 0
    for _, r in ipairs(mock:log()) do
      if r.path:find("/action$") and r.body:find('"e2"', 1, true) then e2 = e2 + 1 end
    end
    assert.are.equal(2, e2)
  end)

  it("with a token the user gave, is no reason to fetch anything", function()
    mock:fault { match = { path_contains = "/connections/action" }, times = 0,
                 answer = { status = 401, json = { error_code = "APIGW.0301", error_msg = "no" } } }
    local c = helper.client(mock, { retries = 0 })
    local err = helper.raised(c.accept, c, SID, "e1")
    assert.are.equal(401, err.status)
    assert.are.equal(1, #mock:log())
  end)

  it("on a listing: the page is asked once more", function()
    local c = vpcep.new(iam_opts())
    c:accept(SID, "e1")
    mock:advance_clock(2 * 86400)
    local list, total = c:connections(SID)
    assert.are.equal(3, #list)
    assert.are.equal(3, total)
    assert.are.equal(2, mock:counts().iam_tokens)
  end)
end)

describe("vpcep.credentials", function()
  it("IAM refusing the password: err.cause has the status, IAM's text and its trace id", function()
    local c = vpcep.new(iam_opts { iam = { user = USER, password = "wrong-password-7", domain = DOMAIN } })
    local err = creds_error(c.accept, c, SID, "e1")
    assert.are.equal(401, err.cause.status)
    assert.matches("^trace%-", err.cause.request_id)
    assert.are.equal(err.cause.request_id, err.request_id)
    assert.matches("IAM password token: refused", err.message)
    assert.matches("The username or password is wrong", err.cause.message)
    assert.is_nil(err.message:find("wrong-password-7", 1, true))
    assert.are.equal(0, mock:counts().vpcep)
  end)

  it("a wrong domain is refused the same way", function()
    local c = vpcep.new(iam_opts { iam = { user = USER, password = PASSWORD, domain = "other" } })
    assert.are.equal(401, creds_error(c.accept, c, SID, "e1").cause.status)
  end)

  it("IAM answering 5xx", function()
    mock:fault { match = { path_contains = "/v3/auth/tokens" }, times = 0,
                 answer = { status = 503, json = { error_code = "IAM.0000", error_msg = "busy" } } }
    local c = vpcep.new(iam_opts())
    local err = creds_error(c.accept, c, SID, "e1")
    assert.are.equal(503, err.cause.status)
    assert.are.equal("IAM.0000", err.cause.code)
    assert.are.equal(0, mock:counts().vpcep)
  end)

  it("IAM unreachable: the cause is the connect error; nothing sent to the service", function()
    local c = vpcep.new(iam_opts { iam_endpoint = "http://127.0.0.1:" .. helper.free_port() })
    local err = creds_error(c.accept, c, SID, "e1")
    assert.are.equal("vpcep.connect", err.cause.code)
    assert.matches("IAM did not answer", err.message)
    assert.are.equal(0, #mock:log())
  end)

  it("IAM too slow: the cause is the timeout", function()
    mock:fault { match = { path_contains = "/v3/auth/tokens" }, times = 1, delay_ms = 1500 }
    local c = vpcep.new(iam_opts { timeout = 0.3 })
    assert.are.equal("vpcep.timeout", creds_error(c.accept, c, SID, "e1").cause.code)
    assert.are.equal(0, mock:counts().vpcep)
  end)

  it("answers that are not a token: malformed body, no X-Subject-Token, a bad expires_at", function()
    local cases = {
      function() mock:iam { malformed = "iam_tokens" } end,
      function()
        mock:fault { match = { path_contains = "/v3/auth/tokens" }, times = 0,
                     answer = { status = 201, json = { token = { expires_at = "2099-01-01T00:00:00Z" } } } }
      end,
      function()
        mock:fault { match = { path_contains = "/v3/auth/tokens" }, times = 0,
                     answer = { status = 201, headers = { ["X-Subject-Token"] = "tok-abcdef" },
                                json = { token = { expires_at = "tomorrow" } } } }
      end,
      function()
        mock:fault { match = { path_contains = "/v3/auth/tokens" }, times = 0,
                     answer = { status = 201, headers = { ["X-Subject-Token"] = "tok-abcdef" }, body = "<html>" } }
      end,
    }
    for i, arrange in ipairs(cases) do
      mock:reset()
      vpcep._forget_credentials()
      mock:iam { users = { [USER] = { password = PASSWORD, domain = DOMAIN } } }
      arrange()
      local c = vpcep.new(iam_opts())
      local err = creds_error(c.accept, c, SID, "e1")
      assert.are.equal("vpcep.bad_response", err.cause.code, "case " .. i)
      assert.matches("malformed answer", err.message)
      assert.are.equal(0, mock:counts().vpcep, "case " .. i)
    end
  end)

  it("a safe client returns nil and the error", function()
    local c = vpcep.safe.new(iam_opts { iam = { user = USER, password = "wrong-password-8", domain = DOMAIN } })
    local r, err = c:accept(SID, "e1")
    assert.is_nil(r)
    assert.are.equal("vpcep.credentials", err.code)
    texts(err, err.message)
  end)
end)

describe("options", function()
  local function refused(extra, pattern)
    local opts = iam_opts(extra)
    local err = helper.einval(vpcep.new, opts)
    if pattern then assert.matches(pattern, err.message) end
    texts(err, err.message)
    return err
  end

  it("refuses a half-given iam source, extra fields and wrong types", function()
    refused({ iam = { user = USER, password = PASSWORD } }, "iam.domain")
    refused({ iam = { user = USER, domain = DOMAIN } }, "iam.password")
    refused({ iam = { password = PASSWORD, domain = DOMAIN } }, "iam.user")
    refused({ iam = { user = USER, password = PASSWORD, domain = DOMAIN, project = "x" } }, "only the fields")
    refused({ iam = "alice" }, "iam must be a table")
    refused({ iam = { user = USER, password = "", domain = DOMAIN } }, "iam.password")
    refused({ iam = { user = USER, password = "a\nb", domain = DOMAIN } }, "control")
    refused({ iam = { user = 1, password = PASSWORD, domain = DOMAIN } }, "iam.user must be a string")
  end)

  it("refuses more than one credential source", function()
    refused({ token = D.token }, "one credential source")
    refused({ ak = D.ak, sk = D.sk }, "one credential source")
    refused({ metadata = true }, "one credential source")
    refused({ idp = { id = "idp1", token_file = "/nonexistent" } }, "one credential source")
    refused({ security_token = "st-xxxx" }, "security_token needs ak and sk")
    refused({ metadata = "yes" }, "metadata must be a boolean")
  end)

  it("refuses a bad iam_endpoint or metadata_endpoint", function()
    refused({ iam_endpoint = "ftp://x" }, "iam_endpoint must start with")
    refused({ iam_endpoint = "http://h/v3" }, "iam_endpoint must be scheme")
    refused({ metadata_endpoint = "http://" }, "metadata_endpoint has no host")
  end)

  it("without project_id, needs a region to look it up by", function()
    refused({ project_id = false }, nil)
    local opts = iam_opts()
    opts.project_id = nil
    local err = helper.einval(vpcep.new, opts)
    assert.matches("project_id is missing", err.message)
  end)

  it("sent nothing anywhere", function()
    assert.are.equal(0, #mock:log())
  end)
end)

describe("secrets", function()
  it("no password or token in any text the module gave in this file", function()
    local c = vpcep.new(iam_opts())
    c:accept(SID, "e1")
    texts(c, c:info().expires_at)
    local secrets = { PASSWORD, "wrong-password-7", "wrong-password-8", "wrong-password-9", "bobs-password-1",
                      "not-the-password" }
    for _, t in ipairs(issued_tokens()) do secrets[#secrets + 1] = t:sub(1, 40) end
    local no_secret = helper.no_secret(secrets)
    assert.is_true(#seen > 20)
    for _, t in ipairs(seen) do no_secret(t) end
  end)
end)
