-- spec/aksk_spec.lua: the same accept/reject suite (spec/shared_client_cases.lua)
-- run once with an IAM token, once with AK/SK and once with AK/SK plus a
-- security token. In each mode the mock is told to refuse the other kind of
-- credential, so a case can only pass if the mode under test really works.
local helper = require "spec.helper"
local vpcep = require "vpcep"
local cases = require "spec.shared_client_cases"

local D = helper.defaults
local null = helper.json.null
local SECURITY_TOKEN = "temp-security-token-Zq8pL0x"

local mock

local merge = helper.merge

-- Returns a make_client for the shared cases: client, opts.
local function maker(auth_opts)
  return function(extra)
    local opts = merge(merge({ endpoint = mock.url, project_id = D.project_id, retries = 1 }, auth_opts), extra)
    return vpcep.new(opts), opts
  end
end

local header = helper.header

local function signed_headers(authz)
  local list = authz:match("SignedHeaders=([^,]+)")
  local set = {}
  for h in (list or ""):gmatch("[^;]+") do set[h] = true end
  return set
end

local function get_mock() return mock end

-- A test: the mock is told `auth`, a client of `mode` calls `method` on e1
-- and gets the gateway's 401 APIGW.0301; check(err) is what else must hold.
local function it_is_refused(name, mode, auth, method, check)
  it(name, function()
    mock:auth(auth)
    local c = maker(mode)()
    local ok, err = pcall(c[method], c, D.service_id, "e1")
    assert.is_false(ok)
    assert.are.equal(401, err.status)
    assert.are.equal("APIGW.0301", err.code)
    if check then check(err) end
    c:close()
  end)
end

setup(function() mock = helper.start() end)
teardown(function() mock:stop() end)

local TOKEN = { token = D.token }
local AKSK = { ak = D.ak, sk = D.sk }
local AKSK_ST = { ak = D.ak, sk = D.sk, security_token = SECURITY_TOKEN }

