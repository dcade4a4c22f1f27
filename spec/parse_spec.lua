-- spec/parse_spec.lua: vpcep.parse(status, body [, headers]) called directly:
-- good documents, exact marker_id and total_count (and what is refused
-- there: every form is in spec/number_cases.lua, run by exact_spec.lua), every error shape,
-- case-insensitive header lookup, bad arguments. No server needed.
package.path = "./?.lua;" .. package.path
local vpcep = require "vpcep"
local helper = require "spec.helper"

local HAS_INT = math.type ~= nil
local raises, einval = helper.raised, helper.einval

local CONN = '{"id":"ep-1","marker_id":%s,"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-02T00:00:00Z",'
  .. '"domain_id":"d1","status":"%s","description":"desc"}'

local function doc_with(marker, status, extra)
  return '{"connections":[' .. string.format(CONN, marker, status or "accepted") .. ']' .. (extra or "") .. '}'
end

describe("vpcep.parse", function()
  describe("good documents", function()
    it("decodes an action answer into plain tables", function()
      local doc = vpcep.parse(200, doc_with("1", "accepted"))
      assert.is_false(vpcep.is_error(doc))
      assert.are.equal(1, #doc.connections)
      local c = doc.connections[1]
      assert.are.equal("ep-1", c.id)
      assert.are.equal("accepted", c.status)
      assert.are.equal("d1", c.domain_id)
      assert.are.equal("desc", c.description)
      assert.are.equal("2024-01-01T00:00:00Z", c.created_at)
      assert.are.equal("2024-01-02T00:00:00Z", c.updated_at)
      assert.are.equal(1, c.marker_id)
      assert.is_nil(doc.total_count)
    end)

    it("accepts every 2xx status and a JSON content type in any case", function()
      for _, st in ipairs({ 200, 201, 202, 299 }) do
        assert.are.equal("ep-1", vpcep.parse(st, doc_with("5")).connections[1].id)
      end
      for _, ct in ipairs({ "application/json", "application/json; charset=utf-8", "Application/JSON",
                            "application/vnd.api+json" }) do
        assert.are.equal("ep-1", vpcep.parse(200, doc_with("5"), { ["Content-Type"] = ct }).connections[1].id)
      end
    end)

    it("reads total_count of a list answer, an integer on 5.3+", function()
      local doc = vpcep.parse(200, doc_with("5", "pendingAcceptance", ',"total_count":1234'))
      assert.are.equal(1234, doc.total_count)
      if HAS_INT then assert.are.equal("integer", math.type(doc.total_count)) end
      doc = vpcep.parse(200, '{"connections":[],"total_count":0}')
      assert.are.equal(0, #doc.connections)
      assert.are.equal(0, doc.total_count)
    end)

    it("keeps a failed connection's error array and unknown fields and statuses", function()
      local doc = vpcep.parse(200, '{"connections":[{"id":"e","status":"failed","error":[{"error_code":"EndPoint.1",'
        .. '"error_message":"no"}],"brand_new":{"x":[true,null]}},{"id":"f","status":"hibernating"}]}')
      -- parse does not judge statuses
      assert.are.equal("failed", doc.connections[1].status)
      assert.are.equal("EndPoint.1", doc.connections[1].error[1].error_code)
      assert.are.equal("no", doc.connections[1].error[1].error_message)
      assert.are.equal(true, doc.connections[1].brand_new.x[1])
      assert.are.equal("hibernating", doc.connections[2].status)
    end)

    it("keeps several connections in order", function()
      local parts = {}
      for i = 1, 50 do parts[i] = '{"id":"ep-' .. i .. '","marker_id":' .. (1000 + i) .. '}' end
      local doc = vpcep.parse(200, '{"connections":[' .. table.concat(parts, ",") .. '],"total_count":50}')
      assert.are.equal(50, #doc.connections)
      for i = 1, 50 do
        assert.are.equal("ep-" .. i, doc.connections[i].id)
        assert.are.equal(1000 + i, doc.connections[i].marker_id)
      end
    end)
  end)

  describe("marker_id", function()
    it("422321321312321321 is exact", function()
      local m = vpcep.parse(200, doc_with("422321321312321321")).connections[1].marker_id
      if HAS_INT then
        assert.are.equal("integer", math.type(m))
        assert.is_true(m == 422321321312321321)
        assert.are.equal("422321321312321321", string.format("%d", m))
      else
        assert.are.equal("422321321312321321", m)
      end
    end)

    it("is a number up to 2^53 and exact above it on every Lua", function()
      local cases = {
        { "0", 0 }, { "1", 1 }, { "100000000001", 100000000001 }, { "9007199254740991", 9007199254740991 },
        { "9007199254740992", 9007199254740992 },
      }
      for _, case in ipairs(cases) do
        local m = vpcep.parse(200, doc_with(case[1])).connections[1].marker_id
        assert.are.equal("number", type(m), case[1])
        assert.are.equal(case[2], m)
        if HAS_INT then assert.are.equal("integer", math.type(m)) end
      end
      for _, big in ipairs({ "9007199254740993", "1000000000000000001", "9223372036854775807",
                             "422321321312321321" }) do
        local m = vpcep.parse(200, doc_with(big)).connections[1].marker_id
        if HAS_INT then
          assert.are.equal("integer", math.type(m), big)
          assert.are.equal(big, string.format("%d", m))
        else
          assert.are.equal(big, m)
        end
      end
    end)

    -- (on 5.1/LuaJIT a count above 2^53 cannot be a number; the contract
    -- only promises the string form for marker_id, so this is 5.3+ only)
    local it_int = HAS_INT and it or pending
    it_int("a big total_count is an exact integer on 5.3+", function()
      local doc = vpcep.parse(200, '{"connections":[],"total_count":9007199254740993}')
      assert.are.equal("integer", math.type(doc.total_count))
      assert.are.equal("9007199254740993", string.format("%d", doc.total_count))
    end)

    it("absent or null is allowed, in marker_id and total_count alike", function()
      local null = require("cjson").null
      local doc = vpcep.parse(200, '{"connections":[{"id":"a"},{"id":"b","marker_id":null}],"total_count":null}')
      assert.is_nil(doc.connections[1].marker_id)
      assert.are.equal(null, doc.connections[2].marker_id)
      assert.are.equal(null, doc.total_count)
    end)

    it("is an integer whatever form it is written in, and never a rounded one", function()
      for _, lit in ipairs({ "422321321312321321.0", "4.22321321312321321e17", "4.22321321312321321E+17" }) do
        local m = vpcep.parse(200, doc_with(lit)).connections[1].marker_id
        if HAS_INT then
          assert.are.equal("integer", math.type(m), lit)
          assert.are.equal("422321321312321321", string.format("%d", m), lit)
        else
          assert.are.equal("422321321312321321", m, lit)
        end
      end
      local m = vpcep.parse(200, doc_with("1e3")).connections[1].marker_id
      assert.are.equal(1000, m)
      if HAS_INT then assert.are.equal("integer", math.type(m)) end
    end)

    it("of the wrong type or not an integer is refused, on every Lua", function()
      for _, lit in ipairs({ "1.5", '"123"', '"422321321312321321"', "true", "{}", "[]", "1e400", "1e-3",
                             "9223372036854775808", "1.0000000000000001" }) do
        local err = raises(vpcep.parse, 200, doc_with(lit))
        assert.are.equal("vpcep.bad_response", err.code, lit)
        assert.are.equal("vpcep: 200 vpcep.bad_response: answer has the wrong shape: "
                         .. "a connection's marker_id is not a 64-bit integer",
          tostring(err), lit)
      end
    end)

    it("big digits inside strings are left alone", function()
      local doc = vpcep.parse(200, '{"connections":[{"id":"422321321312321321","description":"n 9223372036854775807",'
        .. '"marker_id":422321321312321321}]}')
      local c = doc.connections[1]
      assert.are.equal("422321321312321321", c.id)
      assert.are.equal("string", type(c.id))
      assert.are.equal("n 9223372036854775807", c.description)
    end)
  end)

  describe("error answers", function()
    it("the flat shape", function()
      local err = raises(vpcep.parse, 404,
        '{"error_code":"EndPoint.0005","error_msg":"The requested resource does not exist."}',
        { ["X-Request-Id"] = "0a1b2c" })
      assert.are.equal("EndPoint.0005", err.code)
      assert.are.equal("The requested resource does not exist.", err.message)
      assert.are.equal(404, err.status)
      assert.are.equal("0a1b2c", err.request_id)
      assert.is_false(err.retryable)
      assert.are.equal("vpcep: 404 EndPoint.0005: The requested resource does not exist. (request_id=0a1b2c)",
        tostring(err))
    end)

    it("the gateway shape, request_id from the body without a header", function()
      local body = '{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information: x",'
        .. '"request_id":"rb-9"}'
      local err = raises(vpcep.parse, 401, body)
      assert.are.equal("APIGW.0301", err.code)
      assert.are.equal(401, err.status)
      assert.are.equal("rb-9", err.request_id)
      err = raises(vpcep.parse, 401, body, {})
      assert.are.equal("rb-9", err.request_id)
      -- the header wins over the body
      err = raises(vpcep.parse, 401, body, { ["X-Request-Id"] = "rh-1" })
      assert.are.equal("rh-1", err.request_id)
    end)

    it("the nested shape", function()
      local err = raises(vpcep.parse, 400, '{"error":{"code":"EndPoint.0001","message":"Invalid input."}}')
      assert.are.equal("EndPoint.0001", err.code)
      assert.are.equal("Invalid input.", err.message)
      assert.are.equal(400, err.status)
    end)

    it("throttling shapes are retryable", function()
      assert.is_true(raises(vpcep.parse, 429, '{"error_code":"APIGW.0308","error_msg":"throttled"}').retryable)
      local err = raises(vpcep.parse, 400, '{"error_code":"EndPoint.0022","error_msg":"too many"}')
      assert.are.equal("EndPoint.0022", err.code)
      assert.is_true(err.retryable)
      for _, st in ipairs({ 500, 502, 503, 504 }) do
        assert.is_true(raises(vpcep.parse, st, "").retryable, st)
      end
      for _, st in ipairs({ 400, 401, 403, 404, 409, 501 }) do
        assert.is_false(raises(vpcep.parse, st, "").retryable, st)
      end
    end)

    it("HTML, empty, nil, truncated and non-JSON bodies give HTTP.<status>", function()
      local bodies = { "<html><body>502 Bad Gateway</body></html>", "", '{"error_code":"EndPoint.0001",',
                       "plain text", "[1,2]", "null", '"str"', '{"error_code":42}', '{"error":"flat string"}' }
      for _, b in ipairs(bodies) do
        local err = raises(vpcep.parse, 502, b)
        assert.are.equal("HTTP.502", err.code, b)
        assert.are.equal(502, err.status)
        assert.is_string(err.message)
        assert.is_true(#err.message > 0)
      end
      local err = raises(vpcep.parse, 418, nil)
      assert.are.equal("HTTP.418", err.code)
    end)

    it("a 1xx or 3xx status is an error too", function()
      assert.are.equal("HTTP.302", raises(vpcep.parse, 302, "").code)
      assert.are.equal("HTTP.100", raises(vpcep.parse, 100, "").code)
    end)

    it("caps a huge message", function()
      local err = raises(vpcep.parse, 400, '{"error_code":"EndPoint.0001","error_msg":"'
        .. string.rep("y", 1024 * 1024) .. '"}')
      assert.is_true(#err.message <= 8192, #err.message)
      assert.is_true(#err.message > 100)
    end)
  end)

  describe("bad 2xx answers", function()
    it("raise vpcep.bad_response", function()
      local bodies = { "", "garbage", "[]", "[1]", "{}", '{"connections":{}}x', '{"connections":5}',
                       '{"connections":[1]}', '{"connections":[{"status":"accepted"}]}',
                       '{"connections":[{"id":5}]}', '{"connections":[],"total_count":-1}',
                       '{"connections":[],"total_count":"3"}', '{"connections":[{"id":"e"',
                       '{"connections":[{"id":"\255"}]}', '{"connections":[],"total_count":1.5}',
                       '{"connections":[],"total_count":4.223213213123213215e17}',
                       '{"connections":[],"total_count":true}',
                       '{"connections":[{"id":"e","marker_id":1.5}]}', '{"connections":[{"id":"e","marker_id":"1"}]}',
                       '\239\187\191{"connections":[]}' }
      for _, b in ipairs(bodies) do
        local err = raises(vpcep.parse, 200, b)
        assert.are.equal("vpcep.bad_response", err.code, b)
        assert.are.equal(200, err.status)
        assert.is_false(err.retryable)
      end
    end)

    it("a byte order mark is named in the message", function()
      local err = raises(vpcep.parse, 200, '\239\187\191{"connections":[]}', { ["X-Request-Id"] = "r-bom" })
      assert.are.equal("vpcep: 200 vpcep.bad_response: answer is not the expected JSON: "
                       .. "answer starts with a byte order mark "
        .. "(request_id=r-bom)", tostring(err))
      -- invalid UTF-8 after one is still reported as what it is: the mark comes first
      err = raises(vpcep.parse, 200, '{"connections":[{"id":"\255"}]}')
      assert.matches("not valid UTF%-8", err.message)
    end)

    it("the wrong Content-Type is refused, whatever the header's case", function()
      for _, h in ipairs({ { ["Content-Type"] = "text/html" }, { ["content-type"] = "text/plain" },
                           { ["CONTENT-TYPE"] = "application/xml" } }) do
        local err = raises(vpcep.parse, 200, doc_with("1"), h)
        assert.are.equal("vpcep.bad_response", err.code)
      end
    end)
  end)

  describe("headers", function()
    it("are looked up case-insensitively", function()
      local body = '{"error_code":"EndPoint.0005","error_msg":"m"}'
      for _, name in ipairs({ "X-Request-Id", "x-request-id", "X-REQUEST-ID", "x-Request-ID" }) do
        local err = raises(vpcep.parse, 404, body, { [name] = "rid-" .. name })
        assert.are.equal("rid-" .. name, err.request_id)
      end
    end)

    it("take the first of several values (a table, as OpenResty gives)", function()
      local err = raises(vpcep.parse, 404, '{"error_code":"E.1","error_msg":"m"}',
        { ["x-request-id"] = { "first", "second" } })
      assert.are.equal("first", err.request_id)
    end)

    it("ignore other headers", function()
      local doc = vpcep.parse(200, doc_with("1"), { ["X-Other"] = "v", [1] = "array part" })
      assert.are.equal("ep-1", doc.connections[1].id)
    end)
  end)

  describe("bad arguments", function()
    it("status must be an HTTP status number", function()
      local body = doc_with("1")
      for _, st in ipairs({ "200", "abc", true, {}, 99, 600, 0, -200, 200.5, 1e300, 0 / 0 }) do
        einval(vpcep.parse, st, body)
      end
      einval(vpcep.parse, nil, body)
      einval(vpcep.parse)
    end)

    it("body must be a string", function()
      for _, b in ipairs({ 5, true, {}, function() end }) do
        einval(vpcep.parse, 200, b)
      end
    end)

    it("headers must be a table when given", function()
      for _, h in ipairs({ "X-Request-Id: 1", 5, true }) do
        einval(vpcep.parse, 200, doc_with("1"), h)
      end
    end)
  end)
end)
