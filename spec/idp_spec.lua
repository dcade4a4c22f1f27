-- spec/idp_spec.lua: idp = {id=, token_file=}: a federated (OIDC) id token
-- read from a file at the first call (never at vpcep.new), exchanged at IAM
-- for a subject token (POST /v3.0/OS-AUTH/id-token/tokens, X-Idp-Id), then
-- for temporary keys (POST /v3.0/OS-CREDENTIAL/securitytokens); cached per
-- process and refreshed like the other sources. Against the mock's IAM.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local D = helper.defaults
local SID = D.service_id
local IDP = "idp-corp"
local ID_TOKEN = "eyJhbGciOi.id-token-Secret-93kf.sig"

local mock, dir, token_file
local seen = {}

local function idp_opts(extra)
  return helper.merge({ endpoint = mock.url, project_id = D.project_id, iam_endpoint = mock.url,
                        idp = { id = IDP, token_file = token_file }, retries = 0 }, extra)
end

local function creds_error(f, ...)
  local err = helper.raised(f, ...)
  assert.are.equal("vpcep.credentials", err.code, tostring(err))
  seen[#seen + 1] = tostring(err)
  if err.cause then seen[#seen + 1] = tostring(err.cause) end
  return err
end

local function only(n)
  return { idp_tokens = n.idp_tokens, idp_securitytokens = n.idp_securitytokens, vpcep = n.vpcep }
end

setup(function()
  mock = helper.start()
  dir = helper.tmpdir()
  token_file = dir .. "/id_token"
end)
teardown(function()
  mock:stop()
  os.execute("rm -rf " .. helper.shell_quote(dir))
end)
before_each(function()
  mock:reset()
  vpcep._forget_credentials()
  helper.write_file(token_file, ID_TOKEN .. "\n")
  mock:iam { idps = { [IDP] = ID_TOKEN } }
  mock:service { endpoints = { { id = "e1" }, { id = "e2" } } }
end)

describe("idp = {id, token_file}", function()
  it("reads the file and exchanges it at the first call, then signs with the keys", function()
    os.remove(token_file) -- not read by vpcep.new
    local c = vpcep.new(idp_opts())
    helper.write_file(token_file, "  " .. ID_TOKEN .. "\r\n")
    assert.are.equal(0, #mock:log())
    assert.are.equal("accepted", c:accept(SID, { "e1", "e2" })[1].status)
    assert.are.same({ idp_tokens = 1, idp_securitytokens = 1, vpcep = 2 }, only(mock:counts()))
    local log = mock:log()
    assert.are.equal("/v3.0/OS-AUTH/id-token/tokens", log[1].path)
    assert.are.equal(IDP, helper.header(log[1], "X-Idp-Id"))
    assert.are.same({ auth = { id_token = { id = ID_TOKEN } } }, helper.json.decode(log[1].body))
    assert.are.equal("/v3.0/OS-CREDENTIAL/securitytokens", log[2].path)
    local b = helper.json.decode(log[2].body)
    assert.are.same({ "token" }, b.auth.identity.methods)
    assert.are.equal(21600, b.auth.identity.token.duration_seconds)
    assert.are.equal(6000, #b.auth.identity.token.id) -- the whole subject token
    assert.matches("^SDK%-HMAC%-SHA256 Access=TMP", helper.header(log[3], "Authorization"))
    local info = c:info()
    assert.are.equal("idp", info.auth)
    assert.is_string(info.expires_at)
    seen[#seen + 1] = tostring(c)
    for k, v in pairs(info) do seen[#seen + 1] = k .. "=" .. tostring(v) end
  end)

  it("is cached per process and refreshed when less than 40 minutes remain", function()
    vpcep.new(idp_opts()):accept(SID, "e1")
    vpcep.new(idp_opts()):accept(SID, "e2")
    assert.are.same({ idp_tokens = 1, idp_securitytokens = 1, vpcep = 2 }, only(mock:counts()))
    mock:iam { key_ttl = 39 * 60 }
    vpcep._forget_credentials()
    local c = vpcep.new(idp_opts())
    c:accept(SID, "e1")
    c:accept(SID, "e2")
    assert.are.same({ idp_tokens = 3, idp_securitytokens = 3, vpcep = 4 }, only(mock:counts()))
  end)

  it("a 401 from the service (keys revoked): the exchange again once, the request resent once", function()
    local c = vpcep.new(idp_opts())
    c:accept(SID, "e1")
    mock:revoke()
    assert.are.equal("accepted", c:accept(SID, "e2")[1].status)
    assert.are.same({ idp_tokens = 2, idp_securitytokens = 2, vpcep = 3 }, only(mock:counts()))
  end)
end)

describe("idp refusals", function()
  it("a missing or empty token file: vpcep.credentials at the call, nothing sent", function()
    os.remove(token_file)
    local c = vpcep.new(idp_opts())
    assert.matches("cannot read the id token file", creds_error(c.accept, c, SID, "e1").message)
    helper.write_file(token_file, " \n")
    assert.matches("empty", creds_error(c.accept, c, SID, "e1").message)
    assert.are.equal(0, #mock:log())
  end)

  it("IAM refusing the id token", function()
    mock:iam { idps = { [IDP] = "another-token" } }
    local c = vpcep.new(idp_opts())
    local err = creds_error(c.accept, c, SID, "e1")
    assert.are.equal(401, err.cause.status)
    assert.matches("IAM id%-token exchange: refused", err.message)
    assert.are.same({ idp_tokens = 1, idp_securitytokens = 0, vpcep = 0 }, only(mock:counts()))
  end)

  it("an unknown idp id", function()
    local c = vpcep.new(idp_opts { idp = { id = "idp-other", token_file = token_file } })
    assert.are.equal(401, creds_error(c.accept, c, SID, "e1").cause.status)
  end)

  it("IAM refusing the subject token for keys", function()
    mock:fault { match = { path_contains = "/v3.0/OS-CREDENTIAL/securitytokens" }, times = 0,
                 answer = { status = 403, json = { error = { code = 403, message = "forbidden here" } } } }
    local c = vpcep.new(idp_opts())
    local err = creds_error(c.accept, c, SID, "e1")
    assert.are.equal(403, err.cause.status)
    assert.are.same({ idp_tokens = 1, idp_securitytokens = 1, vpcep = 0 }, only(mock:counts()))
  end)

  it("malformed answers: no subject token, no credential", function()
    mock:iam { malformed = "idp_tokens" }
    local c = vpcep.new(idp_opts())
    assert.are.equal("vpcep.bad_response", creds_error(c.accept, c, SID, "e1").cause.code)
    mock:iam { malformed = "idp_securitytokens" }
    assert.are.equal("vpcep.bad_response", creds_error(c.accept, c, SID, "e1").cause.code)
    assert.are.equal(0, mock:counts().vpcep)
  end)

  it("half-given or ambiguous options are refused", function()
    local function refused(o, pat)
      local err = helper.einval(vpcep.new, o)
      assert.matches(pat, err.message)
    end
    refused(idp_opts { idp = { id = IDP } }, "idp.token_file")
    refused(idp_opts { idp = { token_file = token_file } }, "idp.id")
    refused(idp_opts { idp = { id = "a b", token_file = token_file } }, "idp.id holds a control character or a space")
    refused(idp_opts { token = D.token }, "one credential source")
    refused(idp_opts { metadata = true }, "one credential source")
    assert.are.equal(0, #mock:log())
  end)
end)

it("no id token, subject token or temporary secret in any text this file got", function()
  local no_secret = helper.no_secret { ID_TOKEN, "tmp-sk-", "tmp-st-", "MIIT" }
  assert.is_true(#seen > 8)
  for _, t in ipairs(seen) do no_secret(t) end
end)
