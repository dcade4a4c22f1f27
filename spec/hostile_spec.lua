-- Hostile and broken answers, and hostile input refused before sending.
-- Every case must raise the right error object; the process must survive.
local helper = require "spec.helper"
local vpcep = require "vpcep"
local d = helper.defaults

local function client_for(mock, o) return helper.client(mock, { timeout = 10, retries = 0 }, o) end

local raised = helper.raised

-- For a describe block: its own mock, reset before each test to one service
-- with endpoint e1; each(mock, client) hands the block the mock and a new client.
local function mock_with_e1(each)
  local mock
  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function()
    mock:reset()
    mock:service{ endpoints = { { id = "e1" } } }
    each(mock, client_for(mock))
  end)
end

describe("hostile answers", function()
  local mock, c
  mock_with_e1(function(m, cl) mock, c = m, cl end)

  -- a fault rule whose strings may hold any bytes (the mock reads them as latin-1)
  local function fault_bytes(rule)
    local enc = helper.json.encode{ rules = { rule } }
    enc = enc:gsub("[\128-\255]", function(ch) return string.format("\\u%04x", ch:byte()) end)
    return mock:control("POST", "/_mock/faults", enc)
  end

  local function accept_err(o)
    local cl = o and client_for(mock, o) or c
    return raised(cl.accept, cl, d.service_id, "e1")
  end
  local function list_err()
    return raised(c.connections, c, d.service_id)
  end

  local bad200 = {
    { "empty body", { status = 200, body = "" } },
    { "HTML", { status = 200, body = "<html><body>proxy says hi</body></html>" } },
    { "truncated JSON", { status = 200, body = '{"connections":[{"id":"e1","status":"acc' } },
    { "a bare string", { status = 200, json = "connections" } },
    { "a number", { status = 200, body = "42" } },
    { "null", { status = 200, body = "null" } },
    { "an array", { status = 200, body = '[{"id":"e1"}]' } },
    { "connections not an array", { status = 200, json = { connections = { id = "e1" } } } },
    { "connections a string", { status = 200, json = { connections = "e1" } } },
    { "id not a string", { status = 200, json = { connections = { { id = 12345, status = "accepted" } } } } },
    { "id missing", { status = 200, json = { connections = { { status = "accepted" } } } } },
    { "connection not an object", { status = 200, body = '{"connections":["e1"]}' } },
    { "connection an array", { status = 200, body = '{"connections":[["e1","accepted"]]}' } },
    { "status not a string", { status = 200, body = '{"connections":[{"id":"e1","status":true}]}' } },
    { "error not an array", { status = 200, body = '{"connections":[{"id":"e1","status":"failed","error":"x"}]}' } },
    { "marker_id an object", { status = 200, body = '{"connections":[{"id":"e1","marker_id":{}}]}' } },
    { "total_count negative", { status = 200, body = '{"connections":[],"total_count":-1}' } },
    { "total_count a float", { status = 200, body = '{"connections":[],"total_count":1.5}' } },
    { "total_count a string", { status = 200, body = '{"connections":[],"total_count":"3"}' } },
    { "deeply nested arrays", { status = 200, body = string.rep("[", 10000) .. string.rep("]", 10000) } },
    { "deeply nested objects", { status = 200, body = '{"connections":[' .. string.rep('{"a":', 10000) .. "1"
      .. string.rep("}", 10000) .. "]}" } },
    { "nesting without end", { status = 200, body = string.rep("[", 100000) } },
    { "invalid UTF-8 in a string", { status = 200, body = '{"connections":[{"id":"e1","description":"\255\254"}]}' } },
    { "overlong UTF-8", { status = 200, body = '{"connections":[{"id":"e1","description":"\192\175"}]}' } },
    { "UTF-8 surrogate", { status = 200, body = '{"connections":[{"id":"e1","description":"\237\160\128"}]}' } },
    { "a NUL byte", { status = 200, body = '{"connections":[]}\0garbage' } },
    { "trailing garbage", { status = 200, body = '{"connections":[]} {"connections":[]}' } },
    { "NaN", { status = 200, body = '{"connections":[],"total_count":NaN}' } },
    { "huge number", { status = 200, body = '{"connections":[],"total_count":1e400}' } },
    { "a byte order mark", { status = 200, body = '\239\187\191{"connections":[{"id":"e1","status":"accepted"}]}' } },
    { "marker_id a fraction",
      { status = 200, body = '{"connections":[{"id":"e1","status":"accepted","marker_id":1.5}]}' } },
    { "marker_id a string",
      { status = 200, body = '{"connections":[{"id":"e1","status":"accepted","marker_id":"123"}]}' } },
    { "marker_id a rounded exponent", { status = 200,
      body = '{"connections":[{"id":"e1","status":"accepted","marker_id":4.223213213123213215e17}]}' } },
  }
  for _, case in ipairs(bad200) do
    it("200 with " .. case[1] .. " -> vpcep.bad_response", function()
      fault_bytes{ times = 0, answer = case[2] }
      local err = accept_err()
      assert.equal("vpcep.bad_response", err.code)
      assert.equal(200, err.status)
      assert.is_true(#err.message < 4096)
      local err2 = list_err()
      assert.equal("vpcep.bad_response", err2.code)
    end)
  end

  -- One fault in front of accept "e1" (times = 0: every try): the error's
  -- code, its status when given, and what else it must show.
  local faulted = {
    { "200 with an empty connections array is no connection for an action",
      { answer = { status = 200, body = '{"connections":[]}' } }, "vpcep.bad_response" },
    { "a 200 with the wrong Content-Type is refused",
      { answer = { status = 200, headers = { ["Content-Type"] = "text/html; charset=utf-8" },
        json = { connections = { { id = "e1", status = "accepted" } } } } }, "vpcep.bad_response",
      check = function(err) assert.matches("text/html", err.message) end },
    { "a Content-Type with control bytes does not reach the message raw",
      { raw = "HTTP/1.1 200 OK\r\nContent-Type: text/\1\2evil\r\nContent-Length: 18\r\n\r\n{\"connections\":[]}" },
      "vpcep.bad_response", check = function(err) assert.is_nil(err.message:find("[%z\1-\31]")) end },
    { "an error status with an HTML body gives HTTP.<status>",
      { answer = { status = 403, body = "<html>forbidden</html>", headers = { ["Content-Type"] = "text/html" } } },
      "HTTP.403", status = 403 },
    { "an error status with a huge code or message is capped",
      { answer = { status = 400, json = { error_code = string.rep("C", 5000), error_msg = string.rep("m", 100000) } } },
      "HTTP.400", check = function(err)
        assert.is_true(#err.message <= 4096, "message of " .. #err.message .. " bytes")
        assert.is_true(#tostring(err) <= 4300)
      end },
    { "an error body nested 10000 deep gives HTTP.<status>",
      { answer = { status = 400, body = string.rep('{"error":', 10000) .. "1" .. string.rep("}", 10000) } },
        "HTTP.400" },
    { "an error message with control bytes and invalid UTF-8 is cleaned",
      { answer = { status = 400, body = '{"error_code":"EndPoint.0001","error_msg":"a\\r\\nX-Evil: 1\\u0000b"}' } },
      "EndPoint.0001", check = function(err) assert.is_nil(err.message:find("[%z\1-\31]")) end },
    { "a body over max_body -> vpcep.bad_response", { big_body = 4096 }, "vpcep.bad_response",
      opts = { max_body = 2048 }, check = function(err) assert.matches("larg", err.message) end },
    { "a body over the default cap (4 MiB) -> vpcep.bad_response", { big_body = 4 * 1024 * 1024 + 100 },
      "vpcep.bad_response" },
    { "a connection reset before answering -> vpcep.transport", { reset = true }, "vpcep.transport",
      check = function(err) assert.is_nil(err.status) end },
    { "a body cut in the middle -> vpcep.transport", { truncate = true }, "vpcep.transport" },
    { "a connection reset mid-body -> vpcep.transport",
      { raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        .. "{\"connections\":[{\"id\":" },
      "vpcep.transport" },
    { "garbage instead of HTTP -> vpcep.transport", { raw = "\0\1\2 this is not HTTP at all\r\n\r\n" },
      "vpcep.transport" },
    { "a server that accepts and never answers: the timeout fires (vpcep.timeout)", { hang_ms = 5000 },
      "vpcep.timeout", opts = { timeout = 0.5 }, check = function(err) assert.is_true(err.retryable) end },
    { "a redirect is not followed (its own error, status 302)",
      function() return { redirect = mock.url .. "/v1/elsewhere" } end, "APIGW.0302", status = 302,
      check = function() assert.equal(1, #mock:log()) end },
    { "a bare redirect without a body is HTTP.302, not followed",
      function() return { raw = "HTTP/1.1 302 Found\r\nLocation: " .. mock.url
        .. "/v1/x\r\nContent-Length: 0\r\n\r\n" } end,
      "HTTP.302", status = 302, check = function() assert.equal(1, #mock:log()) end },
    { "a 200 about another endpoint than the one asked for -> vpcep.bad_response, never a result",
      { answer = { status = 200, json = { connections = { { id = "e2", status = "accepted" } } } } },
      "vpcep.bad_response", status = 200, check = function(err)
        assert.equal("e1", err.endpoint)
        assert.matches("e2", err.message, 1, true)
      end },
    { "an answer header line over libcurl's 100 KiB -> vpcep.bad_response saying so, not 'Out of memory'",
      { raw = "HTTP/1.1 200 OK\r\nX-Big: " .. string.rep("a", 200 * 1024) .. "\r\nContent-Length: 2\r\n\r\n{}" },
      "vpcep.bad_response", check = function(err)
        assert.matches("header line", err.message, 1, true)
        assert.is_nil(err.message:lower():find("memory", 1, true))
      end },
    { "a redirect to another host is not followed either",
      { raw = "HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.2:1/steal\r\nContent-Length: 0\r\n\r\n" }, "HTTP.301" },
  }
  for _, case in ipairs(faulted) do
    it(case[1], function()
      local rule = type(case[2]) == "function" and case[2]() or case[2]
      mock:fault(helper.merge({ times = 0 }, rule))
      local err = accept_err(case.opts)
      assert.equal(case[3], err.code)
      if case.status ~= nil then assert.equal(case.status, err.status) end
      if case.check then case.check(err) end
    end)
  end

  it("a server that hangs and then closes -> an error, not a hang", function()
    mock:fault{ times = 0, hang_ms = 200 }
    local err = accept_err()
    assert.is_true(err.code == "vpcep.transport" or err.code == "vpcep.timeout")
  end)

  it("a body just under max_body is read", function()
    mock:fault{ times = 0, big_body = 3000 }
    local ok, err = pcall(function() return client_for(mock, { max_body = 4096 }):connections(d.service_id) end)
    -- big_body is a valid list answer; whatever its shape, it must not be "too large"
    if not ok then assert.is_nil(tostring(err):find("max_body", 1, true)) end
  end)

  it("an answer with no Content-Length that just closes is read to the end", function()
    mock:fault{ times = 0, raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
      .. "{\"connections\":[{\"id\":\"e1\",\"status\":\"accepted\"}]}" }
    local conns = c:accept(d.service_id, "e1")
    assert.equal("accepted", conns[1].status)
  end)

  it("a 200 with status failed gives vpcep.connection_failed with a capped message", function()
    mock:fault{ times = 0, answer = { status = 200, json = { connections = { { id = "e1", status = "failed",
      error = { { error_code = "E.1", error_message = string.rep("x", 100000) } } } } } } }
    local err = accept_err()
    assert.equal("vpcep.connection_failed", err.code)
    assert.is_true(#err.message < 4096)
    assert.equal("e1", err.connection.id)
  end)

  it("a stale answer left on the kept connection: the next call goes out on a new one, kept in turn", function()
    mock:service{ endpoints = { { id = "e1", marker_id = 111 }, { id = "e2", marker_id = 222 } } }
    mock:fault{ match = { method = "POST", endpoint = "e1" }, extra = true }
    assert.equal("e1", c:accept(d.service_id, "e1")[1].id)
    mock:await_extra(1)
    -- each stats call opens a connection of its own
    local opened0 = mock:stats().connections_opened
    local r = c:accept(d.service_id, "e2")[1]
    local opened1 = mock:stats().connections_opened
    assert.equal("e2", r.id)
    assert.equal(222, r.marker_id)
    assert.equal(1, opened1 - opened0 - 1)
    assert.equal("rejected", c:reject(d.service_id, "e1")[1].status)
    assert.equal(0, mock:stats().connections_opened - opened1 - 1)
    assert.equal(3, #mock:log())
  end)

  it("the client still works after every kind of hostile answer", function()
    mock:clear_faults()
    assert.equal("accepted", c:accept(d.service_id, "e1")[1].status)
  end)
end)

-- Every row of spec/number_cases.lua through real client calls: marker_id
-- in an action answer and a list answer, total_count in a list answer, and
-- an unnamed field; each must end in its documented value or refusal.
describe("hostile numbers in answers to client calls", function()
  local cases = require "spec.number_cases"
  local mock, c
  mock_with_e1(function(m, cl) mock, c = m, cl end)

  local function answering(body)
    mock:clear_faults()
    mock:fault{ times = 0, answer = { status = 200, body = body } }
  end

  -- call() -> value; checks it against want, or the refusal when want is false
  local function expect(want, literal, what, call)
    local ok, res = pcall(call)
    if want == false then
      assert.is_false(ok, literal .. " taken by " .. what)
      assert.is_true(vpcep.is_error(res), tostring(res))
      assert.equal("vpcep.bad_response", res.code, literal .. " " .. what)
      assert.equal(200, res.status)
      assert.is_nil(tostring(res):find(d.token, 1, true))
      return
    end
    assert.is_true(ok, literal .. " refused by " .. what .. ": " .. tostring(res))
    local fine, why = cases.matches(res, want, literal)
    assert.is_true(fine, tostring(why) .. " (" .. what .. ")")
  end

  for _, row in ipairs(cases.rows) do
    local literal = row[1]
    it(literal:sub(1, 40) .. ": accept, list and total_count", function()
      answering(cases.body(literal, "m"))
      expect(cases.want(row, "m"), literal, "accept's marker_id", function()
        return c:accept(d.service_id, "e1")[1].marker_id
      end)
      expect(cases.want(row, "m"), literal, "connections' marker_id", function()
        return c:connections(d.service_id)[1].marker_id
      end)
      answering(cases.body(literal, "o"))
      expect(cases.want(row, "o"), literal, "accept's other field", function()
        return c:accept(d.service_id, "e1")[1].other
      end)
      -- an empty page ends the list at once; a null total_count counts as none
      answering('{"connections":[],"total_count":' .. literal .. '}')
      local want = cases.want(row, "t")
      expect(want == "null" and "=0" or want, literal, "connections' total_count", function()
        local _, total = c:connections(d.service_id)
        return total
      end)
      assert.is_true(#mock:log() >= 4)
    end)
  end
end)

-- The same rows, each in its own process of this Lua and build: a case
-- that crashed or hung could not take the others with it.
describe("hostile numbers, each in its own process", function()
  local cases = require "spec.number_cases"
  local dir, file
  setup(function()
    dir = helper.tmpdir()
    file = dir .. "/case.lua"
    helper.write_file(file, "package.path = " .. string.format("%q", package.path) .. "\n"
      .. "package.cpath = " .. string.format("%q", package.cpath) .. "\n" .. [[
local vpcep = require "vpcep"
local cases = require "spec.number_cases"
local row = cases.rows[tonumber(arg[1])]
for _, field in ipairs({ "m", "t", "o" }) do
  for _, general in ipairs({ false, true }) do
    local ok, why = cases.check_parse(vpcep, row, field, general)
    if not ok then print(why .. " (" .. field .. (general and ", general path)" or ")")) end
  end
end
print("done")
]])
  end)
  teardown(function() os.execute("rm -rf " .. helper.shell_quote(dir)) end)

  for i, row in ipairs(cases.rows) do
    it("#" .. i .. " " .. row[1]:sub(1, 40), function()
      local ok, out = helper.run(helper.shell_quote(helper.interpreter()) .. " "
        .. helper.shell_quote(file) .. " " .. i)
      assert.is_true(ok, out)
      assert.equal("done\n", out)
    end)
  end
end)

describe("vpcep.parse with hostile input", function()
  local bodies = {
    "", "{", "}", "[", "\"", "{\"connections\":", string.rep("[", 5000), string.rep("{\"a\":", 5000),
    "\255", "{\"connections\":[{\"id\":\"\255\"}]}",
    "{\"connections\":[{\"id\":\"e\",\"marker_id\":99999999999999999999999999}]}",
    "{\"connections\":[{\"id\":\"e\",\"marker_id\":-9223372036854775809}]}",
    "{\"connections\":[],\"total_count\":-0.0}",
    "0", "-", "1e", "{\"connections\":[]}" .. string.rep(" ", 10),
  }
  for i, body in ipairs(bodies) do
    for _, st in ipairs{ 200, 400, 429, 500, 0, -1, 99999 } do
      it("body #" .. i .. " with status " .. st .. " returns or raises an error object", function()
        local ok, res = pcall(vpcep.parse, st, body, { ["Content-Type"] = "application/json" })
        if ok then
          assert.is_table(res)
          assert.is_table(res.connections)
        else
          assert.is_true(vpcep.is_error(res), tostring(res))
        end
      end)
    end
  end

  it("refuses non-string bodies and non-number statuses with invalid_argument", function()
    for _, args in ipairs{ { "200", "{}" }, { {}, "{}" }, { 200, {} }, { 200, 5 }, { 200, "{}", "x" } } do
      local ok, err = pcall(vpcep.parse, args[1], args[2], args[3])
      assert.is_false(ok)
      assert.is_true(vpcep.is_error(err), tostring(err))
      assert.equal("vpcep.invalid_argument", err.code)
    end
  end)

  it("headers with odd values do not break it", function()
    local weird = { ["X-Request-Id"] = string.rep("r", 100000), ["Retry-After"] = "Sun, 99 Foo 99999 99:99:99 GMT",
                    ["content-type"] = { "application/json", "text/html" } }
    local ok, err = pcall(vpcep.parse, 429, '{"error_code":"APIGW.0308","error_msg":"x"}', weird)
    assert.is_false(ok)
    assert.equal("APIGW.0308", err.code)
    assert.is_true(#err.request_id <= 200)
  end)
end)

describe("hostile input is refused before sending", function()
  local mock, c
  mock_with_e1(function(m, cl) mock, c = m, cl end)

  local refused = helper.einval

  local bad_ids = {
    "a\r\nX-Evil: 1", "a\n", "a\r", "a\0b", "a/b", "../etc", "..", ".", "a?b", "a#b", "a%2Fb", "%00", "a b", "a\tb",
    "a..b", string.rep("a", 65), "", "é", "a;b", "a&b=c", "a\\b", "\255",
  }
  for _, id in ipairs(bad_ids) do
    local shown = id:gsub("[^%w]", function(ch) return string.format("\\%d", ch:byte()) end)
    it("endpoint id '" .. shown:sub(1, 40) .. "'", function()
      refused(c.accept, c, d.service_id, id)
      refused(c.reject, c, d.service_id, { "e1", id })
      refused(c.prepare, c, "receive", d.service_id, id)
      refused(c.connections, c, d.service_id, { id = id })
      refused(c.accept, c, id, "e1")
      refused(vpcep.accept, { project_id = d.project_id, endpoint = mock.url, token = d.token,
        service_id = d.service_id, endpoints = { id } })
      local ok, err = pcall(vpcep.new, { project_id = id, endpoint = mock.url, token = d.token })
      assert.is_false(ok)
      assert.equal("vpcep.invalid_argument", err.code)
      assert.equal(0, #mock:log())
    end)
  end

  it("non-string ids", function()
    for _, v in ipairs{ 1, 1.5, true, function() end, { {} }, { 1 }, { true } } do
      refused(c.accept, c, d.service_id, v)
      refused(c.accept, c, v, "e1")
    end
    refused(c.accept, c, d.service_id, nil)
    assert.equal(0, #mock:log())
  end)

  it("arrays: empty, holey, with extra keys, duplicates", function()
    refused(c.accept, c, d.service_id, {})
    refused(c.accept, c, d.service_id, { "e1", nil, "e3" })
    refused(c.accept, c, d.service_id, { "e1", x = "e2" })
    refused(c.accept, c, d.service_id, { [2] = "e1" })
    refused(c.accept, c, d.service_id, { "e1", "e1" })
    assert.equal(0, #mock:log())
  end)

  it("more than 1000 ids at once unless opts.max_endpoints allows it", function()
    local ids = {}
    for i = 1, 1001 do ids[i] = string.format("ep-%05d", i) end
    local err = refused(c.accept, c, d.service_id, ids)
    assert.matches("1000", err.message)
    local huge = {}
    for i = 1, 200000 do huge[i] = "e" .. i end
    refused(c.accept, c, d.service_id, huge)
    assert.equal(0, #mock:log())
    -- allowed when asked: 1001 ids go out (the mock knows none of them, so 404s)
    local ok, e2 = pcall(c.accept, c, d.service_id, ids, { max_endpoints = 1001 })
    assert.is_false(ok)
    assert.equal(1001, #e2.results)
  end)

  it("header values with CR, LF or NUL in the credentials and options", function()
    local base = { project_id = d.project_id, endpoint = mock.url }
    local function new_with(extra)
      local t = {}
      for k, v in pairs(base) do t[k] = v end
      for k, v in pairs(extra) do t[k] = v end
      return pcall(vpcep.new, t)
    end
    for _, bad in ipairs{ "x\r\nX-Evil: 1", "x\n", "x\r", "x\0y", "x\127" } do
      for _, opt in ipairs{
        { token = bad }, { ak = bad, sk = "s" }, { ak = "AK", sk = bad }, { ak = "AK", sk = "s", security_token = bad },
        { token = "t", user_agent = bad }, { token = "t", proxy = bad }, { token = "t", cafile = bad },
        { token = "t", endpoint = "http://127.0.0.1" .. bad },
      } do
        local ok, err = new_with(opt)
        assert.is_false(ok)
        assert.is_true(vpcep.is_error(err))
        assert.equal("vpcep.invalid_argument", err.code)
      end
    end
  end)

  it("over-long strings", function()
    local long = string.rep("t", 2049)
    local function refused_new(t)
      t.project_id = t.project_id or d.project_id
      t.endpoint = t.endpoint or mock.url
      local ok, err = pcall(vpcep.new, t)
      assert.is_false(ok)
      assert.equal("vpcep.invalid_argument", err.code)
    end
    refused_new{ token = long }
    refused_new{ token = "t", project_id = string.rep("p", 65) }
    refused_new{ ak = string.rep("A", 257), sk = "s" }
    refused_new{ ak = "A", sk = string.rep("s", 257) }
    refused_new{ token = "t", user_agent = string.rep("u", 257) }
    refused_new{ token = "t", endpoint = "http://" .. string.rep("h", 100000) }
    refused(c.accept, c, string.rep("s", 65), "e1")
    refused(c.accept, c, d.service_id, string.rep("e", 65))
  end)

  it("wrong types for every option", function()
    local opts = { "project_id", "region", "endpoint", "token", "ak", "sk", "security_token", "timeout",
                   "connect_timeout", "retries", "concurrency", "verify", "cafile", "proxy", "user_agent", "max_body" }
    local wrongs = { {}, function() end, true, 1e308, -1, 0/0, "not-a-number\0", io.stdout }
    for _, k in ipairs(opts) do
      for _, v in ipairs(wrongs) do
        local t = { project_id = d.project_id, endpoint = mock.url, token = d.token }
        t[k] = v
        local ok, err = pcall(vpcep.new, t)
        if not ok then
          assert.is_true(vpcep.is_error(err), k .. ": " .. tostring(err))
          assert.equal("vpcep.invalid_argument", err.code)
        else
          -- only a value of the right type and range may pass
          assert.is_true((k == "verify" and v == true), "option " .. k .. " took " .. tostring(v))
        end
      end
    end
  end)

  it("opts and query of the wrong type", function()
    refused(c.accept, c, d.service_id, "e1", "wait")
    refused(c.accept, c, d.service_id, "e1", { wait = "1" })
    refused(c.accept, c, d.service_id, "e1", { wait = -1 })
    refused(c.accept, c, d.service_id, "e1", { wait = 0/0 })
    refused(c.accept, c, d.service_id, "e1", { max_endpoints = 1.5 })
    refused(c.accept, c, d.service_id, "e1", { nope = 1 })
    refused(c.connections, c, d.service_id, "limit=1")
    refused(c.connections, c, d.service_id, { limit = 1001 })
    refused(c.connections, c, d.service_id, { limit = -1 })
    refused(c.connections, c, d.service_id, { limit = 0.5 })
    refused(c.connections, c, d.service_id, { sort_key = "x\r\n" })
    refused(c.connections, c, d.service_id, { status = "accepted&x=1" })
    refused(c.connections, c, d.service_id, { marker_id = "1 OR 1" })
    refused(c.connections, c, d.service_id, { evil = "1" })
    assert.equal(0, #mock:log())
  end)

  it("vpcep.sign refuses CR/LF/NUL in header values and methods", function()
    local cred = { ak = d.ak, sk = d.sk, date = "20240101T000000Z" }
    local function req(t)
      local r = { method = "GET", url = "https://h.example.com/p", headers = { Host = "h.example.com" }, body = "" }
      for k, v in pairs(t) do r[k] = v end
      return r
    end
    for _, r in ipairs{
      req{ headers = { Host = "h\r\nX-Evil: 1" } }, req{ headers = { ["X-A"] = "a\0b" } },
      req{ headers = { ["X-A\r\n"] = "a" } }, req{ method = "GET\r\n" }, req{ url = "https://h/p\r\nX: 1" },
      req{ headers = "x" }, req{ method = 1 }, req{ url = {} }, req{ body = {} },
    } do
      local ok, err = pcall(vpcep.sign, r, cred)
      assert.is_false(ok)
      assert.is_true(vpcep.is_error(err), tostring(err))
      assert.equal("vpcep.invalid_argument", err.code)
    end
  end)
end)

-- Hostile answers, each case in a process of its own (spec/hostile_child.lua),
-- so that none can leave anything behind for the next (a connection, a
-- client, a crash): every case must end in its documented result or error,
-- with no wrong value, no secret in anything the child printed, and no
-- hang (`timeout` only turns a hang into a failure; no case comes near it).
describe("hostile answers, each case in its own process", function()
  local mocks = {}
  local function mock_for(tls)
    local key = tls and "tls" or "plain"
    if not mocks[key] then mocks[key] = helper.start{ tls = tls } end
    return mocks[key]
  end
  teardown(function() for _, m in pairs(mocks) do m:stop() end end)

  local q = helper.shell_quote
  local function run(mock, case)
    local spec = helper.json.encode{ client = case.client or {}, steps = case.steps }
    local cmd = "LUA_PATH=" .. q(package.path) .. " LUA_CPATH=" .. q(package.cpath) .. " timeout 300 "
      .. q(helper.interpreter()) .. " spec/hostile_child.lua " .. q(mock.url) .. " " .. q(mock.cafile or "")
      .. " " .. q(spec)
    local exited_well, text = helper.run(cmd)
    local line = text:match("RESULT ([^\n]*)")
    assert(line, "the child printed no result (crashed, or hung):\n" .. text)
    -- (under the sanitizers, a finding in the child makes it exit non-zero)
    assert(exited_well, "the child failed after its result:\n" .. text)
    for _, secret in ipairs{ d.token, d.sk } do
      assert.is_nil(text:find(secret, 1, true), "a secret in the child's output")
    end
    return helper.json.decode(line)
  end

  local function step(op, arg, opts) return { op = op, arg = arg, opts = opts } end

  -- checks on a step's outcome
  local function got(r, ids, status)
    assert.is_true(r.ok, r.err and r.err.text or r.raw)
    assert.equal(#ids, #r.list)
    for i, id in ipairs(ids) do
      assert.equal(id, r.list[i].id)
      if status then assert.equal(status, r.list[i].status) end
    end
    return r.list
  end
  local function failed(r, code, endpoint)
    assert.is_false(r.ok)
    assert.is_table(r.err, r.raw)
    assert.equal(code, r.err.code, r.err.text)
    if endpoint then assert.equal(endpoint, r.err.endpoint) end
    assert.is_nil(r.err.message:find("[%z\1-\31]"), "control bytes in the message")
    assert.is_true(#r.err.text < 4096)
    return r.err
  end
  local function requests(mock, method)
    local n = 0
    for _, e in ipairs(mock:log()) do if e.method == method then n = n + 1 end end
    return n
  end
  local function about(id, status, extra)
    local conn = helper.merge({ id = id, status = status or "accepted" }, extra)
    return { status = 200, json = { connections = { conn } } }
  end
  local function big_header(line)
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" .. line
      .. "\r\nContent-Length: 18\r\n\r\n{\"connections\":[]}"
  end
  local many_headers = {}
  for i = 1, 400 do many_headers[i] = "X-H" .. i .. ": " .. string.rep("b", 1000) end

  local THREE = { endpoints = { { id = "e1", marker_id = 111 }, { id = "e2", marker_id = 222 },
                                { id = "e3", marker_id = 333 } } }

  local cases = {
    -- An unasked-for answer left on a kept connection (the `extra` fault
    -- writes it after the real one; await_extra waits until it is there).
    { "a stale copy of e1's answer is not taken as e2's (single calls, kept handle)",
      faults = { { match = { method = "POST", endpoint = "e1" }, extra = true } },
      steps = { step("accept", "e1"), step("await_extra", 1), step("accept", "e2") },
      check = function(out, mock)
        got(out[1], { "e1" }, "accepted")
        assert.equal("222", got(out[3], { "e2" }, "accepted")[1].marker_id)
        assert.equal("accepted", mock:by_id().e2.status)
      end },
    { "a stale 'accepted' left by accept e1 is not the answer to reject e1",
      faults = { { match = { method = "POST", endpoint = "e1" }, extra = true } },
      steps = { step("accept", "e1"), step("await_extra", 1), step("reject", "e1") },
      check = function(out, mock)
        got(out[3], { "e1" }, "rejected")
        assert.equal("rejected", mock:by_id().e1.status)
      end },
    { "a stale error answer is not the next call's answer",
      faults = { { match = { method = "POST", endpoint = "e1" },
                   extra = { status = 500, json = { error_code = "X.500", error_msg = "stale" } } } },
      steps = { step("accept", "e1"), step("await_extra", 1), step("accept", "e2") },
      check = function(out) got(out[3], { "e2" }, "accepted") end },
    { "stale bytes that are not HTTP at all do not fail the next call",
      faults = { { match = { method = "POST", endpoint = "e1" }, extra = "garbage, not HTTP\r\n\r\n" } },
      steps = { step("accept", "e1"), step("await_extra", 1), step("accept", "e2") },
      check = function(out) got(out[3], { "e2" }, "accepted") end },
    { "a stale answer in the same write as the real one (libcurl drops that connection itself)",
      faults = { { match = { method = "POST", endpoint = "e1" }, extra = true, extra_same_write = true } },
      steps = { step("accept", "e1"), step("await_extra", 1), step("accept", "e2"), step("reject", "e1") },
      check = function(out)
        got(out[1], { "e1" }, "accepted")
        got(out[3], { "e2" }, "accepted")
        got(out[4], { "e1" }, "rejected")
      end },
    { "a stale answer on a TLS connection is not taken as the next one's", tls = true,
      faults = { { match = { method = "POST", endpoint = "e1" }, extra = true } },
      steps = { step("accept", "e1"), step("await_extra", 1), step("accept", "e2") },
      check = function(out) assert.equal("222", got(out[3], { "e2" }, "accepted")[1].marker_id) end },
    { "a stale list page is not the next listing",
      faults = { { match = { method = "GET" },
                   extra = { status = 200,
                             json = { connections = { { id = "old", status = "accepted" } }, total_count = 1 } } } },
      steps = { step("connections"), step("await_extra", 1), step("connections") },
      check = function(out)
        got(out[1], { "e1", "e2", "e3" })
        got(out[3], { "e1", "e2", "e3" })
        assert.equal("3", out[3].total)
      end },
    { "a stale 'accepted' poll answer is not taken by opts.wait",
      config = { transition_ms = 60000 },
      faults = { { match = { method = "GET", endpoint = "e1" },
                   extra = { status = 200, json = { connections = { { id = "e1", status = "accepted" } } } } } },
      steps = { step("accept", "e1", { wait = 1 }) },
      check = function(out, mock)
        local err = failed(out[1], "vpcep.timeout")
        assert.equal("creating", err.results[1].status)
        assert.is_true(requests(mock, "GET") >= 2, "polled once only")
      end },
    { "stale copies on every kept connection of a bulk call are not the next bulk call's answers",
      seed = 8, client = { concurrency = 8 },
      faults = { { match = { method = "POST" }, times = 8, extra = true } },
      steps = { step("accept", helper.ids(8)), step("await_extra", 8), step("reject", helper.ids(8)) },
      check = function(out, mock)
        got(out[1], helper.ids(8), "accepted")
        got(out[3], helper.ids(8), "rejected")
        for _, c in pairs(mock:by_id()) do assert.equal("rejected", c.status) end
      end },
    { "a stale answer arriving after the next request went out is never credited to it (bulk)",
      seed = 9, client = { concurrency = 3 },
      faults = { { match = { method = "POST" }, times = 0, extra = true, extra_delay_ms = 30 } },
      steps = { step("accept", helper.ids(9)) },
      check = function(out, mock)
        mock:await_log(9) -- (the mock may still be reading the last requests)
        -- each result is its endpoint's own answer, or vpcep.bad_response naming it
        local results = out[1].ok and out[1].list or out[1].err.results
        assert.equal(9, #results)
        for i, id in ipairs(helper.ids(9)) do
          local r = results[i]
          if r.code then
            assert.equal("vpcep.bad_response", r.code)
            assert.equal(id, r.endpoint)
          else
            assert.equal(id, r.id)
            assert.equal("accepted", r.status)
          end
        end
      end },
    -- Answers about another endpoint than the one asked for.
    { "an action answer about another endpoint is vpcep.bad_response, never a result",
      faults = { { match = { endpoint = "e1" }, times = 0, answer = about("e2") } },
      steps = { step("accept", "e1") },
      check = function(out)
        local err = failed(out[1], "vpcep.bad_response", "e1")
        assert.equal(200, err.status)
        assert.matches("e2", err.message, 1, true)
        assert.is_string(err.request_id)
      end },
    { "an action answer holding the right connection and another",
      faults = { { match = { endpoint = "e1" }, times = 0,
                   answer = { json = { connections =
                     { { id = "e1", status = "accepted" }, { id = "e2", status = "accepted" } } } } } },
      steps = { step("accept", "e1") },
      check = function(out) failed(out[1], "vpcep.bad_response", "e1") end },
    { "an answer naming the client's token as the endpoint does not show the token",
      faults = { { match = { endpoint = "e1" }, times = 0, answer = about(d.token) } },
      steps = { step("accept", "e1") },
      check = function(out) assert.matches("***", failed(out[1], "vpcep.bad_response", "e1").message, 1, true) end },
    { "a failed connection of another endpoint is no connection_failed of this one",
      faults = { { match = { endpoint = "e1" }, times = 0,
                   answer = about("e2", "failed",
                     { error = { { error_code = "E.1", error_message = "not yours" } } }) } },
      steps = { step("accept", "e1") },
      check = function(out) failed(out[1], "vpcep.bad_response", "e1") end },
    { "an id that differs only in case is another endpoint",
      faults = { { match = { endpoint = "e1" }, times = 0, answer = about("E1") } },
      steps = { step("accept", "e1") },
      check = function(out) failed(out[1], "vpcep.bad_response", "e1") end },
    { "an id with a trailing space is another endpoint",
      faults = { { match = { endpoint = "e1" }, times = 0, answer = about("e1 ") } },
      steps = { step("accept", "e1") },
      check = function(out) failed(out[1], "vpcep.bad_response", "e1") end },
    { "a stray id of 5000 bytes is capped in the message",
      faults = { { match = { endpoint = "e1" }, times = 0, answer = about(string.rep("x", 5000)) } },
      steps = { step("accept", "e1") },
      check = function(out) assert.is_true(#failed(out[1], "vpcep.bad_response", "e1").message < 300) end },
    { "a stray id with control bytes does not reach the message raw",
      faults = { { match = { endpoint = "e1" }, times = 0, answer = about("e\r\nX-Evil: 1\0") } },
      steps = { step("accept", "e1") },
      check = function(out) failed(out[1], "vpcep.bad_response", "e1") end },
    { "a reject answered about another endpoint",
      faults = { { match = { endpoint = "e2" }, times = 0, answer = about("e1", "rejected") } },
      steps = { step("reject", "e2") },
      check = function(out, mock)
        failed(out[1], "vpcep.bad_response", "e2")
        assert.equal(1, requests(mock, "POST"))
      end },
    { "vpcep.accept (one-shot) answered about another endpoint",
      faults = { { match = { endpoint = "e1" }, times = 0, answer = about("e3") } },
      steps = { step("oneshot_accept", { "e1" }) },
      check = function(out) failed(out[1], "vpcep.bad_response", "e1") end },
    { "in a bulk call, only the request answered about another endpoint fails",
      faults = { { match = { endpoint = "e2" }, times = 0, answer = about("e3") } },
      steps = { step("accept", { "e1", "e2", "e3" }) },
      check = function(out, mock)
        local err = failed(out[1], "vpcep.bad_response", "e2")
        assert.equal(1, err.failed)
        assert.equal("e1", err.results[1].id)
        assert.equal("vpcep.bad_response", err.results[2].code)
        assert.equal("e2", err.results[2].endpoint)
        assert.equal("e3", err.results[3].id)
        assert.equal("333", err.results[3].marker_id)
        assert.equal("pendingAcceptance", mock:by_id().e2.status)
      end },
    { "a wait poll answered about another endpoint is not taken as this one's state",
      config = { transition_ms = 60000 },
      faults = { { match = { method = "GET", endpoint = "e1" }, times = 0, answer = about("e2") } },
      steps = { step("accept", "e1", { wait = 5 }) },
      check = function(out)
        local err = failed(out[1], "vpcep.bad_response", "e1")
        assert.equal("vpcep.bad_response", err.results[1].code)
      end },
    { "a wait poll answer holding this endpoint and another",
      config = { transition_ms = 60000 },
      faults = { { match = { method = "GET", endpoint = "e1" }, times = 0,
                   answer = { json = { connections =
                     { { id = "e1", status = "accepted" }, { id = "e2", status = "accepted" } } } } } },
      steps = { step("accept", "e1", { wait = 5 }) },
      check = function(out) failed(out[1], "vpcep.bad_response", "e1") end },
    { "a wait poll answered about the right endpoint is taken (the same fault, the right id)",
      config = { transition_ms = 60000 },
      faults = { { match = { method = "GET", endpoint = "e1" }, times = 0, answer = about("e1") } },
      steps = { step("accept", "e1", { wait = 5 }) },
      check = function(out) got(out[1], { "e1" }, "accepted") end },
    { "a wait poll answered with no connection leaves it pending (vpcep.timeout)",
      config = { transition_ms = 60000 },
      faults = { { match = { method = "GET", endpoint = "e1" }, times = 0, answer = { json = { connections = {} } } } },
      steps = { step("accept", "e1", { wait = 0.5 }) },
      check = function(out) assert.equal("creating", failed(out[1], "vpcep.timeout").results[1].status) end },
    { "in a bulk wait, only the endpoint whose poll names another fails",
      config = { transition_ms = 100 },
      faults = { { match = { method = "GET", endpoint = "e2" }, times = 0, answer = about("e1") } },
      steps = { step("accept", { "e1", "e2" }, { wait = 5 }) },
      check = function(out)
        local err = failed(out[1], "vpcep.bad_response", "e2")
        assert.equal(1, err.failed)
        assert.equal("accepted", err.results[1].status)
        assert.equal("e2", err.results[2].endpoint)
      end },
    -- Listings that would never end.
    { "pages that never run out (one new connection each): timeout bounds the whole listing",
      client = { timeout = 0.3 },
      faults = { { match = { method = "GET" }, times = 40, delay_ms = 20, list_endless = 1 } },
      steps = { step("connections") },
      check = function(out, mock)
        failed(out[1], "vpcep.timeout")
        local pages = requests(mock, "GET")
        assert.is_true(pages > 1 and pages < 40, pages .. " pages")
      end },
    { "full pages that never run out, without total_count",
      client = { timeout = 0.3 },
      faults = { { match = { method = "GET" }, times = 40, delay_ms = 20, list_endless = 1000, list_total = false } },
      steps = { step("connections") },
      check = function(out, mock)
        failed(out[1], "vpcep.timeout")
        assert.is_true(requests(mock, "GET") < 40)
      end },
    { "an honest but slow listing is bounded by timeout too, not each page",
      seed = 20000, config = { delay_ms = 50 }, client = { timeout = 0.5 },
      steps = { step("connections") },
      check = function(out, mock)
        assert.matches("listing", failed(out[1], "vpcep.timeout").message, 1, true)
        assert.is_true(requests(mock, "GET") < 20)
      end },
    { "a total_count of 10^12 is refused at once",
      faults = { { match = { method = "GET" }, times = 0, list_total = 1000000000000 } },
      steps = { step("connections") },
      check = function(out, mock)
        failed(out[1], "vpcep.bad_response")
        assert.equal(1, requests(mock, "GET"))
      end },
    { "a total_count of 1,000,001 (one above what connections() fetches) is refused at once",
      faults = { { match = { method = "GET" }, times = 0, list_total = 1000001 } },
      steps = { step("connections") },
      check = function(out, mock)
        assert.matches("1000001", failed(out[1], "vpcep.bad_response").message, 1, true)
        assert.equal(1, requests(mock, "GET"))
      end },
    { "a total_count of 1,000,000 is believed, and an empty page ends the walk",
      faults = { { match = { method = "GET" }, times = 0, list_total = 1000000 } },
      steps = { step("connections") },
      check = function(out, mock)
        got(out[1], { "e1", "e2", "e3" })
        assert.equal("1000000", out[1].total)
        assert.equal(2, requests(mock, "GET"))
      end },
    { "a total_count of 2^63-1 is refused at once",
      faults = { { match = { method = "GET" }, times = 0,
                   answer = { body = '{"connections":[{"id":"e1"}],"total_count":9223372036854775807}' } } },
      steps = { step("connections") },
      check = function(out, mock)
        failed(out[1], "vpcep.bad_response")
        assert.equal(1, requests(mock, "GET"))
      end },
    { "a server ignoring offset: the second page brings nothing new",
      seed = 1500, faults = { { match = { method = "GET" }, times = 0, list_cycle = 1 } },
      steps = { step("connections") },
      check = function(out, mock)
        assert.matches("already listed", failed(out[1], "vpcep.bad_response").message, 1, true)
        assert.equal(2, requests(mock, "GET"))
      end },
    { "two pages again and again, with a total_count that never comes: stopped at the third",
      seed = 2500, faults = { { match = { method = "GET" }, times = 0, list_cycle = 2, list_total = 999999 } },
      steps = { step("connections") },
      check = function(out, mock)
        failed(out[1], "vpcep.bad_response")
        assert.equal(3, requests(mock, "GET"))
      end },
    { "two pages again, with the real total_count: no connection comes twice",
      seed = 2500, faults = { { match = { method = "GET" }, times = 0, list_cycle = 2 } },
      steps = { step("connections") },
      check = function(out, mock)
        failed(out[1], "vpcep.bad_response")
        assert.equal(3, requests(mock, "GET"))
      end },
    { "a connection twice in one page is listed once",
      faults = { { match = { method = "GET" }, times = 0,
                   answer = { json = { connections = { { id = "a" }, { id = "a" }, { id = "b" } },
                                       total_count = 3 } } } },
      steps = { step("connections") },
      check = function(out, mock)
        got(out[1], { "a", "b" })
        assert.equal("3", out[1].total)
        assert.equal(1, requests(mock, "GET"))
      end },
    { "overlapping pages: each connection listed once, the walk goes on",
      faults = {
        { match = { path_contains = "offset=0" }, times = 0,
          answer = { json = { connections = { { id = "a" }, { id = "b" } }, total_count = 4 } } },
        { match = { path_contains = "offset=2" }, times = 0,
          answer = { json = { connections = { { id = "b" }, { id = "c" } }, total_count = 4 } } } },
      steps = { step("connections") },
      check = function(out, mock)
        got(out[1], { "a", "b", "c" })
        assert.equal(2, requests(mock, "GET"))
      end },
    { "a later page made only of connections listed before ends the walk",
      faults = {
        { match = { path_contains = "offset=0" }, times = 0,
          answer = { json = { connections = { { id = "a" }, { id = "b" } }, total_count = 6 } } },
        { match = { path_contains = "offset=2" }, times = 0,
          answer = { json = { connections = { { id = "c" }, { id = "d" } }, total_count = 6 } } },
        { match = { path_contains = "offset=4" }, times = 0,
          answer = { json = { connections = { { id = "b" }, { id = "a" } }, total_count = 6 } } } },
      steps = { step("connections") },
      check = function(out, mock)
        assert.matches("offset 4", failed(out[1], "vpcep.bad_response").message, 1, true)
        assert.equal(3, requests(mock, "GET"))
      end },
    -- Answer headers over libcurl's limits.
    { "an answer header line over 100 KiB is a bad response, not 'out of memory'",
      faults = { { times = 0, raw = big_header("X-Big: " .. string.rep("a", 200 * 1024)) } },
      steps = { step("accept", "e1") },
      check = function(out)
        local err = failed(out[1], "vpcep.bad_response", "e1")
        assert.matches("header", err.message, 1, true)
        assert.is_nil(err.message:lower():find("memory", 1, true))
        assert.is_false(err.retryable)
      end },
    { "a status line over 100 KiB",
      faults = { { times = 0,
                   raw = "HTTP/1.1 200 OK" .. string.rep("a", 200 * 1024) .. "\r\nContent-Length: 0\r\n\r\n" } },
      steps = { step("accept", "e1") },
      check = function(out) failed(out[1], "vpcep.bad_response", "e1") end },
    { "answer headers over 300 KiB in all",
      faults = { { times = 0, raw = big_header(table.concat(many_headers, "\r\n")) } },
      steps = { step("accept", "e1") },
      check = function(out) assert.matches("header", failed(out[1], "vpcep.bad_response", "e1").message, 1, true) end },
    { "a header line of 90 KiB is read",
      faults = { { match = { endpoint = "e1" }, times = 0,
                   answer = helper.merge(about("e1"), { headers = { ["X-Big"] = string.rep("a", 90 * 1024) } }) } },
      steps = { step("accept", "e1") },
      check = function(out) got(out[1], { "e1" }, "accepted") end },
    { "an oversized header on the list call",
      faults = { { match = { method = "GET" }, times = 0,
                   raw = big_header("X-Big: " .. string.rep("a", 200 * 1024)) } },
      steps = { step("connections") },
      check = function(out) failed(out[1], "vpcep.bad_response") end },
    { "an oversized header in a bulk call fails only its own endpoint",
      faults = { { match = { endpoint = "e2" }, times = 0,
                   raw = big_header("X-Big: " .. string.rep("a", 200 * 1024)) } },
      steps = { step("accept", { "e1", "e2", "e3" }) },
      check = function(out)
        local err = failed(out[1], "vpcep.bad_response", "e2")
        assert.equal(1, err.failed)
        assert.equal("accepted", err.results[1].status)
        assert.equal("accepted", err.results[3].status)
      end },
  }

  for _, case in ipairs(cases) do
    it(case[1], function()
      local mock = mock_for(case.tls)
      mock:reset()
      if case.seed then mock:seed(case.seed) else mock:service(THREE) end
      if case.config then mock:config(case.config) end
      if case.faults then mock:faults(case.faults) end
      case.check(run(mock, case), mock)
    end)
  end
end)
