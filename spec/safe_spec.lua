-- spec/safe_spec.lua: vpcep.safe, the same functions returning nil, err
-- instead of raising (as cjson.safe does), and vpcep.safe.new, whose client
-- methods do the same. err is always an error object (vpcep.is_error), with
-- the fields the raising variant would have carried.
local vpcep = require "vpcep"
local helper = require "spec.helper"

local safe = vpcep.safe
local D = helper.defaults
local unpack = table.unpack or unpack

-- Calls f and checks it did not raise and returned exactly nil, err with an
-- error object; returns err.
local function pack(...) return { n = select("#", ...), ... } end
local function nil_err(f, ...)
  local res = pack(pcall(f, ...))
  assert.is_true(res[1], "raised: " .. tostring(res[2]))
  assert.are.equal(3, res.n, "expected exactly two results")
  assert.is_nil(res[2])
  local err = res[3]
  assert.is_table(err)
  assert.is_true(vpcep.is_error(err), tostring(err))
  assert.is_string(err.code)
  assert.is_string(err.message)
  assert.matches("^vpcep: ", tostring(err))
  return err
end

-- The error the raising variant gives for the same call.
local raised = helper.raised

local free_port = helper.free_port

local no_secret = helper.no_secret { D.token, D.sk, "mock-wrong-token-secret" }