describe("with a token", function()
  cases(maker(TOKEN), get_mock, { auth = { ak = null, sk = null } })

  it("sends X-Auth-Token and no signature", function()
    local c = maker(TOKEN)()
    c:accept(D.service_id, { "e1", "e2" })
    c:connections(D.service_id)
    local log = mock:log()
    assert.are.equal(3, #log)
    for _, r in ipairs(log) do
      assert.are.equal(D.token, header(r, "X-Auth-Token"))
      assert.is_nil(header(r, "Authorization"))
      assert.is_nil(header(r, "X-Sdk-Date"))
    end
    c:close()
  end)

  it_is_refused("is refused when the mock does not know the token", TOKEN, { token = "another-token" }, "accept",
    function(err)
      assert.is_nil(tostring(err):find(D.token, 1, true))
      assert.are.equal("pendingAcceptance", mock:by_id().e1.status)
    end)
end)

describe("with AK/SK", function()
  cases(maker(AKSK), get_mock, { auth = { token = null } })

  it("signs every request (action and list) and sends no token", function()
    local c = maker(AKSK)()
    c:accept(D.service_id, { "e1", "e2" })
    c:connections(D.service_id, { status = "accepted", limit = 1 })
    c:connections(D.service_id, { status = "accepted", offset = 1 })
    local log = mock:log()
    assert.are.equal(4, #log) -- two actions, two one-page listings
    for _, r in ipairs(log) do
      local authz = header(r, "Authorization")
      assert.is_nil(header(r, "X-Auth-Token"))
      assert.is_nil(header(r, "X-Security-Token"))
      assert.matches("^SDK%-HMAC%-SHA256 Access=" .. D.ak .. ", SignedHeaders=[%w;%-]+, Signature=%x+$", authz)
      assert.are.equal(64, #authz:match("Signature=(%x+)"))
      assert.matches("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ$", header(r, "X-Sdk-Date"))
      assert.are.equal(D.project_id, header(r, "X-Project-Id"))
      local s = signed_headers(authz)
      for _, h in ipairs { "host", "content-type", "x-project-id", "x-sdk-date" } do
        assert.is_true(s[h] == true, h .. " is not signed in " .. authz)
      end
      assert.is_nil(s["x-security-token"])
    end
    c:close()
  end)

  it_is_refused("is refused when the mock knows another SK", AKSK, { sk = "some-other-secret" }, "accept",
    function() assert.are.equal("pendingAcceptance", mock:by_id().e1.status) end)

  it_is_refused("is refused when the mock wants a security token the client lacks", AKSK,
    { security_token = SECURITY_TOKEN }, "accept")
end)

describe("with AK/SK and a security token", function()
  cases(maker(AKSK_ST), get_mock, { auth = { token = null, security_token = SECURITY_TOKEN } })

  it("sends the security token on every request, signed", function()
    local c = maker(AKSK_ST)()
    c:reject(D.service_id, { "e1", "e2" })
    c:connections(D.service_id)
    local log = mock:log()
    assert.are.equal(3, #log)
    for _, r in ipairs(log) do
      assert.are.equal(SECURITY_TOKEN, header(r, "X-Security-Token"))
      assert.is_true(signed_headers(header(r, "Authorization"))["x-security-token"])
      assert.is_nil(header(r, "X-Auth-Token"))
    end
    c:close()
  end)

  it_is_refused("is refused when the mock expects another security token", AKSK_ST,
    { security_token = "a-different-token" }, "reject", function(err)
      assert.is_nil(tostring(err):find(SECURITY_TOKEN, 1, true))
      assert.is_nil(err.message:find(SECURITY_TOKEN, 1, true))
    end)
end)

-- The client signs in C (request.c calls the signer directly); vpcep.sign is
-- the same signer behind a Lua adapter. Given what the client sent and the
-- date it signed, vpcep.sign must give the very same Authorization.
describe("the client's signature and vpcep.sign", function()
  local function count(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    return n
  end

  -- vpcep.sign of a request as sent: its headers minus Authorization and
  -- User-Agent (the client signs neither), the date from its X-Sdk-Date.
  local function resign(req, cred)
    local hs = {}
    for k, v in pairs(req.headers) do
      if k:lower() ~= "authorization" and k:lower() ~= "user-agent" then hs[k] = v end
    end
    return vpcep.sign({ method = req.method, url = req.url, headers = hs, body = req.body },
      { ak = cred.ak, sk = cred.sk, security_token = cred.security_token }).Authorization
  end

  for _, mode in ipairs({ { "AK/SK", AKSK }, { "AK/SK and a security token", AKSK_ST } }) do
    local name, cred = mode[1], mode[2]

    it("agree on prepare()'s receive and reject, " .. name, function()
      local c = maker(cred)()
      local sent = #mock:log()
      for _, action in ipairs({ "receive", "reject" }) do
        local req = c:prepare(action, D.service_id, "e1")
        assert.are.equal(resign(req, cred), req.headers.Authorization)
        local signed = "content-type;host;x-project-id;x-sdk-date"
          .. (cred.security_token and ";x-security-token" or "")
        assert.are.equal(signed, req.headers.Authorization:match("SignedHeaders=([^,]+),"))
        -- what prepare shows is what is sent: these headers and no other
        assert.are.equal(cred.security_token and 7 or 6, count(req.headers))
        for _, h in ipairs({ "Content-Type", "Host", "X-Project-Id", "X-Sdk-Date", "Authorization", "User-Agent" }) do
          assert.is_string(req.headers[h], h)
        end
        assert.are.equal(cred.security_token, req.headers["X-Security-Token"])
      end
      assert.are.equal(sent, #mock:log()) -- prepare sends nothing
      c:close()
    end)

    it("agree on every request sent (action and list pages), " .. name, function()
      mock:reset()
      mock:auth(merge({ token = null }, cred.security_token and { security_token = cred.security_token } or {}))
      mock:service { endpoints = { { id = "e1" }, { id = "e2" }, { id = "e3" } } }
      local c = maker(cred)()
      c:accept(D.service_id, { "e1", "e2" })
      for offset = 0, 2 do
        c:connections(D.service_id, { limit = 1, sort_key = "create_at", sort_dir = "asc", offset = offset })
      end
      local log = mock:log()
      assert.is_true(#log >= 5, "two actions and three pages")
      for i, r in ipairs(log) do
        local authz = header(r, "Authorization")
        -- the request as it was sent, with only the headers it signed
        local hs = {}
        for h in authz:match("SignedHeaders=([^,]+),"):gmatch("[^;]+") do
          local v, n = helper.log_header(r, h)
          assert.are.equal(1, n, h)
          hs[h] = v
        end
        local req = { method = r.method, url = mock.url .. r.path, headers = hs,
                      body = r.method ~= "GET" and r.body or nil }
        assert.are.equal(authz, resign(req, cred), "request " .. i .. ": " .. r.method .. " " .. r.path)
      end
      c:close()
    end)
  end
end)
