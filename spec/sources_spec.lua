-- spec/sources_spec.lua: where vpcep.new finds credentials and endpoints
-- when the options name no source: HUAWEICLOUD_SDK_AK/_SK/_SECURITY_TOKEN,
-- then HUAWEICLOUD_SDK_IDP_ID + _ID_TOKEN_FILE, then VPCEP_METADATA=1, then
-- the [basic] section of the credentials file if it exists; each step, each
-- half-given pair, and "no source" (vpcep.credentials). Then the region
-- override HUAWEICLOUD_SDK_REGION_VPCEP_<REGION> (pointed at the mock) and
-- the IAM endpoint rule. Every case runs in a child with exactly the
-- environment it names (spec/env_child.lua). Sources that fetch (idp,
-- metadata) are only checked to be chosen: nothing here sends anything
-- anywhere but to the mock on 127.0.0.1.
local helper = require "spec.helper"
local run = require "spec.env_child"

local D = helper.defaults

local AK = "CHAINAK0000000000001"
local SK = "chain-secret-sk-Hy42"
local ST = "chain-sec-token-Pp17"
local FILE_SK = "file-secret-sk-Rr08"
local PID = "p-chain-3"
local no_secret = helper.no_secret { SK, ST, FILE_SK }

local SOURCE = "return vpcep._source(OPTS)"
local ACCEPT = "local sid = OPTS.sid; OPTS.sid = nil; local c = vpcep.new(OPTS); "
  .. "local url = c:prepare('receive', sid, 'e1').url; "
  .. "local r = c:accept(sid, 'e1'); c:close(); return { status = r[1].status, url = url }"

local mock, home, file
setup(function()
  mock = helper.start()
  home = helper.tmpdir()
  assert(helper.run("mkdir -p " .. helper.shell_quote(home .. "/.huaweicloud")))
  file = home .. "/.huaweicloud/credentials"
end)
teardown(function()
  mock:stop()
  helper.run("rm -rf " .. helper.shell_quote(home))
end)
before_each(function()
  mock:reset()
  mock:auth { ak = AK, sk = SK }
  mock:service { project_id = PID, endpoints = { { id = "e1" } } }
  os.remove(file)
end)
after_each(function()
  -- nothing but the mock was ever asked, and only by the cases that call it
  for _, r in ipairs(mock:log()) do assert.are.equal(1, r.path:find("/v1/" .. PID .. "/", 1, true)) end
end)

local function with(env)
  local e = { HOME = home }
  for k, v in pairs(env) do e[k] = v end
  return e
end

local function source(env, opts)
  local o = { endpoint = mock.url }
  for k, v in pairs(opts or {}) do o[k] = v end -- false: leave that option out
  for k, v in pairs(o) do if v == false then o[k] = nil end end
  local out = run(with(env), o, SOURCE)
  if out.err_code then
    no_secret(out.err_message)
    no_secret(out.err_string)
  end
  return out
end

local function refused(code, env, opts, ...)
  local out = source(env, opts)
  assert.are.equal(code, out.err_code, out.err_string)
  for _, w in ipairs { ... } do
    assert.is_truthy(out.err_message:find(w, 1, true), w .. " not in: " .. out.err_message)
  end
  return out
end

local ENV_AKSK = { HUAWEICLOUD_SDK_AK = AK, HUAWEICLOUD_SDK_SK = SK, HUAWEICLOUD_SDK_PROJECT_ID = PID }
local ENV_IDP = { HUAWEICLOUD_SDK_IDP_ID = "env-idp", HUAWEICLOUD_SDK_ID_TOKEN_FILE = "/run/id token" }
local BASIC = "[basic]\nak = FILEAK\nsk = " .. FILE_SK .. "\nproject_id = p-file\n"

local function merge(...) return helper.merge(...) end

