-- Retries: what is retried, how many times, how long it waits, and that it
-- stops within the caller's timeout. Tries are counted in the mock's log.
local helper = require "spec.helper"
local vpcep = require "vpcep"
local socket = require "socket"
local d = helper.defaults

describe("retries", function()
  local mock
  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function()
    mock:reset()
    mock:service{ endpoints = { { id = "e1" }, { id = "e2" }, { id = "e3" } } }
  end)

  local function client(o) return helper.client(mock, { timeout = 20 }, o) end

  local function tries_for(ep)
    local n = 0
    for _, r in ipairs(mock:log()) do
      if r.path:find("/connections", 1, true) and (ep == nil or (r.body or ""):find('"' .. ep .. '"', 1, true)) then
        n = n + 1
      end
    end
    return n
  end

  local function fail(c, ...) return helper.raised(c.accept, c, ...) end

  local cases = {
    { "429 APIGW.0308", { status = 429, json = { error_code = "APIGW.0308", error_msg = "throttled" } } },
    { "400 EndPoint.0022", { status = 400, json = { error_code = "EndPoint.0022", error_msg = "too many" } } },
    { "500", { status = 500, json = { error_code = "EndPoint.0500", error_msg = "internal" } } },
    { "502 HTML", { status = 502, body = "<html>bad gateway</html>", headers = { ["Content-Type"] = "text/html" } } },
    { "503 empty", { status = 503, body = "" } },
    { "504", { status = 504, json = { error_code = "APIGW.0504", error_msg = "gateway timeout" } } },
  }
  for _, case in ipairs(cases) do
    it("retries " .. case[1] .. " and then succeeds", function()
      mock:fault{ times = 2, match = { endpoint = "e1" }, answer = case[2] }
      local conns = client():accept(d.service_id, "e1")
      assert.equal("accepted", conns[1].status)
      assert.equal(3, tries_for("e1"))
    end)
    it("gives up on " .. case[1] .. " after retries+1 tries and says so", function()
      mock:fault{ times = 0, match = { endpoint = "e1" }, answer = case[2] }
      local err = fail(client{ retries = 2 }, d.service_id, "e1")
      assert.equal(3, tries_for("e1"))
      assert.equal(3, err.tries)
      assert.equal(case[2].status, err.status)
      assert.is_true(err.retryable)
      assert.matches("%(after 3 tries%)", err.message)
      assert.matches("after 3 tries", tostring(err))
      assert.equal("e1", err.endpoint)
    end)
  end

  for _, st in ipairs{ 400, 401, 403, 404, 409 } do
    it("never retries " .. st, function()
      mock:fault{ times = 0, answer = { status = st, json = { error_code = "EndPoint.0" .. st, error_msg = "no" } } }
      local err = fail(client(), d.service_id, "e1")
      assert.equal(1, tries_for())
      assert.equal(st, err.status)
      assert.equal(1, err.tries)
      assert.is_nil(err.message:find("after", 1, true))
      assert.is_false(err.retryable)
    end)
  end

  it("does not retry a real 401 from bad credentials", function()
    local err = fail(client{ token = "wrong-token-value" }, d.service_id, "e1")
    assert.equal("APIGW.0301", err.code)
    assert.equal(1, tries_for())
  end)

  it("retries = 0 turns retrying off", function()
    mock:fault{ times = 1, answer = { status = 503, json = { error_code = "X.503", error_msg = "busy" } } }
    local err = fail(client{ retries = 0 }, d.service_id, "e1")
    assert.equal(503, err.status)
    assert.equal(1, err.tries)
    assert.equal(1, tries_for())
  end)

  it("honours Retry-After in seconds (the gap is at least that long)", function()
    mock:fault{ times = 1, answer = { status = 429, headers = { ["Retry-After"] = "2" },
      json = { error_code = "APIGW.0308", error_msg = "slow down" } } }
    client():accept(d.service_id, "e1")
    local log = mock:log()
    assert.equal(2, #log)
    assert.is_true(log[2].time - log[1].time >= 2 - 0.02, "gap " .. (log[2].time - log[1].time))
  end)

  it("honours Retry-After as an HTTP date", function()
    local at = os.time() + 3
    mock:fault{ times = 1, answer = { status = 503,
      headers = { ["Retry-After"] = os.date("!%a, %d %b %Y %H:%M:%S GMT", at) },
      json = { error_code = "X.503", error_msg = "later" } } }
    client():accept(d.service_id, "e1")
    local log = mock:log()
    assert.equal(2, #log)
    -- the client waits until `at`, so the second try comes no earlier than it
    assert.is_true(log[2].time >= at - 0.02, string.format("second try at %.3f, before %d", log[2].time, at))
    assert.is_true(log[2].time - log[1].time > 0.5)
  end)

  it("ignores a garbage Retry-After and falls back to backoff", function()
    mock:fault{ times = 1, answer = { status = 503, headers = { ["Retry-After"] = "soon, maybe" },
      json = { error_code = "X.503", error_msg = "later" } } }
    client():accept(d.service_id, "e1")
    assert.equal(2, tries_for())
  end)

  it("stops within the timeout: Retry-After 5 with timeout 1 gives one try", function()
    mock:fault{ times = 0, answer = { status = 429, headers = { ["Retry-After"] = "5" },
      json = { error_code = "APIGW.0308", error_msg = "slow down" } } }
    local err = fail(client{ timeout = 1 }, d.service_id, "e1")
    assert.equal(1, tries_for())
    assert.equal(1, err.tries)
    assert.equal("APIGW.0308", err.code)
  end)

  it("backs off between tries, growing (exponential backoff)", function()
    mock:fault{ times = 0, answer = { status = 500, json = { error_code = "X.500", error_msg = "oops" } } }
    fail(client{ retries = 3 }, d.service_id, "e1")
    local log = mock:log()
    assert.equal(4, #log)
    -- base 0.25 s with jitter in [d/2, d): gaps at least 0.125, 0.25, 0.5
    assert.is_true(log[2].time - log[1].time >= 0.125 - 0.02)
    assert.is_true(log[3].time - log[2].time >= 0.25 - 0.02)
    assert.is_true(log[4].time - log[3].time >= 0.5 - 0.02)
  end)

  it("bulk calls retry each request on its own", function()
    mock:faults{
      { times = 2, match = { endpoint = "e2" },
        answer = { status = 503, json = { error_code = "X.503", error_msg = "b" } } },
      { times = 0, match = { endpoint = "e3" }, answer = { status = 404,
        json = { error_code = "EndPoint.0005", error_msg = "gone" } } },
    }
    local ok, err = pcall(function() return client():accept(d.service_id, { "e1", "e2", "e3" }) end)
    assert.is_false(ok)
    assert.equal(1, tries_for("e1"))
    assert.equal(3, tries_for("e2"))
    assert.equal(1, tries_for("e3"))
    assert.equal("accepted", err.results[1].status)
    assert.equal("accepted", err.results[2].status)
    assert.equal("EndPoint.0005", err.results[3].code)
    assert.equal(1, err.failed)
  end)

  it("bulk: one endpoint exhausting its retries does not hold others back", function()
    mock:fault{ times = 0, match = { endpoint = "e1" }, answer = { status = 502, body = "" } }
    local ok, err = pcall(function() return client{ retries = 1 }:accept(d.service_id, { "e1", "e2" }) end)
    assert.is_false(ok)
    assert.equal(2, tries_for("e1"))
    assert.equal(1, tries_for("e2"))
    assert.equal(2, err.results[1].tries)
    assert.equal("accepted", err.results[2].status)
  end)

  it("retries the list call too", function()
    mock:fault{ times = 1, match = { method = "GET" }, answer = { status = 503, body = "" } }
    local list, total = client():connections(d.service_id)
    assert.equal(3, #list)
    assert.equal(3, total)
    assert.equal(2, tries_for())
  end)

  it("retries connection refused (vpcep.connect) and reports the tries", function()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    local c = vpcep.new{ project_id = d.project_id, endpoint = "http://127.0.0.1:" .. port, token = d.token,
                         timeout = 20, retries = 2 }
    local err = fail(c, d.service_id, "e1")
    assert.equal("vpcep.connect", err.code)
    assert.equal(3, err.tries)
    assert.is_true(err.retryable)
    assert.matches("after 3 tries", err.message)
  end)

  it("retries a connect timeout (vpcep.timeout) while time is left", function()
    -- a listener whose accept queue is full drops further SYNs: connect hangs
    local s = assert(socket.bind("127.0.0.1", 0, 0))
    local _, port = s:getsockname()
    local fillers = {}
    for _ = 1, 8 do
      local f = socket.tcp(); f:settimeout(0.2)
      if f:connect("127.0.0.1", port) then fillers[#fillers + 1] = f else f:close() break end
    end
    local c = vpcep.new{ project_id = d.project_id, endpoint = "http://127.0.0.1:" .. port, token = d.token,
                         timeout = 20, connect_timeout = 0.3, retries = 2 }
    local err = fail(c, d.service_id, "e1")
    for _, f in ipairs(fillers) do f:close() end
    s:close()
    assert.equal("vpcep.timeout", err.code)
    assert.equal(3, err.tries)
  end)
end)
