-- Leaks: 10,000 raised errors of every kind, for `make check` to run under
-- AddressSanitizer/LeakSanitizer and valgrind. On its own it checks that
-- neither the Lua heap nor the process grows with the number of errors.
-- VPCEP_LEAK_SCALE (default 1) scales the counts down for slow runs.
local helper = require "spec.helper"
local vpcep = require "vpcep"
local socket = require "socket"
local d = helper.defaults

local scale = tonumber(os.getenv("VPCEP_LEAK_SCALE") or "1") or 1
local function n(x) return math.max(1, math.floor(x * scale)) end

local function rss_kb()
  local f = io.open("/proc/self/statm", "r")
  if not f then return nil end
  local _, pages = f:read("*n", "*n")   -- statm: size, then resident
  f:close()
  return pages and pages * 4 or nil
end

describe("no leaks over 10,000 raised errors", function()
  local mock, total, codes
  setup(function()
    mock = helper.start()
    total, codes = 0, {}
  end)
  teardown(function() mock:stop() end)
  before_each(function()
    mock:reset()
    mock:service{ endpoints = { { id = "e1" }, { id = "e2" } } }
  end)

  local function count_err(ok, err, want)
    assert.is_false(ok)
    assert.is_true(vpcep.is_error(err), tostring(err))
    if want then assert.equal(want, err.code) end
    assert.is_string(tostring(err))
    total = total + 1
    codes[err.code] = (codes[err.code] or 0) + 1
  end

  local function expect(want, f, ...)
    local ok, err = pcall(f, ...)
    count_err(ok, err, want)
  end

  local function client(o) return helper.client(mock, { timeout = 5, retries = 0 }, o) end

  it("invalid_argument, from every entry point (4000)", function()
    local c = client()
    local cases = {
      function() return vpcep.new{ project_id = "p/1", endpoint = mock.url, token = d.token } end,
      function() return vpcep.new{ project_id = d.project_id, endpoint = mock.url, token = "x\n" } end,
      function() return vpcep.new{ project_id = d.project_id, endpoint = mock.url, ak = "a", sk = "s",
        token = "t" } end,
      function() return vpcep.new{ project_id = d.project_id, endpoint = mock.url, token = "t", timeout = -1 } end,
      function() return c:accept(d.service_id, "a/b") end,
      function() return c:accept(d.service_id, { "e1", "e1" }) end,
      function() return c:accept(d.service_id, { "e1", string.rep("x", 65) }) end,
      function() return c:connections(d.service_id, { limit = 5000 }) end,
      function() return c:prepare("nope", d.service_id, "e1") end,
      function() return vpcep.sign({ method = "GET", url = "https://h/p", headers = { A = "\r" } },
        { ak = "a", sk = "s" }) end,
    }
    for i = 1, n(4000) do
      count_err(pcall(cases[(i - 1) % #cases + 1]))
    end
    c:close()
  end)

  it("vpcep.parse errors of every shape (3000)", function()
    local bodies = {
      { 404, '{"error_code":"EndPoint.0005","error_msg":"gone"}' },
      { 401, '{"error":{"code":"APIGW.0301","message":"bad"}}' },
      { 500, "<html>" .. string.rep("x", 3000) .. "</html>" },
      { 200, "" }, { 200, "{" }, { 200, '{"connections":{"a":1}}' }, { 200, "\255" },
      { 200, string.rep("[", 200) }, { 429, "" }, { 200, '{"connections":[1]}' },
    }
    local h = { ["X-Request-Id"] = "rid", ["Retry-After"] = "3", ["Content-Type"] = "application/json" }
    for i = 1, n(3000) do
      local b = bodies[(i - 1) % #bodies + 1]
      count_err(pcall(vpcep.parse, b[1], b[2], h))
    end
  end)

  it("HTTP errors, bad answers and failed connections from the mock (2000)", function()
    local c = client{ max_body = 2048 }
    mock:faults{
      { times = 0, match = { endpoint = "e1", method = "POST" },
        answer = { status = 404, json = { error_code = "EndPoint.0005", error_msg = "gone" } } },
      { times = 0, match = { endpoint = "e2", method = "POST" }, answer = { status = 200,
        body = '{"connections":[{"id":"e2","status":"failed","error":[{"error_code":"E","error_message":"m"}]}]}' } },
      { times = 0, match = { method = "GET" }, answer = { status = 200, body = '{"connections":"no"}' } },
    }
    for i = 1, n(2000) do
      local k = i % 4
      if k == 0 then expect("EndPoint.0005", c.accept, c, d.service_id, "e1")
      elseif k == 1 then expect("vpcep.connection_failed", c.accept, c, d.service_id, "e2")
      elseif k == 2 then expect("vpcep.bad_response", c.connections, c, d.service_id)
      else expect("EndPoint.0005", c.accept, c, d.service_id, { "e1", "e2" }) end
    end
    c:close()
  end)

  it("too large, reset, truncated, retried 503 (400)", function()
    local c = client{ max_body = 2048, retries = 1 }
    mock:faults{
      { times = 0, match = { endpoint = "e1" }, big_body = 4096 },
      { times = 0, match = { endpoint = "e2" }, reset = true },
      { times = 0, match = { method = "GET" },
        answer = { status = 503, headers = { ["Retry-After"] = "0" }, body = "" } },
    }
    for i = 1, n(400) do
      local k = i % 3
      if k == 0 then expect("vpcep.bad_response", c.accept, c, d.service_id, "e1")
      elseif k == 1 then expect("vpcep.transport", c.accept, c, d.service_id, "e2")
      else expect("HTTP.503", c.connections, c, d.service_id) end
    end
    c:close()
  end)

  it("connection refused and timeouts (600)", function()
    local s = assert(socket.bind("127.0.0.1", 0)); local _, port = s:getsockname(); s:close()
    local refused = client{ endpoint = "http://127.0.0.1:" .. port }
    for _ = 1, n(400) do expect("vpcep.connect", refused.accept, refused, d.service_id, "e1") end
    refused:close()
    mock:fault{ times = 0, hang_ms = 300 }
    for _ = 1, n(200) do
      local c = client{ timeout = 0.02 }   -- a new client each time: handles made and freed
      expect("vpcep.timeout", c.accept, c, d.service_id, "e1")
    end
  end)

  it("raised every kind, 10,000 in all, and the heap did not grow with them", function()
    assert.equal(n(4000) + n(3000) + n(2000) + n(400) + n(400) + n(200), total)
    for _, code in ipairs{ "vpcep.invalid_argument", "vpcep.bad_response", "vpcep.connect", "vpcep.timeout",
                           "vpcep.transport", "vpcep.connection_failed", "EndPoint.0005", "HTTP.503" } do
      assert.is_true((codes[code] or 0) > 0, "no " .. code)
    end
    -- the same 1000 errors twice more: neither the Lua heap nor the RSS may grow by much
    local c = client()
    local function burst()
      for _ = 1, 1000 do pcall(c.accept, c, d.service_id, "bad/id") end
      for _ = 1, 1000 do pcall(vpcep.parse, 500, string.rep("y", 5000)) end
      collectgarbage(); collectgarbage()
    end
    burst()
    local heap1, rss1 = collectgarbage("count"), rss_kb()
    for _ = 1, 5 do burst() end
    local heap2, rss2 = collectgarbage("count"), rss_kb()
    c:close()
    assert.is_true(heap2 - heap1 < 256, string.format("Lua heap grew %.0f KiB", heap2 - heap1))
    if rss1 and rss2 and not os.getenv("VPCEP_UNDER_TOOL") then
      assert.is_true(rss2 - rss1 < 4096, string.format("RSS grew %d KiB", rss2 - rss1))
    end
  end)
end)