describe("the chain when no source is given", function()
  it("1. HUAWEICLOUD_SDK_AK/_SK go before everything else", function()
    helper.write_file(file, BASIC)
    local s = source(merge(ENV_AKSK, ENV_IDP, { VPCEP_METADATA = "1" }))
    assert.are.equal("aksk", s.kind)
    assert.are.equal("aksk", s.auth)
    assert.are.equal(AK, s.ak)
    assert.are.equal(PID, s.project_id)
    assert.is_nil(s.profile_path)
  end)

  it("2. then HUAWEICLOUD_SDK_IDP_ID with HUAWEICLOUD_SDK_ID_TOKEN_FILE", function()
    helper.write_file(file, BASIC)
    local s = source(merge(ENV_IDP, { VPCEP_METADATA = "1", HUAWEICLOUD_SDK_PROJECT_ID = PID }))
    assert.are.equal("idp", s.kind)
    assert.are.equal("idp", s.auth)
    assert.are.equal("env-idp", s.idp_id)
    assert.are.equal("/run/id token", s.id_token_file)
    assert.are.equal(PID, s.project_id)
    assert.is_nil(s.ak)
  end)

  it("3. then VPCEP_METADATA=1 (chosen here, never contacted)", function()
    helper.write_file(file, BASIC)
    local s = source { VPCEP_METADATA = "1", HUAWEICLOUD_SDK_PROJECT_ID = PID }
    assert.are.equal("metadata", s.kind)
    assert.are.equal("metadata", s.auth)
    assert.is_nil(s.ak)
    assert.is_nil(s.metadata_endpoint) -- the default; only `metadata_endpoint` changes it
  end)

  it("4. then the [basic] section of the credentials file, whose keys work against the mock", function()
    helper.write_file(file, BASIC)
    local s = source { VPCEP_METADATA = "0" }
    assert.are.equal("aksk", s.kind)
    assert.are.equal("profile", s.auth)
    assert.are.equal("FILEAK", s.ak)
    assert.are.equal("basic", s.profile)
    assert.are.equal(file, s.profile_path)
    assert.are.equal("p-file", s.project_id)
    mock:auth { ak = "FILEAK", sk = FILE_SK }
    helper.write_file(file, "[basic]\nak = FILEAK\nsk = " .. FILE_SK .. "\n")
    local out = run(with { HUAWEICLOUD_SDK_PROJECT_ID = PID }, { endpoint = mock.url, sid = D.service_id }, ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal("accepted", out.status)
    assert.is_truthy(helper.header(mock:log()[1], "Authorization"):find("Access=FILEAK,", 1, true))
  end)

  it("HUAWEICLOUD_SDK_CREDENTIALS_FILE names the file the chain reads", function()
    local alt = home .. "/chain-alt"
    helper.write_file(alt, BASIC:gsub("FILEAK", "ALTAK"), nil)
    local s = source { HUAWEICLOUD_SDK_CREDENTIALS_FILE = alt }
    os.remove(alt)
    assert.are.equal("ALTAK", s.ak)
    assert.are.equal(alt, s.profile_path)
  end)

  it("AK/SK from the environment sign requests the mock accepts, the security token too", function()
    mock:auth { security_token = ST }
    local out = run(with(merge(ENV_AKSK, { HUAWEICLOUD_SDK_SECURITY_TOKEN = ST })),
                    { endpoint = mock.url, sid = D.service_id }, ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal(ST, helper.header(mock:log()[1], "X-Security-Token"))
  end)

  it("a source option stops the chain: profile, token and ak/sk go before the environment", function()
    helper.write_file(file, BASIC .. "[other]\nak = OTHERAK\nsk = " .. FILE_SK .. "\n")
    local s = source(merge(ENV_AKSK, ENV_IDP), { profile = "other" })
    assert.are.equal("OTHERAK", s.ak)
    assert.are.equal("profile", s.auth)
    s = source(merge(ENV_AKSK, ENV_IDP), { token = "tok" })
    assert.are.equal("token", s.kind)
    assert.is_true(s.token)
    assert.is_nil(s.ak)
    s = source(merge(ENV_AKSK, ENV_IDP), { ak = "OPTAK", sk = "x" })
    assert.are.equal("OPTAK", s.ak)
  end)

  it("the project id: the option, then a profile's, then HUAWEICLOUD_SDK_PROJECT_ID", function()
    helper.write_file(file, BASIC)
    assert.are.equal("p-file", source({ HUAWEICLOUD_SDK_PROJECT_ID = "p-env" }).project_id)
    assert.are.equal("p-opt", source({ HUAWEICLOUD_SDK_PROJECT_ID = "p-env" }, { project_id = "p-opt" }).project_id)
    assert.are.equal("p-env", source(merge(ENV_IDP, { HUAWEICLOUD_SDK_PROJECT_ID = "p-env" })).project_id)
    refused("vpcep.invalid_argument", ENV_IDP, {}, "HUAWEICLOUD_SDK_PROJECT_ID")
  end)

  describe("refused before anything is sent", function()
    after_each(function() assert.are.equal(0, #mock:log()) end)

    it("no source at all is vpcep.credentials, saying where it looked", function()
      local out = refused("vpcep.credentials", { HUAWEICLOUD_SDK_PROJECT_ID = PID }, {},
                          "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_IDP_ID", "VPCEP_METADATA=1", file)
      assert.matches("^vpcep: vpcep.credentials: no credentials", out.err_string)
      out = run({ HUAWEICLOUD_SDK_PROJECT_ID = PID }, { endpoint = mock.url }, SOURCE)
      assert.are.equal("vpcep.credentials", out.err_code)
      assert.matches("HOME is not set", out.err_message)
      refused("vpcep.credentials", { HUAWEICLOUD_SDK_PROJECT_ID = PID, VPCEP_METADATA = "0" }, {}, file)
      refused("vpcep.credentials",
              { HUAWEICLOUD_SDK_PROJECT_ID = PID, HUAWEICLOUD_SDK_CREDENTIALS_FILE = file .. "-x" }, {}, file .. "-x")
    end)

    it("vpcep.new says the same", function()
      local out = run(with { HUAWEICLOUD_SDK_PROJECT_ID = PID }, { endpoint = mock.url, sid = D.service_id }, ACCEPT)
      assert.are.equal("vpcep.credentials", out.err_code)
    end)

    it("a source found that must be fetched (idp, metadata) makes a client and fetches nothing in vpcep.new", function()
      local opts = { endpoint = mock.url }
      local NEW = "local c = vpcep.new(OPTS); return { s = tostring(c) }"
      for _, case in ipairs {
        { merge(ENV_IDP, { HUAWEICLOUD_SDK_PROJECT_ID = PID }), "idp" },
        { { VPCEP_METADATA = "1", HUAWEICLOUD_SDK_PROJECT_ID = PID }, "metadata" },
      } do
        local out = run(with(case[1]), opts, NEW)
        assert.are.equal(nil, out.err_code, out.err_string)
        assert.matches(case[2] .. "%)$", out.s)
      end
      helper.write_file(file, "[basic]\nidp_id = file-idp\nid_token_file = /run/id-token\n")
      local out = run(with { HUAWEICLOUD_SDK_PROJECT_ID = PID }, opts, NEW)
      assert.matches("profile%)$", out.s)
    end)

    it("an idp source whose token file is not there fails the first call, sending nothing", function()
      local env = { HUAWEICLOUD_SDK_PROJECT_ID = PID, HUAWEICLOUD_SDK_IAM_ENDPOINT = mock.url }
      local out = run(with(merge(ENV_IDP, env)), { endpoint = mock.url, sid = D.service_id }, ACCEPT)
      assert.are.equal("vpcep.credentials", out.err_code, out.err_string)
      assert.matches("/run/id token", out.err_message, 1, true)
      helper.write_file(file, "[basic]\nidp_id = file-idp\nid_token_file = /run/id-token\n")
      out = run(with(env), { endpoint = mock.url, sid = D.service_id }, ACCEPT)
      assert.are.equal("vpcep.credentials", out.err_code, out.err_string)
      assert.matches("/run/id-token", out.err_message, 1, true)
    end)

    it("a credentials file without [basic] is vpcep.credentials naming the file and the section", function()
      helper.write_file(file, "[prod]\nak = FILEAK\nsk = " .. FILE_SK .. "\n")
      refused("vpcep.credentials", { HUAWEICLOUD_SDK_PROJECT_ID = PID }, {}, file, "[basic]")
    end)

    it("a malformed [basic] reached by the chain is invalid_argument", function()
      helper.write_file(file, "[basic]\nak = FILEAK\n")
      refused("vpcep.invalid_argument", { HUAWEICLOUD_SDK_PROJECT_ID = PID }, {}, file, "sk is missing")
      helper.write_file(file, "[basic]\nak = FILEAK\nsk " .. FILE_SK .. "\n")
      refused("vpcep.invalid_argument", { HUAWEICLOUD_SDK_PROJECT_ID = PID }, {}, file, "line 3")
    end)

    it("half of the idp pair names the missing half", function()
      local out = refused("vpcep.invalid_argument", { HUAWEICLOUD_SDK_IDP_ID = "i", HUAWEICLOUD_SDK_PROJECT_ID = PID },
                          {}, "HUAWEICLOUD_SDK_ID_TOKEN_FILE is not set")
      assert.is_nil(out.err_message:find("HUAWEICLOUD_SDK_IDP_ID is not set", 1, true))
      refused("vpcep.invalid_argument", { HUAWEICLOUD_SDK_ID_TOKEN_FILE = "/f", HUAWEICLOUD_SDK_PROJECT_ID = PID },
              {}, "HUAWEICLOUD_SDK_IDP_ID is not set")
      refused("vpcep.invalid_argument", { HUAWEICLOUD_SDK_IDP_ID = "i d", HUAWEICLOUD_SDK_ID_TOKEN_FILE = "/f",
                                          HUAWEICLOUD_SDK_PROJECT_ID = PID }, {}, "HUAWEICLOUD_SDK_IDP_ID holds")
    end)

    it("a half AK/SK pair in the environment is refused even with a file there", function()
      helper.write_file(file, BASIC)
      refused("vpcep.invalid_argument", { HUAWEICLOUD_SDK_AK = AK }, {}, "HUAWEICLOUD_SDK_SK is not set")
      refused("vpcep.invalid_argument", { HUAWEICLOUD_SDK_SECURITY_TOKEN = ST }, {},
              "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK")
    end)

    it("VPCEP_METADATA other than 1 or 0", function()
      for _, v in ipairs { "yes", "true", "2", " 1" } do
        refused("vpcep.invalid_argument", { VPCEP_METADATA = v, HUAWEICLOUD_SDK_PROJECT_ID = PID }, {},
                "VPCEP_METADATA")
      end
    end)
  end)
end)

describe("HUAWEICLOUD_SDK_REGION_VPCEP_<REGION>", function()
  local VAR = "HUAWEICLOUD_SDK_REGION_VPCEP_CN_NORTH_4"

  it("replaces the region's host: the first of a comma list, trimmed, one trailing slash dropped", function()
    local env = merge(ENV_AKSK, { [VAR] = "  " .. mock.url .. "/ ,https://second.example.test " })
    local out = run(with(env), { region = "cn-north-4", sid = D.service_id }, ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal("accepted", out.status)
    assert.are.equal(mock.url .. "/v1/" .. PID .. "/vpc-endpoint-services/" .. D.service_id
      .. "/connections/action", out.url)
    local log = mock:log()
    assert.are.equal(1, #log)
    assert.are.equal("127.0.0.1:" .. mock.port, helper.header(log[1], "Host"))
    local s = source(env, { endpoint = false, region = "cn-north-4" })
    assert.are.equal(mock.url, s.endpoint)
    assert.are.equal("127.0.0.1:" .. mock.port, s.host)
    assert.are.equal("cn-north-4", s.region)
  end)

  it("makes any region name work, upper-cased with '-' as '_'", function()
    local env = merge(ENV_AKSK, { HUAWEICLOUD_SDK_REGION_VPCEP_XY_TEST_9 = mock.url })
    local out = run(with(env), { region = "xy-test-9", sid = D.service_id }, ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal("accepted", out.status)
    -- and without it that region is unknown
    local s = source(ENV_AKSK, { endpoint = false, region = "xy-test-9" })
    assert.are.equal("vpcep.invalid_argument", s.err_code)
    assert.matches("unknown region", s.err_message)
  end)

  it("only for its own region; blank is unset; the endpoint option ignores it", function()
    local s = source(merge(ENV_AKSK, { HUAWEICLOUD_SDK_REGION_VPCEP_CN_EAST_3 = mock.url }),
                     { endpoint = false, region = "cn-north-4" })
    assert.are.equal("https://vpcep.cn-north-4.myhuaweicloud.com", s.endpoint)
    s = source(merge(ENV_AKSK, { [VAR] = "  \t " }), { endpoint = false, region = "cn-north-4" })
    assert.are.equal("https://vpcep.cn-north-4.myhuaweicloud.com", s.endpoint)
    s = source(merge(ENV_AKSK, { [VAR] = "https://elsewhere.test" }), {})
    assert.are.equal(mock.url, s.endpoint)
  end)

  it("a malformed first endpoint is refused naming the variable", function()
    for _, bad in ipairs { "vpcep.example.test", "https://h.test/path", "https://h.test//", ",https://h.test",
                           "https://h.test:0", "https://", "http://[::1" } do
      local s = source(merge(ENV_AKSK, { [VAR] = bad }), { endpoint = false, region = "cn-north-4" })
      assert.are.equal("vpcep.invalid_argument", s.err_code, bad)
      assert.matches(VAR, s.err_message, 1, true)
    end
    assert.are.equal(0, #mock:log())
  end)
end)

describe("the IAM endpoint", function()
  local vpcep = require "vpcep"

  it("the option, the profile's, HUAWEICLOUD_SDK_IAM_ENDPOINT, the region's, then the global one", function()
    local body = "return { a = vpcep._iam_endpoint('cn-north-4', 'http://127.0.0.1:2/', 'http://127.0.0.1:1'), "
      .. "b = vpcep._iam_endpoint('cn-north-4', 'http://127.0.0.1:2/'), "
      .. "c = vpcep._iam_endpoint('cn-north-4'), d = vpcep._iam_endpoint('xy-test-9'), "
      .. "e = vpcep._iam_endpoint(nil), f = tostring(vpcep._iam_endpoint('cn-north-4', 'nope')) }"
    local out = run({ HUAWEICLOUD_SDK_IAM_ENDPOINT = " http://127.0.0.1:3/ , http://127.0.0.1:4" }, {}, body)
    assert.are.same({ a = "http://127.0.0.1:1", b = "http://127.0.0.1:2", c = "http://127.0.0.1:3",
                      d = "http://127.0.0.1:3", e = "http://127.0.0.1:3", f = "nil" }, out)
    out = run({}, {}, body)
    assert.are.same({ a = "http://127.0.0.1:1", b = "http://127.0.0.1:2",
                      c = "https://iam.cn-north-4.myhuaweicloud.com", d = "https://iam.myhuaweicloud.com",
                      e = "https://iam.myhuaweicloud.com", f = "nil" }, out)
  end)

  it("eu-west-101 lives under .myhuaweicloud.eu, as its VPCEP host does", function()
    if os.getenv("HUAWEICLOUD_SDK_IAM_ENDPOINT") then return end
    assert.are.equal("https://iam.eu-west-101.myhuaweicloud.eu", vpcep._iam_endpoint("eu-west-101"))
  end)

  it("a malformed HUAWEICLOUD_SDK_IAM_ENDPOINT gives nothing rather than another endpoint", function()
    local out = run({ HUAWEICLOUD_SDK_IAM_ENDPOINT = "iam.example.test" }, {},
                    "return { a = tostring(vpcep._iam_endpoint('cn-north-4')) }")
    assert.are.equal("nil", out.a)
  end)
end)
