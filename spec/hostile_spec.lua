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
