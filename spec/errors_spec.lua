-- spec/errors_spec.lua: every failure of a client call (token auth, against
-- the mock) raises an error object with the right code, message, status,
-- request_id and retryable flag; error bodies of every shape, transport
-- failures, bad answers, bulk failures; no token in any error text.
package.path = "./?.lua;" .. package.path
local helper = require "spec.helper"
local socket = require "socket"
local vpcep = require "vpcep"
local json = helper.json
local D = helper.defaults

-- long enough to be recognisable, short enough (<= 64) to pass as a code
local TOKEN = "TKN-errspec-7f3a9c-" .. string.rep("z", 20)

-- every error object seen in this file, checked for the token at the end
local seen = {}

local function all_text(err)
  local parts = { tostring(err) }
  for k, v in pairs(err) do
    if type(v) == "string" then parts[#parts + 1] = k .. "=" .. v end
  end
  return table.concat(parts, "\n")
end

local function assert_no_token(err)
  local text = all_text(err)
  assert.is_nil(text:find(TOKEN, 1, true), "token in error text: " .. text)
  -- and no long piece of it (a cut copy) either
  assert.is_nil(text:find(TOKEN:sub(1, 12), 1, true), "token prefix in error text: " .. text)
end

-- helper.raised, and every error kept for the checks at the end
local function raises(f, ...)
  local err = helper.raised(f, ...)
  seen[#seen + 1] = err
  return err
end

describe("errors", function()
  local mock

  setup(function() mock = helper.start() end)
  teardown(function()
    mock:stop()
  end)
  before_each(function()
    mock:reset()
    mock:auth{ token = TOKEN }
    mock:service{ endpoints = {
      { id = "e1" }, { id = "e2" },
      { id = "e3", fail_with = { error_code = "EndPoint.1234", error_message = "quota of the service exceeded" } },
    } }
  end)

  local function new(extra) return helper.client(mock, { token = TOKEN, retries = 0 }, extra) end

  -- accept "e1" with a fault answer in front; returns the error
  local function answer_err(answer, extra)
    mock:clear_faults()
    mock:fault{ answer = answer }
    local c = new(extra)
    local err = raises(c.accept, c, D.service_id, "e1")
    c:close()
    return err
  end

  -- A test from a row { name, fault answer, fields, check = }: accept "e1"
  -- behind the answer; the error carries the fields (checked in this order)
  -- and check(err) holds.
  local FIELDS = { "code", "message", "status", "request_id", "retryable", "endpoint" }
  local function it_answers(case)
    it(case[1], function()
      local err = answer_err(case[2])
      for _, k in ipairs(FIELDS) do
        if case[3][k] ~= nil then assert.are.equal(case[3][k], err[k], k) end
      end
      if case.check then case.check(err) end
    end)
  end

  describe("error body shapes", function()
    local shapes = {
      { "reads the flat shape the service sends",
        { status = 404, json = { error_code = "EndPoint.0005", error_msg = "The requested resource does not exist." },
          headers = { ["X-Request-Id"] = "rid-flat-1" } },
        { code = "EndPoint.0005", message = "The requested resource does not exist.", status = 404,
          request_id = "rid-flat-1", retryable = false, endpoint = "e1" } },
      { "reads the API gateway's shape, request_id from the header",
        { status = 401, json = { error_code = "APIGW.0301",
          error_msg = "Incorrect IAM authentication information: token invalid", request_id = "rid-in-body" },
          headers = { ["X-Request-Id"] = "rid-in-header" } },
        { code = "APIGW.0301", message = "Incorrect IAM authentication information: token invalid", status = 401,
          request_id = "rid-in-header", retryable = false } },
      { "takes request_id from the body when the header is missing",
        { status = 401, json = { error_code = "APIGW.0301",
          error_msg = "Incorrect IAM authentication information", request_id = "0123abcd-body-only" },
          headers = { ["X-Request-Id"] = json.null } },
        { code = "APIGW.0301", request_id = "0123abcd-body-only" } },
      { "has no request_id when neither header nor body gives one",
        { status = 404, json = { error_code = "EndPoint.0005", error_msg = "gone" },
          headers = { ["X-Request-Id"] = json.null } },
        {}, check = function(err)
          assert.is_nil(err.request_id)
          assert.are.equal("vpcep: 404 EndPoint.0005: gone", tostring(err))
        end },
      { "reads the nested shape of the document",
        { status = 400, json = { error = { code = "EndPoint.0001", message = "Invalid input parameter." } },
          headers = { ["X-Request-Id"] = "rid-nested" } },
        { code = "EndPoint.0001", message = "Invalid input parameter.", status = 400, request_id = "rid-nested",
          retryable = false } },
    }
    for _, case in ipairs(shapes) do it_answers(case) end

    it("the real unknown-endpoint answer of the mock", function()
      local c = new()
      local err = raises(c.accept, c, D.service_id, "nope")
      assert.are.equal("EndPoint.0005", err.code)
      assert.are.equal(404, err.status)
      assert.are.equal("nope", err.endpoint)
      assert.matches("^%x+$", err.request_id)
      local log = mock:log()
      assert.are.equal(1, #log)
      assert.are.equal("vpcep: 404 EndPoint.0005: The requested resource does not exist. (request_id="
        .. err.request_id .. ")", tostring(err))
      c:close()
    end)

    it("the real bad-token answer of the mock", function()
      mock:auth{ token = "another-token-entirely" }
      local c = new()
      local err = raises(c.reject, c, D.service_id, "e1")
      assert.are.equal("APIGW.0301", err.code)
      assert.are.equal(401, err.status)
      assert.is_false(err.retryable)
      assert.is_string(err.request_id)
      assert.are.equal(1, #mock:log())
      c:close()
    end)
  end)

  describe("answers without a usable error body", function()
    it("HTML from a proxy gives HTTP.<status> with some of the text", function()
      local err = answer_err{ status = 502, body = "<html><body><h1>502 Bad Gateway</h1></body></html>",
        headers = { ["Content-Type"] = "text/html" } }
      assert.are.equal("HTTP.502", err.code)
      assert.are.equal(502, err.status)
      assert.is_true(err.retryable)
      assert.matches("Bad Gateway", err.message, 1, true)
    end)

    it("an empty body gives HTTP.<status>", function()
      local err = answer_err{ status = 403, body = "", headers = { ["X-Request-Id"] = "rid-empty" } }
      assert.are.equal("HTTP.403", err.code)
      assert.are.equal(403, err.status)
      assert.are.equal("rid-empty", err.request_id)
      assert.is_false(err.retryable)
      assert.is_true(#err.message > 0)
      assert.are.equal("vpcep: 403 HTTP.403: " .. err.message .. " (request_id=rid-empty)", tostring(err))
    end)

    it_answers{ "truncated JSON gives HTTP.<status>", { status = 400, body = '{"error_code":"EndPoint.0001","error_m' },
      { code = "HTTP.400", status = 400, retryable = false } }

    it("non-JSON text gives HTTP.<status> carrying the text", function()
      local err = answer_err{ status = 503, body = "Service Unavailable, try later",
        headers = { ["Content-Type"] = "text/plain" } }
      assert.are.equal("HTTP.503", err.code)
      assert.is_true(err.retryable)
      assert.matches("Service Unavailable", err.message, 1, true)
    end)

    it("JSON without a code gives HTTP.<status>", function()
      local err = answer_err{ status = 500, json = { oops = true, detail = { 1, 2 } } }
      assert.are.equal("HTTP.500", err.code)
      assert.are.equal(500, err.status)
      assert.is_true(err.retryable)
      err = answer_err{ status = 404, json = { 1, 2, 3 } }
      assert.are.equal("HTTP.404", err.code)
      err = answer_err{ status = 404, json = "just a string" }
      assert.are.equal("HTTP.404", err.code)
    end)
  end)

  describe("retryable", function()
    -- retries = 0 everywhere, so one request each
    local cases = {
      { 429, "APIGW.0308", true }, { 500, "APIGW.0500", true }, { 502, nil, true }, { 503, nil, true },
      { 504, nil, true }, { 400, "EndPoint.0001", false }, { 401, "APIGW.0301", false },
      { 403, "APIGW.0302", false }, { 404, "EndPoint.0005", false }, { 409, "EndPoint.0009", false },
      { 400, "EndPoint.0022", true },
    }
    for _, case in ipairs(cases) do
      local status, code, want = case[1], case[2], case[3]
      it(string.format("%d %s is %s", status, tostring(code), tostring(want)), function()
        local body = code and json.encode({ error_code = code, error_msg = "m" }) or ""
        local err = answer_err{ status = status, body = body }
        assert.are.equal(code or ("HTTP." .. status), err.code)
        assert.are.equal(status, err.status)
        assert.are.equal(want, err.retryable)
        assert.are.equal(1, #mock:log())
      end)
    end
  end)

  describe("tostring and is_error", function()
    it("formats one line: vpcep: <status> <code>: <message> (request_id=...)", function()
      local err = answer_err{ status = 404, json = { error_code = "EndPoint.0005",
        error_msg = "The requested resource does not exist." }, headers = { ["X-Request-Id"] = "abc123" } }
      assert.are.equal("vpcep: 404 EndPoint.0005: The requested resource does not exist. (request_id=abc123)",
        tostring(err))
      assert.is_nil(tostring(err):find("\n", 1, true))
    end)

    it("has no status part when no answer came", function()
      local s = socket.bind("127.0.0.1", 0)
      local _, port = s:getsockname()
      s:close()
      local c = vpcep.new{ endpoint = "http://127.0.0.1:" .. port, project_id = D.project_id, token = TOKEN,
                           retries = 0 }
      local err = raises(c.accept, c, D.service_id, "e1")
      assert.is_nil(err.status)
      assert.are.equal("vpcep: vpcep.connect: " .. err.message, tostring(err))
      c:close()
    end)

    it("is_error tells error objects from anything else", function()
      local err = answer_err{ status = 404, json = { error_code = "EndPoint.0005", error_msg = "x" } }
      assert.is_true(vpcep.is_error(err))
      local copy = {}
      for k, v in pairs(err) do copy[k] = v end
      assert.is_false(vpcep.is_error(copy))
      assert.is_false(vpcep.is_error(setmetatable({ code = "x" }, {})))
      assert.is_false(vpcep.is_error(tostring(err)))
      assert.is_false(vpcep.is_error(nil))
      assert.is_false(vpcep.is_error(42))
      assert.is_false(vpcep.is_error(false))
      assert.is_false(vpcep.is_error())
      assert.is_false(vpcep.is_error(io.stdout))
      local c = new()
      assert.is_false(vpcep.is_error(c))
      c:close()
    end)
  end)

  describe("message capping", function()
    it("a 1 MB error_msg yields a message of a few KiB at most", function()
      local big = string.rep("A", 1024 * 1024)
      local err = answer_err{ status = 400, json = { error_code = "EndPoint.0001", error_msg = big } }
      assert.are.equal("EndPoint.0001", err.code)
      assert.is_true(#err.message > 100)
      assert.is_true(#err.message <= 8192, "message of " .. #err.message .. " bytes")
      assert.is_true(#tostring(err) <= 8192 + 200)
      assert.matches("^AAAA", err.message)
    end)

    it("a 1 MB non-JSON body is capped too", function()
      local err = answer_err{ status = 500, body = string.rep("<p>", 350000),
        headers = { ["Content-Type"] = "text/html" } }
      assert.are.equal("HTTP.500", err.code)
      assert.is_true(#err.message <= 8192, "message of " .. #err.message .. " bytes")
    end)

    it("a huge request id header is capped", function()
      local err = answer_err{ status = 404, json = { error_code = "EndPoint.0005", error_msg = "m" },
        headers = { ["X-Request-Id"] = string.rep("r", 6000) } }
      assert.is_true(err.request_id == nil or #err.request_id <= 1024)
      assert.is_true(#tostring(err) <= 8192)
    end)
  end)

  describe("connection_failed", function()
    it("a 200 answer with status failed raises vpcep.connection_failed", function()
      local c = new()
      local err = raises(c.accept, c, D.service_id, "e3")
      assert.are.equal("vpcep.connection_failed", err.code)
      assert.matches("EndPoint.1234", err.message, 1, true)
      assert.matches("quota of the service exceeded", err.message, 1, true)
      assert.is_table(err.connection)
      assert.is_false(vpcep.is_error(err.connection))
      assert.are.equal("e3", err.connection.id)
      assert.are.equal("failed", err.connection.status)
      assert.are.equal("EndPoint.1234", err.connection.error[1].error_code)
      assert.are.equal("quota of the service exceeded", err.connection.error[1].error_message)
      assert.are.equal("e3", err.endpoint)
      assert.is_false(err.retryable)
      assert.are.equal("failed", mock:by_id().e3.status)
      c:close()
    end)

    it("reads the failure of a fault answer too, and caps a huge error_message", function()
      local err = answer_err{ status = 200, json = { connections = { { id = "e1", status = "failed",
        error = { { error_code = "EndPoint.9999", error_message = string.rep("m", 200000) } } } } } }
      assert.are.equal("vpcep.connection_failed", err.code)
      assert.matches("EndPoint.9999", err.message, 1, true)
      assert.is_true(#err.message <= 8192)
      assert.are.equal("failed", err.connection.status)
    end)

    it("reject of a connection does not raise, whatever its history", function()
      local c = new()
      local conns = c:reject(D.service_id, "e3")
      assert.are.equal("rejected", conns[1].status)
      c:close()
    end)
  end)

  describe("bulk failure", function()
    it("err.results holds connections and error objects in input order", function()
      local c = new()
      local ids = { "e1", "zz-missing", "e2", "e3" }
      local err = raises(c.accept, c, D.service_id, ids)
      assert.is_table(err.results)
      assert.are.equal(#ids, #err.results)
      local r = err.results
      assert.is_false(vpcep.is_error(r[1]))
      assert.are.equal("e1", r[1].id)
      assert.are.equal("accepted", r[1].status)
      assert.is_true(vpcep.is_error(r[2]))
      assert.are.equal("EndPoint.0005", r[2].code)
      assert.are.equal(404, r[2].status)
      assert.are.equal("zz-missing", r[2].endpoint)
      assert.is_false(vpcep.is_error(r[3]))
      assert.are.equal("e2", r[3].id)
      assert.is_true(vpcep.is_error(r[4]))
      assert.are.equal("vpcep.connection_failed", r[4].code)
      assert.are.equal("e3", r[4].endpoint)
      assert.are.equal("e3", r[4].connection.id)
      -- the raised error is the first failure's
      assert.are.equal("EndPoint.0005", err.code)
      assert.are.equal("zz-missing", err.endpoint)
      -- the successes did happen
      local st = mock:by_id()
      assert.are.equal("accepted", st.e1.status)
      assert.are.equal("accepted", st.e2.status)
      c:close()
    end)

    it("an array where every id fails", function()
      local c = new()
      local err = raises(c.reject, c, D.service_id, { "x1", "x2" })
      assert.are.equal(2, #err.results)
      assert.are.equal("x1", err.results[1].endpoint)
      assert.are.equal("x2", err.results[2].endpoint)
      assert.is_true(vpcep.is_error(err.results[1]))
      assert.is_true(vpcep.is_error(err.results[2]))
      c:close()
    end)
  end)

  describe("transport errors", function()
    it("vpcep.connect for a closed port on 127.0.0.1", function()
      local s = socket.bind("127.0.0.1", 0)
      local _, port = s:getsockname()
      s:close()
      local c = vpcep.new{ endpoint = "http://127.0.0.1:" .. port, project_id = D.project_id, token = TOKEN,
                           retries = 0 }
      local err = raises(c.accept, c, D.service_id, "e1")
      assert.are.equal("vpcep.connect", err.code)
      assert.is_nil(err.status)
      assert.is_nil(err.request_id)
      assert.is_true(err.retryable)
      assert.are.equal("e1", err.endpoint)
      c:close()
    end)

    it("vpcep.timeout when the server hangs past the client's timeout", function()
      mock:fault{ hang_ms = 1500 }
      local c = new{ timeout = 0.2 }
      local err = raises(c.accept, c, D.service_id, "e1")
      assert.are.equal("vpcep.timeout", err.code)
      assert.is_nil(err.status)
      assert.is_true(err.retryable)
      assert.are.equal(1, #mock:log())
      c:close()
    end)

    it("vpcep.transport when the connection is reset", function()
      mock:fault{ reset = true }
      local c = new()
      local err = raises(c.accept, c, D.service_id, "e1")
      assert.are.equal("vpcep.transport", err.code)
      assert.is_nil(err.status)
      c:close()
    end)

    it("vpcep.transport when the answer is cut short", function()
      mock:fault{ truncate = true }
      local c = new()
      local err = raises(c.accept, c, D.service_id, "e1")
      assert.are.equal("vpcep.transport", err.code)
      c:close()
    end)

    it("the client works again after a transport error", function()
      mock:fault{ reset = true }
      local c = new()
      raises(c.accept, c, D.service_id, "e1")
      assert.are.equal("accepted", c:accept(D.service_id, "e1")[1].status)
      c:close()
    end)
  end)

  describe("bad answers", function()
    it_answers{ "garbage with 200", { status = 200, body = "garbage, not json" },
      { code = "vpcep.bad_response", status = 200, retryable = false } }

    it("JSON of the wrong shape", function()
      for _, doc in ipairs({ { foo = 1 }, { connections = "x" }, { connections = { 1, 2 } },
                             { connections = { { status = "accepted" } } }, { 1, 2 } }) do
        local err = answer_err{ status = 200, json = doc }
        assert.are.equal("vpcep.bad_response", err.code, json.encode(doc))
      end
    end)

    it("the wrong Content-Type", function()
      local err = answer_err{ status = 200, json = { connections = { { id = "e1", status = "accepted" } } },
        headers = { ["Content-Type"] = "text/html" } }
      assert.are.equal("vpcep.bad_response", err.code)
      assert.matches("text/html", err.message, 1, true)
    end)

    it("an empty 200 body", function()
      local err = answer_err{ status = 200, body = "" }
      assert.are.equal("vpcep.bad_response", err.code)
    end)

    it("truncated JSON with 200", function()
      local err = answer_err{ status = 200, body = '{"connections":[{"id":"e1","status":"acc' }
      assert.are.equal("vpcep.bad_response", err.code)
    end)
  end)

  describe("the token", function()
    it("is not in an error whose answer echoes it", function()
      for _, answer in ipairs({
        { status = 401, json = { error_code = "APIGW.0301", error_msg = "bad token " .. TOKEN .. " here" } },
        { status = 401, json = { error = { code = "APIGW.0301", message = TOKEN } } },
        { status = 500, body = "<html>" .. TOKEN .. "</html>", headers = { ["Content-Type"] = "text/html" } },
        { status = 200, body = "not json " .. TOKEN },
        { status = 200, json = { connections = { { id = "e1", status = "failed",
          error = { { error_code = "X.1", error_message = "token " .. TOKEN } } } } } },
        { status = 403, json = { error_code = "APIGW.0302", error_msg = "m" },
          headers = { ["X-Request-Id"] = TOKEN } },
      }) do
        local err = answer_err(answer)
        assert_no_token(err)
      end
    end)

    it("is in no error raised in this file", function()
      assert.is_true(#seen > 30)
      for _, err in ipairs(seen) do
        assert_no_token(err)
        if err.results then
          for _, r in ipairs(err.results) do
            if vpcep.is_error(r) then assert_no_token(r) end
          end
        end
      end
    end)

    -- last: it raises an error that the check above would otherwise see
    it("is not in the code when an answer gives it as its error code", function()
      local err = answer_err{ status = 403, json = { error_code = TOKEN, error_msg = "m" } }
      assert_no_token(err)
    end)
  end)
end)
