-- spec/credentials_spec.lua: where credentials come from (options, or the
-- HUAWEICLOUD_SDK_* environment the official SDKs read), which combinations
-- are refused, and that no secret ever shows in an error or in tostring.
--
-- The environment is tested in a child process started with `env -i`, running
-- the same Lua interpreter (arg[-1]) with this run's package.cpath, so the
-- build under test is the one loaded and nothing of the caller's environment
-- leaks in.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local D = helper.defaults
local q = helper.shell_quote

local ENV_AK = "ENVAK00000000000000Z"
local ENV_SK = "env-secret-key-Vb71Qx0aa"
local ENV_ST = "env-security-token-Kp93mZ"
local ENV_PID = "p-from-env-42"
local OPT_SK = "option-secret-key-Lm4Rt8"
local OPT_ST = "option-security-token-Wd2Hs5"

-- every text this file gets from the module: error messages, tostring(err),
-- tostring(client); grepped for every secret as it comes and again at the end
local texts = {}
-- secrets: the SKs and security tokens used here, and every signature the
-- mock saw
local secrets = { ENV_SK, ENV_ST, OPT_SK, OPT_ST, D.sk, "Signature=" }

local no_secret = helper.no_secret(secrets)

local function record(text)
  assert.is_string(text)
  texts[#texts + 1] = text
  no_secret(text)
  return text
end

local function remember_signatures(log)
  for _, r in ipairs(log) do
    for _, h in ipairs(r.headers) do
      local sig = h[1]:lower() == "authorization" and h[2]:match("Signature=(%x+)")
      if sig then secrets[#secrets + 1] = sig end
    end
  end
end

local interpreter = helper.interpreter

-- a Lua table literal of string/number/boolean fields
local function literal(t)
  local parts = {}
  for k, v in pairs(t) do
    local val = type(v) == "string" and string.format("%q", v) or tostring(v)
    parts[#parts + 1] = string.format("[%q]=%s", k, val)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Runs `body` (Lua code; sees `vpcep`, `OPTS` and `out`) in a child with
-- exactly the environment `env` (plus PATH). Returns out as a table of
-- strings; a raised error comes back as out.err_* fields.
local function child(env, opts, body)
  local code = table.concat({
    "package.cpath = " .. string.format("%q", package.cpath),
    "local vpcep = require 'vpcep'",
    "local OPTS = " .. literal(opts or {}),
    "local out = { lua = _VERSION, jit = jit and jit.version or '', version = vpcep._VERSION }",
    "local ok, err = pcall(function() " .. body .. " end)",
    "if not ok then",
    "  if type(err) == 'table' then",
    "    out.err_code = tostring(err.code); out.err_message = tostring(err.message)",
    "    out.err_string = tostring(err); out.err_status = tostring(err.status)",
    "    out.is_error = tostring(vpcep.is_error(err))",
    "  else out.err_raw = tostring(err) end",
    "end",
    "local parts = {}",
    "for k, v in pairs(out) do parts[#parts + 1] = string.format('[%q]=%q', k, tostring(v)) end",
    "io.write('RESULT return {', table.concat(parts, ','), '}\\n')",
  }, "\n")
  local words = { "env", "-i", q("PATH=" .. (os.getenv("PATH") or "/usr/bin:/bin")) }
  for k, v in pairs(env) do words[#words + 1] = q(k .. "=" .. v) end
  words[#words + 1] = q(interpreter())
  words[#words + 1] = "-e " .. q(code) .. " </dev/null 2>&1"
  local p = assert(io.popen(table.concat(words, " "), "r"))
  local output = p:read("*a")
  p:close()
  local chunk = output:match("RESULT (return {.-})\n")
  assert(chunk, "the child printed no result:\n" .. output)
  local f = assert((loadstring or load)(chunk))
  local out = f()
  -- the child must run the same Lua as this process
  assert.are.equal(_VERSION, out.lua)
  assert.are.equal(jit and jit.version or "", out.jit)
  assert.are.equal(vpcep._VERSION, out.version)
  assert.is_nil(out.err_raw, "the child raised a non-error: " .. tostring(out.err_raw))
  if out.err_code then
    assert.are.equal("true", out.is_error)
    record(out.err_message)
    record(out.err_string)
  end
  if out.client then record(out.client) end
  no_secret(output:gsub("RESULT.*", ""))
  return out
end

local ACCEPT = "local c = vpcep.new(OPTS); out.client = tostring(c); "
  .. "out.url = c:prepare('receive', 'svc', 'ep').url; "
  .. "local r = c:accept(OPTS.sid, 'e1'); out.status = r[1].status; c:close()"
-- OPTS.sid is no client option: take it out before vpcep.new sees it
ACCEPT = "local sid = OPTS.sid; OPTS.sid = nil; " .. ACCEPT:gsub("OPTS%.sid", "sid")

local NEW = "local c = vpcep.new(OPTS); out.client = tostring(c); "
  .. "out.url = c:prepare('receive', 'svc', 'ep').url; c:close()"

local header = helper.header

local mock
setup(function() mock = helper.start() end)
teardown(function() mock:stop() end)
before_each(function()
  mock:reset()
  mock:auth { ak = ENV_AK, sk = ENV_SK }
  mock:service { project_id = ENV_PID, endpoints = { { id = "e1" }, { id = "e2" } } }
  mock:service { endpoints = { { id = "e1" } } } -- under helper.defaults.project_id
end)

describe("credentials from the environment", function()
  it("AK/SK and project id from the environment sign a request the mock accepts", function()
    local out = child({ HUAWEICLOUD_SDK_AK = ENV_AK, HUAWEICLOUD_SDK_SK = ENV_SK,
                        HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
                      { endpoint = mock.url, sid = D.service_id }, ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal("accepted", out.status)
    assert.are.equal("accepted", mock:by_id(ENV_PID).e1.status)
    local log = mock:log()
    remember_signatures(log)
    assert.are.equal(1, #log)
    assert.are.equal(1, header(log[1], "Authorization"):find("SDK-HMAC-SHA256 Access=" .. ENV_AK .. ", ", 1, true))
    assert.are.equal(ENV_PID, header(log[1], "X-Project-Id"))
    assert.are.equal("/v1/" .. ENV_PID .. "/", log[1].path:sub(1, #ENV_PID + 5))
    assert.is_nil(header(log[1], "X-Auth-Token"))
    assert.is_nil(header(log[1], "X-Security-Token"))
    assert.matches("AK/SK", out.client)
    assert.matches(ENV_PID, out.client, 1, true)
  end)

  it("the one-shot vpcep.accept reads them too", function()
    local out = child({ HUAWEICLOUD_SDK_AK = ENV_AK, HUAWEICLOUD_SDK_SK = ENV_SK,
                        HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
                      { endpoint = mock.url, service_id = D.service_id },
                      "OPTS.endpoints = { 'e2' }; local r = vpcep.accept(OPTS); out.status = r[1].status")
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal("accepted", out.status)
    assert.are.equal("accepted", mock:by_id(ENV_PID).e2.status)
    remember_signatures(mock:log())
  end)

  it("the security token from the environment is sent and signed", function()
    mock:auth { security_token = ENV_ST }
    local out = child({ HUAWEICLOUD_SDK_AK = ENV_AK, HUAWEICLOUD_SDK_SK = ENV_SK,
                        HUAWEICLOUD_SDK_SECURITY_TOKEN = ENV_ST, HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
                      { endpoint = mock.url, sid = D.service_id }, ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal("accepted", out.status)
    local log = mock:log()
    remember_signatures(log)
    assert.are.equal(ENV_ST, header(log[1], "X-Security-Token"))
    assert.matches("SignedHeaders=[^,]*x%-security%-token", header(log[1], "Authorization"))
  end)

  it("without the security token the mock that wants one refuses (the env one was really used)", function()
    mock:auth { security_token = ENV_ST }
    local out = child({ HUAWEICLOUD_SDK_AK = ENV_AK, HUAWEICLOUD_SDK_SK = ENV_SK,
                        HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
                      { endpoint = mock.url, sid = D.service_id }, ACCEPT)
    remember_signatures(mock:log())
    assert.are.equal("APIGW.0301", out.err_code)
    assert.are.equal("401", out.err_status)
  end)

  it("the project id alone comes from the environment with a token", function()
    local out = child({ HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
                      { endpoint = mock.url, token = "tok" }, NEW)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal(mock.url .. "/v1/" .. ENV_PID .. "/vpc-endpoint-services/svc/connections/action", out.url)
    assert.matches("token", out.client)
  end)

  it("options win over the environment", function()
    local out = child({ HUAWEICLOUD_SDK_AK = "WRONGAK", HUAWEICLOUD_SDK_SK = "wrong-sk",
                        HUAWEICLOUD_SDK_PROJECT_ID = "p-wrong" },
                      { endpoint = mock.url, sid = D.service_id, project_id = ENV_PID, ak = ENV_AK, sk = ENV_SK },
                      ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal("accepted", out.status)
    remember_signatures(mock:log())
    assert.is_truthy(header(mock:log()[1], "Authorization"):find("Access=" .. ENV_AK .. ",", 1, true))
  end)

  it("a token option means the environment's AK/SK are not used at all", function()
    local out = child({ HUAWEICLOUD_SDK_AK = ENV_AK, HUAWEICLOUD_SDK_SK = ENV_SK },
                      { endpoint = mock.url, sid = D.service_id, project_id = D.project_id, token = D.token },
                      ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal("accepted", out.status)
    local r = mock:log()[1]
    assert.are.equal(D.token, header(r, "X-Auth-Token"))
    assert.is_nil(header(r, "Authorization"))
  end)

  it("a wrong SK from the environment is a 401 with no secret in it", function()
    mock:auth { sk = "the-mock-knows-another-one" }
    local out = child({ HUAWEICLOUD_SDK_AK = ENV_AK, HUAWEICLOUD_SDK_SK = ENV_SK,
                        HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
                      { endpoint = mock.url, sid = D.service_id }, ACCEPT)
    local log = mock:log()
    remember_signatures(log)
    assert.are.equal(1, #log)
    assert.are.equal("APIGW.0301", out.err_code)
    assert.are.equal("401", out.err_status)
    no_secret(out.err_message)
    no_secret(out.err_string)
  end)

  describe("missing or partial", function()
    local function refused_with(code, env, opts, ...)
      local out = child(env, opts, NEW)
      assert.are.equal(code, out.err_code, out.err_string)
      for _, name in ipairs { ... } do
        assert.is_truthy(out.err_message:find(name, 1, true), name .. " not named in: " .. out.err_message)
      end
      assert.is_nil(out.url)
      return out
    end
    local function refused(env, opts, ...)
      return refused_with("vpcep.invalid_argument", env, opts, ...)
    end
    -- no source at all is vpcep.credentials (issue 17), still before anything is sent
    local function no_source(env, opts, ...)
      return refused_with("vpcep.credentials", env, opts, ...)
    end

    it("nothing at all names the project id (with an endpoint nothing could look it up)", function()
      refused({}, { endpoint = mock.url }, "HUAWEICLOUD_SDK_PROJECT_ID")
      refused({ HUAWEICLOUD_SDK_AK = "AK1", HUAWEICLOUD_SDK_SK = "sk1" }, { endpoint = mock.url },
              "project_id is missing", "HUAWEICLOUD_SDK_PROJECT_ID")
    end)

    it("no credentials name HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK", function()
      no_source({ HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID }, { endpoint = mock.url },
                "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "token")
      no_source({}, { endpoint = mock.url, project_id = "p" }, "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK")
    end)

    it("empty values count as unset", function()
      no_source({ HUAWEICLOUD_SDK_AK = "", HUAWEICLOUD_SDK_SK = "", HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
                { endpoint = mock.url }, "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK")
      refused({ HUAWEICLOUD_SDK_AK = ENV_AK, HUAWEICLOUD_SDK_SK = ENV_SK, HUAWEICLOUD_SDK_PROJECT_ID = "" },
              { endpoint = mock.url }, "HUAWEICLOUD_SDK_PROJECT_ID")
    end)

    it("only the AK names the SK as missing", function()
      local out = refused({ HUAWEICLOUD_SDK_AK = ENV_AK, HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
                          { endpoint = mock.url }, "HUAWEICLOUD_SDK_SK is not set")
      assert.is_nil(out.err_message:find("HUAWEICLOUD_SDK_AK is not set", 1, true))
    end)

    it("only the SK names the AK as missing", function()
      local out = refused({ HUAWEICLOUD_SDK_SK = ENV_SK, HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
                          { endpoint = mock.url }, "HUAWEICLOUD_SDK_AK is not set")
      assert.is_nil(out.err_message:find("HUAWEICLOUD_SDK_SK is not set", 1, true))
    end)

    it("only a security token names AK and SK", function()
      refused({ HUAWEICLOUD_SDK_SECURITY_TOKEN = ENV_ST, HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
              { endpoint = mock.url }, "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK")
    end)

    it("an AK with a comma is refused by vpcep.new, naming the variable", function()
      refused({ HUAWEICLOUD_SDK_AK = "ENV,AK", HUAWEICLOUD_SDK_SK = ENV_SK, HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
              { endpoint = mock.url }, "HUAWEICLOUD_SDK_AK", "comma")
    end)

    it("a SK with a space or a control byte names the variable, not the value", function()
      refused({ HUAWEICLOUD_SDK_AK = ENV_AK, HUAWEICLOUD_SDK_SK = ENV_SK .. " x",
        HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID },
              { endpoint = mock.url }, "HUAWEICLOUD_SDK_SK")
      refused({ HUAWEICLOUD_SDK_AK = ENV_AK, HUAWEICLOUD_SDK_SK = ENV_SK, HUAWEICLOUD_SDK_PROJECT_ID = ENV_PID,
                HUAWEICLOUD_SDK_SECURITY_TOKEN = ENV_ST .. "\t" },
              { endpoint = mock.url }, "HUAWEICLOUD_SDK_SECURITY_TOKEN")
    end)
  end)
end)

describe("credentials given as options", function()
  local function einval(opts, ...)
    local o = { endpoint = "http://127.0.0.1:9", project_id = "p" }
    for k, v in pairs(opts) do o[k] = v end
    local ok, err = pcall(vpcep.new, o)
    assert.is_false(ok)
    assert.is_true(vpcep.is_error(err))
    assert.are.equal("vpcep.invalid_argument", err.code)
    record(err.message)
    record(tostring(err))
    for _, word in ipairs { ... } do
      assert.is_truthy(err.message:find(word, 1, true), word .. " not in: " .. err.message)
    end
    return err
  end

  it("a token with AK/SK is refused", function()
    einval({ token = "t", ak = D.ak, sk = OPT_SK }, "token", "ak")
    einval({ token = "t", ak = D.ak }, "token")
    einval({ token = "t", sk = OPT_SK }, "token")
    einval({ token = "t", security_token = OPT_ST }, "token")
  end)

  it("ak without sk names sk, sk without ak names ak", function()
    local e1 = einval({ ak = D.ak }, "sk is missing")
    local e2 = einval({ sk = OPT_SK }, "ak is missing")
    assert.are_not.equal(e1.message, e2.message)
  end)

  it("an AK with a comma is refused when the client is made, not at each call", function()
    einval({ ak = "AK,X", sk = OPT_SK }, "ak", "comma")
    -- the characters the signer accepts are accepted here too
    local c = vpcep.new { endpoint = "http://127.0.0.1:9", project_id = "p", ak = "AK=X;Y", sk = OPT_SK }
    assert.is_truthy(c:prepare("receive", "s", "e").headers.Authorization:find("Access=AK=X;Y,", 1, true))
    c:close()
  end)

  it("a security token without ak is refused", function()
    einval({ security_token = OPT_ST }, "security_token", "ak")
    einval({ security_token = OPT_ST, sk = OPT_SK }, "ak")
  end)

  it("an SK or security token of the wrong shape is refused without its value", function()
    einval({ ak = D.ak, sk = OPT_SK .. "\n" }, "sk")
    einval({ ak = D.ak, sk = "" }, "sk")
    einval({ ak = D.ak, sk = OPT_SK, security_token = OPT_ST .. "\1" }, "security_token")
    einval({ ak = D.ak, sk = 42 }, "sk")
  end)

  it("tostring(client) tells the auth mode and shows no secret", function()
    local c = vpcep.new { endpoint = mock.url, project_id = "p", ak = D.ak, sk = OPT_SK, security_token = OPT_ST }
    local s = record(tostring(c))
    assert.matches("AK/SK", s)
    c:close()
    record(tostring(c))
    local t = vpcep.new { endpoint = mock.url, project_id = "p", token = "secret-token-value-Jx1" }
    s = tostring(t)
    assert.is_nil(s:find("secret-token-value-Jx1", 1, true))
    record(s)
    t:close()
  end)

  it("errors of a client with AK/SK and a security token carry no secret", function()
    mock:auth { ak = D.ak, sk = "the-mock-knows-another-one", security_token = OPT_ST }
    local c = vpcep.new { endpoint = mock.url, project_id = D.project_id, ak = D.ak, sk = OPT_SK,
                          security_token = OPT_ST, retries = 0 }
    local ok, err = pcall(c.accept, c, D.service_id, "e1")
    assert.is_false(ok)
    remember_signatures(mock:log())
    assert.are.equal("APIGW.0301", err.code)
    record(err.message)
    record(tostring(err))
    for _, bad in ipairs { { "e1", 42 }, "bad id!" } do
      local ok2, err2 = pcall(c.accept, c, D.service_id, bad)
      assert.is_false(ok2)
      record(err2.message)
      record(tostring(err2))
    end
    local ok3, err3 = pcall(c.connections, c, D.service_id, { limit = -1 })
    assert.is_false(ok3)
    record(tostring(err3))
    record(tostring(c))
    c:close()
    local ok4, err4 = pcall(c.accept, c, D.service_id, "e1")
    assert.is_false(ok4)
    record(tostring(err4))
  end)
end)

describe("every text collected in this file", function()
  it("holds none of the SKs, security tokens or signatures", function()
    assert.is_true(#texts >= 40, "only " .. #texts .. " texts collected")
    assert.is_true(#secrets > 6, "no signature was collected")
    for _, text in ipairs(texts) do no_secret(text) end
  end)
end)