describe("vpcep.safe", function()
  it("has every function of the module, each different from the raising one", function()
    for _, name in ipairs({ "new", "accept", "reject", "parse", "sign", "is_error" }) do
      assert.is_function(vpcep[name], name)
      assert.is_function(safe[name], name)
    end
    for _, name in ipairs({ "new", "accept", "reject", "parse", "sign" }) do
      assert.are_not.equal(vpcep[name], safe[name], name)
    end
    assert.is_true(safe.is_error(raised(vpcep.parse, "x")))
    assert.is_false(safe.is_error({ code = "x", message = "y" }))
  end)

  describe("bad input is nil, err (vpcep.invalid_argument) where the module raises", function()
    local cases = {
      { "new", {} },
      { "new", { "x" } },
      { "new", { { project_id = "p" } } },
      { "new", { { project_id = "p", region = "xx-nowhere-1", token = "t" } } },
      { "new", { { project_id = "p", endpoint = "http://127.0.0.1:1", token = "t", ak = "a", sk = "b" } } },
      { "accept", {} },
      { "accept", { "x" } },
      { "accept", { { service_id = "s" } } },
      { "reject", { { endpoints = { "e" } } } },
      { "parse", {} },
      { "parse", { "x" } },
      { "parse", { 99, "" } },
      { "parse", { 200, {} } },
      { "sign", {} },
      { "sign", { {}, {} } },
      { "sign", { { method = "GET", url = "http://h/", headers = {} }, { ak = "a b", sk = "s" } } },
    }
    for i, case in ipairs(cases) do
      it("#" .. i .. " " .. case[1], function()
        local args = case[2]
        local err = nil_err(safe[case[1]], unpack(args, 1, #args))
        assert.are.equal("vpcep.invalid_argument", err.code)
        local same = raised(vpcep[case[1]], unpack(args, 1, #args))
        assert.are.equal(same.code, err.code)
        assert.are.equal(same.message, err.message)
      end)
    end
  end)

  it("parse: an error answer is nil, err with the service's fields; a good one is the document", function()
    local err = nil_err(safe.parse, 404,
      '{"error_code":"EndPoint.0005","error_msg":"The requested resource does not exist."}',
      { ["X-Request-Id"] = "req-42" })
    assert.are.equal("EndPoint.0005", err.code)
    assert.are.equal(404, err.status)
    assert.are.equal("req-42", err.request_id)
    assert.is_false(err.retryable)
    err = nil_err(safe.parse, 429, '{"error_code":"APIGW.0308","error_msg":"throttled"}')
    assert.are.equal(429, err.status)
    assert.is_true(err.retryable)
    err = nil_err(safe.parse, 502, "<html>bad gateway</html>")
    assert.are.equal(502, err.status)
    err = nil_err(safe.parse, 200, "{not json")
    assert.are.equal("vpcep.bad_response", err.code)

    local doc, e2 = safe.parse(200, '{"connections":[{"id":"e","status":"accepted"}]}')
    assert.is_nil(e2)
    assert.are.equal("accepted", doc.connections[1].status)
  end)

  it("sign: a good request is signed as by vpcep.sign", function()
    local req = { method = "GET", url = "https://example.huaweicloud.com/path?limit=1",
                  headers = { ["X-Sdk-Date"] = "20060102T150405Z" } }
    local cred = { ak = "AccessKey", sk = "SecretKey", date = "20060102T150405Z" }
    local h, err = safe.sign(req, cred)
    assert.is_nil(err)
    assert.are.equal(vpcep.sign(req, cred).Authorization, h.Authorization)
    assert.matches("Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624$", h.Authorization)
  end)

  describe("against the mock", function()
    local mock
    setup(function() mock = helper.start() end)
    teardown(function() if mock then mock:stop() end end)
    before_each(function()
      mock:reset()
      mock:service { endpoints = { { id = "e1" }, { id = "e2" },
        { id = "bad", fail_with = { error_code = "EndPoint.2001", error_message = "quota exceeded" } } } }
    end)

    local function opts(extra) return helper.client_opts(mock, { retries = 0 }, extra) end

    it("safe.new gives a client whose methods succeed like the raising one's", function()
      local c, err = safe.new(opts())
      assert.is_nil(err)
      assert.are.equal("userdata", type(c))
      local conns, e1 = c:accept(D.service_id, "e1")
      assert.is_nil(e1)
      assert.are.equal("accepted", conns[1].status)
      conns = assert(c:reject(D.service_id, { "e2" }))
      assert.are.equal("rejected", conns[1].status)
      local list, total = c:connections(D.service_id)
      assert.are.equal(3, total)
      assert.are.equal(3, #list)
      local req = assert(c:prepare("receive", D.service_id, "e1"))
      assert.are.equal("POST", req.method)
      assert.are.equal(D.token, req.headers["X-Auth-Token"])
      c:close()
    end)

    it("each client method returns nil, err for a service error", function()
      local c = assert(safe.new(opts()))
      local err = nil_err(c.accept, c, D.service_id, "nope")
      assert.are.equal("EndPoint.0005", err.code)
      assert.are.equal(404, err.status)
      assert.is_string(err.request_id)
      assert.are.equal("nope", err.endpoint)
      err = nil_err(c.reject, c, "no-such-service", "e1")
      assert.are.equal("EndPoint.0005", err.code)
      err = nil_err(c.connections, c, "no-such-service")
      assert.are.equal(404, err.status)
      err = nil_err(c.connections, c, D.service_id, { limit = 5000 })
      assert.are.equal("vpcep.invalid_argument", err.code)
      err = nil_err(c.prepare, c, "approve", D.service_id, "e1")
      assert.are.equal("vpcep.invalid_argument", err.code)
      err = nil_err(c.accept, c, D.service_id, {})
      assert.are.equal("vpcep.invalid_argument", err.code)
      c:close()
    end)

    it("authentication failures are nil, err without the credentials", function()
      local c = assert(safe.new(opts { token = "mock-wrong-token-secret" }))
      local err = nil_err(c.accept, c, D.service_id, "e1")
      assert.are.equal("APIGW.0301", err.code)
      assert.are.equal(401, err.status)
      no_secret(err)
      c:close()
      local aksk = opts { ak = D.ak, sk = "wrong-" .. D.sk }
      aksk.token = nil
      c = assert(safe.new(aksk))
      err = nil_err(c.accept, c, D.service_id, "e1")
      assert.are.equal("APIGW.0301", err.code)
      no_secret(err)
      c:close()
    end)

    it("a failed connection is nil, err (vpcep.connection_failed) with err.connection", function()
      local c = assert(safe.new(opts()))
      local err = nil_err(c.accept, c, D.service_id, "bad")
      assert.are.equal("vpcep.connection_failed", err.code)
      assert.are.equal("failed", err.connection.status)
      assert.matches("EndPoint.2001", err.message, 1, true)
      c:close()
    end)

    it("a bulk call with one failure is nil, err with err.results in input order", function()
      local c = assert(safe.new(opts()))
      local err = nil_err(c.accept, c, D.service_id, { "e1", "nope", "e2" })
      assert.are.equal(3, #err.results)
      assert.are.equal("accepted", err.results[1].status)
      assert.is_true(vpcep.is_error(err.results[2]))
      assert.are.equal("EndPoint.0005", err.results[2].code)
      assert.are.equal("accepted", err.results[3].status)
      c:close()
    end)

    it("transport failures are nil, err: refused, reset, truncated, timeout", function()
      local c = assert(safe.new(opts { endpoint = "http://127.0.0.1:" .. free_port() }))
      local err = nil_err(c.accept, c, D.service_id, "e1")
      assert.are.equal("vpcep.connect", err.code)
      assert.is_nil(err.status)
      assert.is_true(err.retryable)
      c:close()

      -- a cafile no other client used: a share of its own, so the reset
      -- hits a new connection (a reused one that dies unanswered is tried
      -- again on a new one by libcurl, spec/share_spec.lua)
      local fresh = os.tmpname()
      c = assert(safe.new(opts { cafile = fresh }))
      mock:fault { match = { path_contains = "/connections" }, reset = true }
      err = nil_err(c.accept, c, D.service_id, "e1")
      assert.is_true(err.code == "vpcep.transport" or err.code == "vpcep.connect", err.code)
      mock:fault { match = { path_contains = "/connections" }, truncate = true }
      err = nil_err(c.connections, c, D.service_id)
      assert.are.equal("vpcep.transport", err.code)
      c:close()
      os.remove(fresh)

      c = assert(safe.new(opts { timeout = 0.3 }))
      mock:fault { match = { path_contains = "/connections" }, hang_ms = 1500 }
      err = nil_err(c.accept, c, D.service_id, "e1")
      assert.are.equal("vpcep.timeout", err.code)
      c:close()
    end)

    it("one-shot safe.accept / safe.reject return the connections or nil, err", function()
      local conns, err = safe.accept(opts { service_id = D.service_id, endpoints = { "e1" } })
      assert.is_nil(err)
      assert.are.equal("accepted", conns[1].status)
      conns, err = safe.reject(opts { service_id = D.service_id, endpoints = "e2" })
      assert.is_nil(err)
      assert.are.equal("rejected", conns[1].status)
      err = nil_err(safe.accept, opts { service_id = D.service_id, endpoints = { "nope" } })
      assert.are.equal("EndPoint.0005", err.code)
      err = nil_err(safe.reject, opts { service_id = "no-such-service", endpoints = "e1" })
      assert.are.equal(404, err.status)
      assert.are.equal("accepted", mock:by_id()["e1"].status)
      assert.are.equal("rejected", mock:by_id()["e2"].status)
    end)

    it("a closed safe client answers nil, err; close itself never fails", function()
      local c = assert(safe.new(opts()))
      assert.has_no.errors(function() c:close() end)
      assert.has_no.errors(function() c:close() end)
      for _, call in ipairs({
        function() return c:accept(D.service_id, "e1") end,
        function() return c:reject(D.service_id, "e1") end,
        function() return c:connections(D.service_id) end,
        function() return c:prepare("receive", D.service_id, "e1") end,
      }) do
        local err = nil_err(call)
        assert.are.equal("vpcep.invalid_argument", err.code)
      end
      assert.are.equal("pendingAcceptance", mock:by_id()["e1"].status)
    end)

    it("a plain client still raises (safety belongs to safe.new only)", function()
      local c = vpcep.new(opts())
      local err = raised(c.accept, c, D.service_id, "nope")
      assert.are.equal("EndPoint.0005", err.code)
      c:close()
      err = raised(c.accept, c, D.service_id, "e1")
      assert.are.equal("vpcep.invalid_argument", err.code)
    end)
  end)
end)
