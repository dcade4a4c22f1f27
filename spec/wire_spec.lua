-- spec/wire_spec.lua: the request on the wire is the one that was signed.
-- The mock logs every request as it arrived; spec/mock/verify_logged.py
-- recomputes its signature with the mock's own Python signer
-- (spec/mock/sdk_signer.py), independent of the module.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local D = helper.defaults
local SID = D.service_id
local json = helper.json
local SECURITY_TOKEN = "wire-security-token-7Hq2"
local VERIFY = helper.spec_dir .. "/mock/verify_logged.py"

local mock

local function client(extra)
  return vpcep.new(helper.aksk_opts(mock, { retries = 3 }, extra))
end

-- value of a header in a logged request ([[name, value], ...]); also the count
local wire_header = helper.log_header

-- value of a header in a Lua headers table, whatever the case of its name
local function table_header(headers, name)
  for k, v in pairs(headers) do
    if k:lower() == name:lower() then return v end
  end
  return nil
end

local function signed_list(authz)
  local list = {}
  for h in (authz:match("SignedHeaders=([^,]+)") or ""):gmatch("[^;]+") do list[#list + 1] = h end
  return list
end

-- Recompute the Authorization of a logged request with the Python signer.
local function recompute(entry, ak, sk)
  local doc = { method = entry.method, path = entry.path, headers = entry.headers, body = entry.body,
                ak = ak or D.ak, sk = sk or D.sk }
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(json.encode(doc))
  f:close()
  local p = assert(io.popen(helper.python .. " " .. helper.shell_quote(VERIFY) .. " "
    .. helper.shell_quote(tmp) .. " 2>&1", "r"))
  local out = p:read("*a")
  p:close()
  os.remove(tmp)
  local ok, res = pcall(json.decode, out)
  assert(ok and type(res) == "table", "verify_logged.py said: " .. out)
  return res
end

-- a logged-style entry made from a request table (prepare's, or one we signed)
local function entry_of(req)
  local headers = {}
  for k, v in pairs(req.headers) do headers[#headers + 1] = { k, v } end
  return { method = req.method, path = req.url:sub(#mock.url + 1), headers = headers, body = req.body or "" }
end

local function utc(offset)
  return os.date("!%Y%m%dT%H%M%SZ", os.time() + offset)
end

-- prepare's request re-signed by vpcep.sign with a chosen date
local function signed_at(date, action, ep)
  local c = client()
  local p = c:prepare(action or "receive", SID, ep or "e1")
  c:close()
  local req = { method = p.method, url = p.url, body = p.body, headers = {} }
  for k, v in pairs(p.headers) do
    local l = k:lower()
    if l ~= "x-sdk-date" and l ~= "authorization" and l ~= "user-agent" then req.headers[k] = v end
  end
  req.headers = vpcep.sign(req, { ak = D.ak, sk = D.sk, date = date })
  return req
end

setup(function() mock = helper.start() end)
teardown(function() mock:stop() end)
before_each(function()
  mock:reset()
  mock:auth { token = json.null }
  mock:service { endpoints = { { id = "e1" }, { id = "e2" }, { id = "e3" } } }
end)

describe("the request on the wire", function()
  local function check_action(action, ep, extra)
    local c = client(extra)
    local conns = c[action == "receive" and "accept" or "reject"](c, SID, ep)
    assert.are.equal(action == "receive" and "accepted" or "rejected", conns[1].status)
    local p = c:prepare(action, SID, ep)
    c:close()
    local log = mock:log()
    assert.are.equal(1, #log)
    local r = log[1]

    -- method and path: no trailing slash, no query, the same as prepare's url
    assert.are.equal("POST", r.method)
    assert.are.equal(p.method, r.method)
    assert.are.equal(mock.url, p.url:sub(1, #mock.url))
    assert.are.equal(p.url:sub(#mock.url + 1), r.path)
    assert.are.equal("/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. SID .. "/connections/action", r.path)
    assert.are_not.equal("/", r.path:sub(-1))
    assert.is_nil(r.path:find("?", 1, true))

    -- body: the same bytes
    assert.are.equal(p.body, r.body)
    assert.are.equal(#p.body, tonumber((wire_header(r, "Content-Length"))))
    assert.are.same({ action = action, endpoints = { ep } }, json.decode(r.body))

    -- signed headers: the same list as prepare's, each on the wire once, same value
    local authz, n = wire_header(r, "Authorization")
    assert.are.equal(1, n)
    assert.matches("^SDK%-HMAC%-SHA256 Access=" .. D.ak .. ", ", authz)
    local signed = signed_list(authz)
    assert.are.same(signed_list(table_header(p.headers, "Authorization")), signed)
    assert.is_true(#signed >= 4)
    for _, h in ipairs(signed) do
      local v, count = wire_header(r, h)
      assert.are.equal(1, count, h .. " on the wire")
      if h ~= "x-sdk-date" then
        assert.are.equal(table_header(p.headers, h), v, h)
      else
        assert.matches("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ$", v)
      end
    end
    -- what is on the wire but unsigned: only what transports add
    local sset = {}
    for _, h in ipairs(signed) do sset[h] = true end
    for _, h in ipairs(r.headers) do
      local l = h[1]:lower()
      if not sset[l] then
        assert.is_truthy(({ authorization = 1, ["user-agent"] = 1, accept = 1, ["content-length"] = 1 })[l],
          "unsigned header on the wire: " .. h[1])
      end
    end

    -- the signature recomputed from the logged request by the Python signer
    local res = recompute(r)
    assert.are.equal(authz, res.authorization)
    assert.is_true(res.ok, res.reason)
    assert.matches("\n/v1/[^\n]*/connections/action/\n", res.canonical_request) -- signed with the slash
    return r, p, signed
  end

  it("an accept: path, body and signed headers are those of client:prepare", function()
    check_action("receive", "e1")
  end)

  it("a reject too", function()
    check_action("reject", "e2")
  end)

  it("the recomputation notices a changed body, path, header or key (it can fail)", function()
    local r = check_action("receive", "e3")
    local function changed(field, value)
      local e = { method = r.method, path = r.path, headers = r.headers, body = r.body }
      e[field] = value
      return e
    end
    local authz = wire_header(r, "Authorization")
    assert.are_not.equal(authz, recompute(changed("body", r.body:gsub("e3", "e2"))).authorization)
    assert.are_not.equal(authz, recompute(changed("body", r.body .. " ")).authorization)
    assert.are_not.equal(authz, recompute(changed("path", (r.path:gsub("action$", "Action")))).authorization)
    assert.are_not.equal(authz, recompute(changed("path", r.path .. "?x=1")).authorization)
    local hs = {}
    for i, h in ipairs(r.headers) do
      hs[i] = { h[1], h[1]:lower() == "x-project-id" and "p-other" or h[2] }
    end
    assert.are_not.equal(authz, recompute(changed("headers", hs)).authorization)
    assert.are_not.equal(authz, recompute(r, D.ak, D.sk .. "x").authorization)
    assert.is_false(recompute(changed("body", r.body .. "\n")).ok)
  end)

  it("client:prepare's own signature checks out with the Python signer (path without the slash)", function()
    local c = client()
    local p = c:prepare("reject", SID, "e1")
    c:close()
    assert.are_not.equal("/", p.url:sub(-1))
    local res = recompute(entry_of(p))
    assert.are.equal(table_header(p.headers, "Authorization"), res.authorization)
    assert.is_true(res.ok, res.reason)
  end)

  it("the list call with a query is signed as sent, pages included", function()
    mock:service { endpoints = {}, count = 5, prefix = "q-", status = "pendingAcceptance" }
    local c = client()
    local total = 0
    for _, offset in ipairs { 0, 2, 4 } do
      local list
      list, total = c:connections(SID, { status = "pendingAcceptance", sort_key = "create_at",
                                         sort_dir = "asc", limit = 2, offset = offset })
      assert.are.equal(offset < 4 and 2 or 1, #list)
    end
    c:close()
    assert.are.equal(5, total)
    local log = mock:log()
    assert.are.equal(3, #log)
    for _, r in ipairs(log) do
      assert.are.equal("GET", r.method)
      local path, query = r.path:match("^([^?]*)%?(.*)$")
      assert.is_string(query)
      assert.are.equal("/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. SID .. "/connections", path)
      assert.matches("limit=2", query)
      assert.are.equal("", r.body)
      local res = recompute(r)
      assert.are.equal(wire_header(r, "Authorization"), res.authorization)
      assert.is_true(res.ok, res.reason)
    end
  end)

  -- A handle keeps the URL it was last given, parsed, and parses again only
  -- when the next differs: here each call changes it, or keeps it, in turn.
  it("one client's calls each go to their own URL, whatever the handle sent before", function()
    local SID2 = "5f0b8d2c-6e3a-4b9f-8c4d-123456789abc"
    mock:service { service_id = SID2, endpoints = { { id = "f1" }, { id = "f2" }, { id = "f3" } } }
    local c = client()
    local base = "/v1/" .. D.project_id .. "/vpc-endpoint-services/"
    local expect = {}
    local function call(method, sid, arg, path, status)
      local res = c[method](c, sid, arg)
      if status then assert.are.equal(status, res[1].status) end
      expect[#expect + 1] = base .. sid .. path
    end
    call("accept", SID, "e1", "/connections/action", "accepted")
    call("accept", SID2, "f1", "/connections/action", "accepted")
    call("accept", SID2, "f2", "/connections/action", "accepted")
    call("connections", SID, { limit = 1 }, "/connections?limit=1&offset=0")
    call("reject", SID, "e2", "/connections/action", "rejected")
    call("connections", SID2, { limit = 2 }, "/connections?limit=2&offset=0")
    call("accept", SID2, { "f3" }, "/connections/action", "accepted")
    call("accept", SID, "e3", "/connections/action", "accepted")
    c:close()
    local log = mock:log()
    local paths = {}
    for i, r in ipairs(log) do
      paths[i] = r.path
      local res = recompute(r)
      assert.is_true(res.ok, res.reason)
    end
    assert.are.same(expect, paths)
  end)

  it("a retried request is still the signed one", function()
    mock:fault { match = { method = "POST" }, times = 1,
                 answer = { status = 503, json = { error_code = "APIGW.0201", error_msg = "busy" } } }
    local c = client { retries = 2 }
    local conns = c:accept(SID, "e1")
    c:close()
    assert.are.equal("accepted", conns[1].status)
    local log = mock:log()
    assert.are.equal(2, #log)
    assert.are.equal(log[1].body, log[2].body)
    assert.are.equal(log[1].path, log[2].path)
    for _, r in ipairs(log) do
      local res = recompute(r)
      assert.are.equal(wire_header(r, "Authorization"), res.authorization)
      assert.is_true(res.ok, res.reason)
    end
  end)

  it("client:prepare's request, sent by another HTTP client, is accepted as it is", function()
    local c = client()
    local p = c:prepare("receive", SID, "e2")
    c:close()
    local status, body = mock:send(p)
    assert.are.equal(200, status)
    assert.are.equal("accepted", json.decode(body).connections[1].status)
    assert.are.equal("accepted", mock:by_id().e2.status)
  end)

  it("client:prepare's request with another body is refused (the body is signed)", function()
    local c = client()
    local p = c:prepare("receive", SID, "e2")
    c:close()
    p.body = p.body:gsub("e2", "e3")
    local status, body = mock:send(p)
    assert.are.equal(401, status)
    assert.are.equal("APIGW.0301", json.decode(body).error_code)
    assert.are.equal("pendingAcceptance", mock:by_id().e3.status)
  end)
end)

describe("a wrong SK", function()
  it("is a 401 APIGW.0301 error, not retried, without secrets in it", function()
    local c = client { sk = "not-the-secret-key-999", retries = 3 }
    local ok, err = pcall(c.accept, c, SID, "e1")
    c:close()
    assert.is_false(ok)
    assert.is_true(vpcep.is_error(err))
    assert.are.equal(401, err.status)
    assert.are.equal("APIGW.0301", err.code)
    assert.is_falsy(err.retryable)
    assert.matches("^%x+$", err.request_id)
    assert.are.equal("e1", err.endpoint)
    local log = mock:log()
    assert.are.equal(1, #log) -- not retried
    local sig = wire_header(log[1], "Authorization"):match("Signature=(%x+)")
    for _, text in ipairs { err.message, tostring(err) } do
      assert.is_nil(text:find("not-the-secret-key-999", 1, true))
      assert.is_nil(text:find(sig, 1, true))
      assert.is_nil(text:find("SDK-HMAC-SHA256", 1, true))
    end
    assert.are.equal("pendingAcceptance", mock:by_id().e1.status)
  end)

  it("a wrong AK is refused the same way", function()
    local c = client { ak = "WRONGAK000000000000X" }
    local ok, err = pcall(c.accept, c, SID, "e1")
    c:close()
    assert.is_false(ok)
    assert.are.equal(401, err.status)
    assert.are.equal("APIGW.0301", err.code)
    assert.are.equal(1, #mock:log())
  end)
end)

describe("the date", function()
  it("20 minutes old is refused with 401 APIGW.0303", function()
    local status, body, headers = mock:send(signed_at(utc(-20 * 60)))
    assert.are.equal(401, status)
    local doc = json.decode(body)
    assert.are.equal("APIGW.0303", doc.error_code)
    local ok, err = pcall(vpcep.parse, status, body, headers)
    assert.is_false(ok)
    assert.are.equal("APIGW.0303", err.code)
    assert.are.equal(401, err.status)
    assert.are.equal(doc.request_id, err.request_id)
    assert.are.equal("pendingAcceptance", mock:by_id().e1.status)
  end)

  it("20 minutes ahead is refused too", function()
    local status, body = mock:send(signed_at(utc(20 * 60)))
    assert.are.equal(401, status)
    assert.are.equal("APIGW.0303", json.decode(body).error_code)
  end)

  it("5 minutes old is accepted (the same request, only the date differs)", function()
    local status, body = mock:send(signed_at(utc(-5 * 60)))
    assert.are.equal(200, status, body)
    assert.are.equal("accepted", mock:by_id().e1.status)
  end)

  it("a date changed after signing is a bad signature, not a stale one", function()
    local req = signed_at(utc(-60))
    for k in pairs(req.headers) do
      if k:lower() == "x-sdk-date" then req.headers[k] = utc(-120) end
    end
    local status, body = mock:send(req)
    assert.are.equal(401, status)
    assert.are.equal("APIGW.0301", json.decode(body).error_code)
  end)
end)

describe("a security token", function()
  it("is sent, equal to the one given, and signed", function()
    mock:auth { security_token = SECURITY_TOKEN }
    local c = client { security_token = SECURITY_TOKEN }
    local conns = c:accept(SID, "e1")
    local p = c:prepare("receive", SID, "e1")
    c:close()
    assert.are.equal("accepted", conns[1].status)
    local r = mock:log()[1]
    local v, n = wire_header(r, "X-Security-Token")
    assert.are.equal(1, n)
    assert.are.equal(SECURITY_TOKEN, v)
    assert.are.equal(SECURITY_TOKEN, table_header(p.headers, "X-Security-Token"))
    local authz = wire_header(r, "Authorization")
    local found = false
    for _, h in ipairs(signed_list(authz)) do found = found or h == "x-security-token" end
    assert.is_true(found, authz)
    local res = recompute(r)
    assert.are.equal(authz, res.authorization)
    assert.is_true(res.ok, res.reason)
    assert.is_truthy(res.canonical_request:find("x-security-token:" .. SECURITY_TOKEN .. "\n", 1, true))
  end)

  it("is not sent when not given", function()
    local c = client()
    c:accept(SID, "e1")
    c:close()
    local r = mock:log()[1]
    assert.is_nil((wire_header(r, "X-Security-Token")))
    assert.is_nil(wire_header(r, "Authorization"):find("x-security-token", 1, true))
  end)
end)
