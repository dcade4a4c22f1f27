-- spec/project_lookup_spec.lua: project_id is optional with a region: the
-- client looks it up in IAM (GET /v3/projects?name=<region>, signed with
-- its AK/SK, or with its token) at its first call, once per process per
-- IAM endpoint, key and region; an IAM password token scoped by the region
-- brings its own. Exactly one project must come back.
--
-- A region's host is the real service's, so each case runs in a child
-- process whose HUAWEICLOUD_SDK_REGION_VPCEP_CN_NORTH_4 points the region
-- at the mock (on 127.0.0.1); it runs this Lua with this build.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local D = helper.defaults
local SID = D.service_id
local REGION = "cn-north-4"
local PID = "p-looked-up-0042"
local q = helper.shell_quote

local mock

-- Runs `body` (Lua; sees vpcep, URL, SID, PID, REGION, D and `out`, a table
-- it fills) in a child with the region pointed at the mock. Returns out;
-- a raised error comes back as out.err = {code=, message=, text=, cause=...}.
local function child(body, env)
  local code = table.concat({
    "package.path = " .. string.format("%q", package.path),
    "package.cpath = " .. string.format("%q", package.cpath),
    "local vpcep = require 'vpcep'",
    "local json = require 'cjson'",
    "local URL, SID, PID, REGION = " .. string.format("%q, %q, %q, %q", mock.url, SID, PID, REGION),
    "local D = require('spec.helper').defaults",
    "local out = {}",
    "local ok, err = pcall(function() " .. body .. " end)",
    "if not ok then",
    "  if type(err) ~= 'table' then error(err) end",
    "  out.err = { code = err.code, message = err.message, text = tostring(err), request_id = err.request_id }",
    "  if err.cause then out.err.cause = { code = err.cause.code, status = err.cause.status,",
    "    request_id = err.cause.request_id, message = err.cause.message } end",
    "end",
    "io.write('RESULT ', json.encode(out), '\\n')",
  }, "\n")
  local words = { "env", "-i", q("PATH=" .. (os.getenv("PATH") or "/usr/bin:/bin")),
                  q("HUAWEICLOUD_SDK_REGION_VPCEP_CN_NORTH_4=" .. mock.url) }
  for k, v in pairs(env or {}) do words[#words + 1] = q(k .. "=" .. v) end
  words[#words + 1] = q(helper.interpreter())
  words[#words + 1] = "-e " .. q(code) .. " </dev/null 2>&1"
  local p = assert(io.popen(table.concat(words, " "), "r"))
  local output = p:read("*a")
  p:close()
  local res = output:match("RESULT (.-)\n")
  assert(res, "the child printed no result:\n" .. output)
  return helper.json.decode(res)
end

local function lookups()
  local out = {}
  for _, r in ipairs(mock:log()) do
    if r.path:find("^/v3/projects") then out[#out + 1] = r end
  end
  return out
end

local function action_paths()
  local out = {}
  for _, r in ipairs(mock:log()) do
    if r.path:find("/action$") then out[#out + 1] = r.path end
  end
  return out
end

setup(function() mock = helper.start() end)
teardown(function() mock:stop() end)
before_each(function()
  mock:reset()
  mock:iam { projects = { [REGION] = { PID } },
             users = { alice = { password = "alice-password-1", domain = "acme" } } }
  mock:service { project_id = PID, endpoints = { { id = "e1" }, { id = "e2" } } }
end)

describe("project_id looked up by region", function()
  it("with AK/SK: one signed lookup, then the service under that project", function()
    local out = child([[
      local c = vpcep.new { region = REGION, ak = D.ak, sk = D.sk, iam_endpoint = URL }
      out.before = tostring(c)
      out.status = c:accept(SID, { "e1", "e2" })[1].status
      out.info = c:info()
      c:reject(SID, "e1")
    ]])
    assert.is_nil(out.err, out.err and out.err.text)
    assert.are.equal("accepted", out.status)
    assert.matches("to be looked up", out.before)
    assert.are.same({ auth = "aksk", project_id = PID, region = REGION, endpoint = mock.url }, out.info)
    local l = lookups()
    assert.are.equal(1, #l)
    assert.are.equal("/v3/projects?name=cn-north-4", l[1].path)
    assert.matches("^SDK%-HMAC%-SHA256 Access=" .. D.ak, helper.header(l[1], "Authorization"))
    assert.are.equal(3, #action_paths())
    for _, p in ipairs(action_paths()) do assert.are.equal(1, p:find("/v1/" .. PID .. "/", 1, true)) end
  end)

  it("with temporary keys: X-Security-Token goes with the lookup", function()
    mock:auth { security_token = "st-Lookup-77xq" }
    local out = child([[
      local c = vpcep.new { region = REGION, ak = D.ak, sk = D.sk, security_token = "st-Lookup-77xq",
                            iam_endpoint = URL }
      out.status = c:accept(SID, "e1")[1].status
    ]])
    assert.is_nil(out.err, out.err and out.err.text)
    assert.are.equal("st-Lookup-77xq", helper.header(lookups()[1], "X-Security-Token"))
  end)

  it("with a token: the lookup carries the token", function()
    local out = child([[
      local c = vpcep.new { region = REGION, token = D.token, iam_endpoint = URL }
      out.status = c:accept(SID, "e1")[1].status
      out.info = c:info()
    ]])
    assert.is_nil(out.err, out.err and out.err.text)
    assert.are.equal(D.token, helper.header(lookups()[1], "X-Auth-Token"))
    assert.are.equal("token", out.info.auth)
    assert.are.equal(PID, out.info.project_id)
  end)

  it("once per process: a second client with the same key and region asks no more", function()
    local out = child([[
      for i = 1, 3 do
        local c = vpcep.new { region = REGION, ak = D.ak, sk = D.sk, iam_endpoint = URL }
        c:accept(SID, "e1")
        c:close()
      end
    ]])
    assert.is_nil(out.err, out.err and out.err.text)
    assert.are.equal(1, #lookups())
    assert.are.equal(3, #action_paths())
  end)

  it("a given project_id (or HUAWEICLOUD_SDK_PROJECT_ID) is used as it is", function()
    mock:service { project_id = "p-given", endpoints = { { id = "e1" } } }
    local out = child([[
      vpcep.new { region = REGION, ak = D.ak, sk = D.sk, iam_endpoint = URL, project_id = "p-given" }:accept(SID, "e1")
      vpcep.new { region = REGION, ak = D.ak, sk = D.sk, iam_endpoint = URL }:accept(SID, "e1")
    ]], { HUAWEICLOUD_SDK_PROJECT_ID = "p-given" })
    assert.is_nil(out.err, out.err and out.err.text)
    assert.are.equal(0, #lookups())
  end)

  it("an IAM password token scoped by the region brings the project id: no lookup", function()
    local out = child([[
      local c = vpcep.new { region = REGION, iam_endpoint = URL,
                            iam = { user = "alice", password = "alice-password-1", domain = "acme" } }
      out.status = c:accept(SID, "e1")[1].status
      out.info = c:info()
    ]])
    assert.is_nil(out.err, out.err and out.err.text)
    assert.are.equal(0, #lookups())
    assert.are.equal("iam", out.info.auth)
    assert.are.equal(PID, out.info.project_id)
    assert.are.equal(REGION, out.info.region)
    local body = helper.json.decode(mock:log()[1].body)
    assert.are.equal(REGION, body.auth.scope.project.name)
  end)
end)

describe("a lookup that does not give exactly one project", function()
  for _, case in ipairs({ { n = 0, ids = {} }, { n = 2, ids = { "p-a", "p-b" } } }) do
    it(case.n .. " projects: vpcep.credentials naming the region and IAM's trace id", function()
      mock:iam { projects = { [REGION] = case.ids } }
      local out = child([[
        vpcep.new { region = REGION, ak = D.ak, sk = D.sk, iam_endpoint = URL }:accept(SID, "e1")
      ]])
      assert.are.equal("vpcep.credentials", out.err.code)
      assert.matches(case.n .. " projects named 'cn%-north%-4'", out.err.message)
      assert.matches("^trace%-", out.err.request_id)
      assert.matches("request_id=trace%-", out.err.text)
      assert.are.equal(0, #action_paths())
    end)
  end

  it("refused (a bad signature): the cause has IAM's 401", function()
    local out = child([[
      vpcep.new { region = REGION, ak = D.ak, sk = "not-the-sk-1234", iam_endpoint = URL }:accept(SID, "e1")
    ]])
    assert.are.equal("vpcep.credentials", out.err.code)
    assert.are.equal(401, out.err.cause.status)
    assert.is_nil(out.err.text:find("not-the-sk-1234", 1, true))
    assert.are.equal(0, #action_paths())
  end)

  it("malformed: the cause is vpcep.bad_response", function()
    mock:iam { malformed = "iam_projects" }
    local out = child([[
      vpcep.new { region = REGION, token = D.token, iam_endpoint = URL }:accept(SID, "e1")
    ]])
    assert.are.equal("vpcep.credentials", out.err.code)
    assert.are.equal("vpcep.bad_response", out.err.cause.code)
  end)

  it("nothing at vpcep.new, and the lookup failing twice asks twice (failures are not cached)", function()
    mock:iam { projects = { [REGION] = {} } }
    local out = child([[
      local c = vpcep.new { region = REGION, ak = D.ak, sk = D.sk, iam_endpoint = URL }
      out.after_new = 0
      pcall(c.accept, c, SID, "e1")
      pcall(c.accept, c, SID, "e1")
    ]])
    assert.is_nil(out.err)
    assert.are.equal(2, #lookups())
  end)
end)

describe("sources found by the chain or a profile fetch as the options do", function()
  local dir, file, token_file
  local ID_TOKEN = "eyJ.chain-id-token-Zq81.sig"
  before_each(function()
    dir = helper.tmpdir()
    file, token_file = dir .. "/credentials", dir .. "/id_token"
    helper.write_file(token_file, ID_TOKEN .. "\n")
    mock:iam { projects = { [REGION] = { PID } }, idps = { ["idp-chain"] = ID_TOKEN } }
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  local function works(out, auth)
    assert.is_nil(out.err, out.err and out.err.text)
    assert.are.equal("accepted", out.status)
    assert.are.equal(auth, out.info.auth)
    assert.are.equal(PID, out.info.project_id)
    assert.are.equal(1, #lookups())
    assert.are.equal(1, #action_paths())
    assert.is_nil(helper.json.encode(out):find(ID_TOKEN, 1, true))
  end
  local BODY = [[
    local c = vpcep.new(OPTS)
    out.status = c:accept(SID, "e1")[1].status
    out.info = c:info()
  ]]
  local function body(opts) return "local OPTS = " .. opts .. "\n" .. BODY end

  it("a profile's keys, no project_id: looked up at the profile's iam_endpoint", function()
    helper.write_file(file, "[ops]\nak = " .. D.ak .. "\nsk = " .. D.sk .. "\niam_endpoint = " .. mock.url .. "/\n")
    works(child(body("{ region = REGION, profile = 'ops' }"), { HUAWEICLOUD_SDK_CREDENTIALS_FILE = file }),
          "profile")
    assert.matches("^SDK%-HMAC%-SHA256 Access=" .. D.ak, helper.header(lookups()[1], "Authorization"))
  end)

  it("HUAWEICLOUD_SDK_IDP_ID and _ID_TOKEN_FILE: exchanged at HUAWEICLOUD_SDK_IAM_ENDPOINT", function()
    works(child(body("{ region = REGION }"), { HUAWEICLOUD_SDK_IDP_ID = "idp-chain",
                HUAWEICLOUD_SDK_ID_TOKEN_FILE = token_file, HUAWEICLOUD_SDK_IAM_ENDPOINT = mock.url }), "idp")
    assert.are.same({ 1, 1 }, { mock:counts().idp_tokens, mock:counts().idp_securitytokens })
  end)

  it("[basic] with idp_id and id_token_file, found by the chain", function()
    helper.write_file(file, "[basic]\nidp_id = idp-chain\nid_token_file = " .. token_file ..
                      "\niam_endpoint = " .. mock.url .. "\n")
    works(child(body("{ region = REGION }"), { HUAWEICLOUD_SDK_CREDENTIALS_FILE = file }), "profile")
    assert.are.equal(1, mock:counts().idp_securitytokens)
  end)

  it("VPCEP_METADATA=1: the agency's keys from metadata_endpoint", function()
    works(child(body("{ region = REGION, metadata_endpoint = URL, iam_endpoint = URL }"),
                { VPCEP_METADATA = "1" }), "metadata")
    assert.are.equal(1, mock:counts().metadata_securitykey)
  end)
end)

it("an endpoint without project_id is refused before anything is sent", function()
  local err = helper.einval(vpcep.new, { endpoint = mock.url, token = D.token })
  assert.matches("project_id is missing", err.message)
  assert.are.equal(0, #mock:log())
end)
