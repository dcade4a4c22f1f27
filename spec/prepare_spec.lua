-- spec/prepare_spec.lua: client:prepare(action, service_id, endpoint_id)
-- returns the request the client itself would send (token auth), and
-- sending exactly that with luasocket works against the mock.
package.path = "./?.lua;" .. package.path
local helper = require "spec.helper"
local vpcep = require "vpcep"
local json = helper.json
local D = helper.defaults

local TOKEN = "prep-token-" .. string.rep("q", 30)

local einval = helper.einval

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("client:prepare", function()
  local mock, client

  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function()
    mock:reset()
    mock:auth{ token = TOKEN }
    mock:service{ endpoints = { { id = "e1" }, { id = "e2" } } }
    client = helper.client(mock, { token = TOKEN })
  end)
  after_each(function() client:close() end)

  it("returns method, url, headers and body for receive", function()
    local req = client:prepare("receive", D.service_id, "e1")
    assert.are.equal("POST", req.method)
    assert.are.equal(mock.url .. "/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. D.service_id
      .. "/connections/action", req.url)
    assert.is_table(req.headers)
    assert.are.equal(TOKEN, req.headers["X-Auth-Token"])
    assert.are.equal("application/json", req.headers["Content-Type"])
    assert.matches("vpcep", req.headers["User-Agent"], 1, true)
    assert.matches(vpcep._VERSION:match("(%d+%.%d+%.%d+)"), req.headers["User-Agent"], 1, true)
    assert.are.equal(3, count(req.headers))
    assert.is_nil(req.headers.Authorization)
    assert.is_string(req.body)
    assert.are.same({ action = "receive", endpoints = { "e1" } }, json.decode(req.body))
    -- nothing is sent by prepare
    assert.are.equal(0, #mock:log())
  end)

  it("returns a reject body for reject", function()
    local req = client:prepare("reject", D.service_id, "e2")
    assert.are.equal("POST", req.method)
    assert.are.same({ action = "reject", endpoints = { "e2" } }, json.decode(req.body))
  end)

  it("sending exactly the prepared receive with luasocket accepts the connection", function()
    local req = client:prepare("receive", D.service_id, "e1")
    local status, body = mock:send(req)
    assert.are.equal(200, status)
    local doc = json.decode(body)
    assert.are.equal("e1", doc.connections[1].id)
    assert.are.equal("accepted", doc.connections[1].status)
    assert.are.equal("accepted", mock:by_id().e1.status)
    assert.are.equal("pendingAcceptance", mock:by_id().e2.status)
  end)

  it("sending the prepared reject rejects, and vpcep.parse reads the answer", function()
    local req = client:prepare("reject", D.service_id, "e2")
    local status, body, headers = mock:send(req)
    local doc = vpcep.parse(status, body, headers)
    assert.are.equal("rejected", doc.connections[1].status)
    assert.are.equal("rejected", mock:by_id().e2.status)
  end)

  it("the prepared request equals what the client sends itself", function()
    local req = client:prepare("receive", D.service_id, "e1")
    client:accept(D.service_id, "e1")
    local r = mock:log()[1]
    assert.are.equal(req.method, r.method)
    assert.are.equal(req.url, mock.url .. r.path)
    assert.are.equal(req.body, r.body)
    for name, value in pairs(req.headers) do
      local got
      for _, h in ipairs(r.headers) do if h[1]:lower() == name:lower() then got = h[2] end end
      assert.are.equal(value, got, name)
    end
  end)

  it("a prepared request with a wrong token is refused by the service", function()
    local req = client:prepare("receive", D.service_id, "e1")
    req.headers["X-Auth-Token"] = "wrong"
    local status, body, headers = mock:send(req)
    assert.are.equal(401, status)
    local ok, err = pcall(vpcep.parse, status, body, headers)
    assert.is_false(ok)
    assert.are.equal("APIGW.0301", err.code)
    assert.are.equal("pendingAcceptance", mock:by_id().e1.status)
  end)

  it("each call returns a fresh table", function()
    local a = client:prepare("receive", D.service_id, "e1")
    local b = client:prepare("receive", D.service_id, "e1")
    assert.are_not.equal(a, b)
    assert.are_not.equal(a.headers, b.headers)
    a.headers["X-Auth-Token"] = "changed"
    assert.are.equal(TOKEN, b.headers["X-Auth-Token"])
    assert.are.equal(TOKEN, client:prepare("receive", D.service_id, "e1").headers["X-Auth-Token"])
  end)

  it("a region client builds the region's https url", function()
    local c = vpcep.new{ region = "cn-north-4", project_id = "p1", token = "t0ken" }
    local req = c:prepare("reject", "svc-1", "ep-1")
    assert.are.equal("https://vpcep.cn-north-4.myhuaweicloud.com/v1/p1/vpc-endpoint-services/svc-1/connections/action",
      req.url)
    c:close()
  end)

  it("refuses a bad action with invalid_argument", function()
    for _, a in ipairs({ "accept", "RECEIVE", "Reject", "", "receive ", "delete", "receive\0" }) do
      einval(function() client:prepare(a, D.service_id, "e1") end)
    end
    for _, a in ipairs({ 1, true, {}, function() end }) do
      einval(function() client:prepare(a, D.service_id, "e1") end)
    end
    einval(function() client:prepare(nil, D.service_id, "e1") end)
    einval(function() client:prepare() end)
  end)

  it("refuses bad service and endpoint ids with invalid_argument", function()
    for _, bad in ipairs({ "", string.rep("a", 65), "a/b", "a?b", "a#b", "..", "a%2F", "a\nb", 5, {} }) do
      einval(function() client:prepare("receive", bad, "e1") end)
      einval(function() client:prepare("receive", D.service_id, bad) end)
    end
    einval(function() client:prepare("receive", D.service_id) end)
    einval(function() client:prepare("receive", D.service_id, { "e1" }) end)
    assert.are.equal(0, #mock:log())
  end)

  it("a closed client refuses prepare", function()
    local c = helper.client(mock, { token = TOKEN })
    c:close()
    einval(function() c:prepare("receive", D.service_id, "e1") end)
  end)
end)
