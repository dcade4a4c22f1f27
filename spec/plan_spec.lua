-- client:plan(method, ...): the call's state machine, driven from Lua as the
-- non-blocking hosts drive it. The driver here carries each request over
-- luasocket, one at a time, and the results and errors must be those of
-- the blocking client, which runs the same plan in C.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local SID = helper.defaults.service_id

-- Runs op to its end: every request sent, in the order handed out, its
-- answer fed back. Returns op:result()'s results, and what was seen.
local function drive(mock, op, opts)
  opts = opts or {}
  local seen = { sends = 0, most_at_once = 0, waits = 0 }
  while true do
    local what, x = op:next()
    if what == "done" then break end
    if what == "send" then
      seen.most_at_once = math.max(seen.most_at_once, #x)
      for _, i in ipairs(x) do
        local req = op:request(i)
        seen.sends = seen.sends + 1
        seen.last = req
        if opts.fail then
          op:fail(i, opts.fail, "no answer")
        else
          local status, body, headers = mock:request{ method = req.method,
            path = req.url:sub(#mock.url + 1), headers = req.headers, body = req.body }
          op:feed(i, status, body, headers)
        end
      end
    else
      assert.are.equal("wait", what)
      assert.is_true(type(x) == "number" and x >= 0)
      seen.waits = seen.waits + 1
      require("socket").sleep(math.min(x, 0.05))
    end
  end
  return seen, op:result()
end

-- The fields of an error object that both paths must give alike.
local function shape(err)
  local t = { code = err.code, status = err.status, endpoint = err.endpoint, retryable = err.retryable,
              failed = err.failed, tries = err.tries }
  if err.results then
    t.results = {}
    for i, r in ipairs(err.results) do
      t.results[i] = vpcep.is_error(r) and { code = r.code, endpoint = r.endpoint } or { id = r.id, status = r.status }
    end
  end
  return t
end

describe("client:plan", function()
  local mock
  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function() mock:reset() end)

  it("accepts like the blocking client: same connections, same order, concurrency respected", function()
    mock:seed(12)
    local ids = helper.ids(12)
    local c = helper.client(mock, { concurrency = 5 })
    local seen, conns = drive(mock, c:plan("accept", SID, ids))
    assert.are.equal(12, #conns)
    assert.are.equal(12, seen.sends)
    assert.are.equal(5, seen.most_at_once)
    for i, conn in ipairs(conns) do
      assert.are.equal(ids[i], conn.id)
      assert.are.equal("accepted", conn.status)
    end
    mock:reset(); mock:seed(12)
    local blocking = c:accept(SID, ids)
    for i = 1, 12 do
      assert.are.equal(blocking[i].id, conns[i].id)
      assert.are.equal(blocking[i].status, conns[i].status)
    end
  end)

  it("hands out fully authenticated requests, signed per try with AK/SK", function()
    mock:seed(1)
    local opts = helper.client_opts(mock, { ak = helper.defaults.ak, sk = helper.defaults.sk })
    opts.token = nil
    local c = vpcep.new(opts)
    local seen, conns = drive(mock, c:plan("reject", SID, "ep-0000"))
    assert.are.equal("rejected", conns[1].status)
    assert.matches("^SDK%-HMAC%-SHA256 ", seen.last.headers.Authorization)
    assert.are.equal("POST", seen.last.method)
    assert.is_true(seen.last.timeout > 0 and seen.last.connect_timeout <= seen.last.timeout)
    assert.is_true(seen.last.verify)
  end)

  it("retries a 503 with Retry-After as the blocking client does, and stops at retries", function()
    mock:seed(1)
    mock:fault{ match = { endpoint = "ep-0000" }, times = 1,
                answer = { status = 503, json = { error_code = "APIGW.0201" }, headers = { ["Retry-After"] = "0" } } }
    local c = helper.client(mock, { retries = 2 })
    local seen, conns = drive(mock, c:plan("accept", SID, { "ep-0000" }))
    assert.are.equal("accepted", conns[1].status)
    assert.are.equal(2, seen.sends)
    mock:fault{ match = { endpoint = "ep-0000" }, times = 0, answer = { status = 503, json = {} } }
    local op = c:plan("accept", SID, { "ep-0000" })
    local ok, err = pcall(drive, mock, op)
    assert.is_false(ok)
    assert.are.equal("HTTP.503", err.code)
    assert.are.equal(3, err.tries)
    assert.is_true(err.retryable)
  end)

  it("fails with the same error object as the blocking client", function()
    mock:seed(2)
    local c = helper.client(mock)
    local ids = { "ep-0000", "no-such-endpoint", "ep-0001" }
    local ok, perr = pcall(drive, mock, c:plan("accept", SID, ids))
    assert.is_false(ok)
    assert.is_true(vpcep.is_error(perr))
    mock:reset(); mock:seed(2)
    local berr = helper.raised(c.accept, c, SID, ids)
    assert.are.same(shape(berr), shape(perr))
    assert.are.equal("EndPoint.0005", perr.code)
    assert.are.equal("no-such-endpoint", perr.endpoint)
    assert.are.equal(tostring(berr):gsub("request_id=%x+", ""), tostring(perr):gsub("request_id=%x+", ""))
  end)

  it("turns a failed request into the blocking client's transport errors, retrying what is retried", function()
    mock:seed(1)
    local c = helper.client(mock, { retries = 1 })
    local cases = { ["vpcep.connect"] = { 2, true }, ["vpcep.timeout"] = { 2, true },
                    ["vpcep.tls"] = { 1, false }, ["vpcep.transport"] = { 1, true },
                    ["vpcep.bad_response"] = { 1, false } }
    for code, want in pairs(cases) do
      local op = c:plan("accept", SID, "ep-0000")
      local ok, err = pcall(drive, mock, op, { fail = code })
      assert.is_false(ok, code)
      assert.are.equal(code, err.code)
      assert.are.equal(want[1], err.tries, code)
      assert.are.equal(want[2], err.retryable, code)
      assert.are.equal("ep-0000", err.endpoint)
    end
  end)

  it("waits (opts.wait) by asking to pause between polls, and pages a listing", function()
    mock:config{ transition_ms = 300 }
    mock:seed(3)
    local c = helper.client(mock)
    local seen, conns = drive(mock, c:plan("accept", SID, helper.ids(3), { wait = 20 }))
    for _, conn in ipairs(conns) do assert.are.equal("accepted", conn.status) end
    assert.is_true(seen.waits >= 1)
    assert.is_true(seen.sends > 3) -- the polls
    mock:config{ transition_ms = 0 }
    mock:seed(2300)
    local _, all, total = drive(mock, c:plan("connections", SID))
    assert.are.equal(2300, #all)
    assert.are.equal(2300, total)
    local _, some, n = drive(mock, c:plan("connections", SID, { status = "pendingAcceptance", limit = 1000 }))
    local blist, btotal = c:connections(SID, { status = "pendingAcceptance", limit = 1000 })
    assert.are.equal(#blist, #some)
    assert.are.equal(btotal, n)
  end)

  it("refuses bad use: unknown methods, bad arguments, numbers not out, results before the end", function()
    mock:seed(1)
    local c = helper.client(mock)
    helper.einval(c.plan, c, "describe", SID, {})
    helper.einval(c.plan, c, "accept", SID, {})
    helper.einval(c.plan, c, "accept", "bad id!", "ep-0000")
    helper.einval(c.plan, c, "connections", SID, { limit = 5000 })
    local op = c:plan("accept", SID, "ep-0000")
    helper.einval(op.result, op)
    helper.einval(op.feed, op, 1, 200, "{}")
    helper.einval(op.request, op, 1)
    local what, x = op:next()
    assert.are.equal("send", what)
    helper.einval(op.feed, op, 2, 200, "{}")
    helper.einval(op.feed, op, x[1], 99, "{}")
    helper.einval(op.feed, op, x[1], 200, 5)
    helper.einval(op.fail, op, x[1], "vpcep.nonsense", "x")
    helper.einval(op.next, "not a plan")
    op:fail(x[1], "vpcep.tls", "bad certificate")
    assert.are.equal("done", (op:next()))
    local err = helper.raised(op.result, op)
    assert.are.equal("vpcep.tls", err.code)
  end)

  it("ends with vpcep.cancelled once its client is closed", function()
    mock:seed(1)
    local c = helper.client(mock)
    local op = c:plan("accept", SID, "ep-0000")
    assert.are.equal("send", (op:next()))
    c:close()
    local err = helper.raised(op.feed, op, 1, 200, "{}")
    assert.are.equal("vpcep.cancelled", err.code)
    err = helper.raised(op.next, op)
    assert.are.equal("vpcep.cancelled", err.code)
    collectgarbage(); collectgarbage()
  end)

  it("never lets the answer's secrets out: a token echoed back is redacted", function()
    mock:seed(1)
    local c = helper.client(mock)
    mock:fault{ match = { endpoint = "ep-0000" }, times = 0,
                answer = { status = 401,
                           json = { error_code = "APIGW.0301", error_msg = "bad " .. helper.defaults.token } } }
    local ok, err = pcall(drive, mock, c:plan("accept", SID, "ep-0000"))
    assert.is_false(ok)
    assert.is_nil(tostring(err):find(helper.defaults.token, 1, true))
    assert.are.equal("APIGW.0301", err.code)
  end)
end)
