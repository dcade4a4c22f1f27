-- spec/describe_spec.lua: client:describe(service_id, { [endpoint_id] = "text" }),
-- the service's UpdateEndpointConnectionsDesc: one PUT .../connections/description
-- per connection, sent concurrently, results in the byte order of the ids;
-- every bad input refused before anything is sent; the same error objects as
-- accept. Also the mock's own description call and its checks.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local json = helper.json
local D = helper.defaults
local DESC_PATH = "/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. D.service_id
  .. "/connections/description"

local function seed(ids)
  local eps = {}
  for i, id in ipairs(ids) do eps[i] = { id = id, description = "old " .. id } end
  return eps
end

describe("client:describe", function()
  local mock, c
  local hooks = helper.mock_and_client({ retries = 0 }, function(m, client) mock, c = m, client end)
  setup(hooks.setup)
  teardown(hooks.teardown)
  before_each(hooks.before_each)

  local function service(ids)
    mock:service { endpoints = seed(ids) }
  end

  it("sends one PUT per connection with the documented body and returns the connections", function()
    service { "e1", "e2" }
    local res = c:describe(D.service_id, { e1 = "first text", e2 = "second" })
    assert.equal(2, #res)
    assert.equal("e1", res[1].id)
    assert.equal("first text", res[1].description)
    assert.equal("e2", res[2].id)
    assert.equal("second", res[2].description)
    local s = mock:by_id()
    assert.equal("first text", s.e1.description)
    assert.equal("second", s.e2.description)
    local log = mock:log()
    assert.equal(2, #log)
    local bodies = {}
    for _, e in ipairs(log) do
      assert.equal("PUT", e.method)
      assert.equal(DESC_PATH, e.path)
      assert.equal("application/json", (helper.header(e, "Content-Type"):gsub(";.*", "")))
      local doc = json.decode(e.body)
      assert.equal(1, #doc.connections)
      bodies[doc.connections[1].id] = doc.connections[1].description
    end
    assert.same({ e1 = "first text", e2 = "second" }, bodies)
  end)

  it("describes a failed connection: its status is the connection's, not the call's outcome", function()
    mock:service { endpoints = { { id = "f1", status = "failed" }, { id = "p1" } } }
    local res = c:describe(D.service_id, { f1 = "why f1", p1 = "why p1" })
    assert.equal(2, #res)
    assert.is_false(vpcep.is_error(res[1]))
    assert.equal("f1", res[1].id)
    assert.equal("failed", res[1].status)
    assert.equal("why f1", res[1].description)
    assert.matches("^%x+$", res[1].request_id)
    assert.equal("why f1", mock:by_id().f1.description)
  end)

  it("gives the results in the byte order of the ids, whatever the table's order", function()
    local ids = { "b", "a", "C", "a-2", "B_1", "9", "a.1" }
    service(ids)
    local want = {}
    for _, id in ipairs(ids) do want[id] = "text of " .. id end
    local res = c:describe(D.service_id, want)
    -- bytes: digits < upper case < '_' < lower case; '-' < '.'
    local order = { "9", "B_1", "C", "a", "a-2", "a.1", "b" }
    assert.equal(#order, #res)
    for i, id in ipairs(order) do
      assert.equal(id, res[i].id)
      assert.equal("text of " .. id, res[i].description)
    end
  end)

  it("sends quotes, backslashes, UTF-8 and 512 bytes exactly as given; an empty text clears", function()
    service { "e1", "e2", "e3" }
    local tricky = 'say "hi" \\ back\\slash, caf\195\169, \226\130\172 and / slash'
    local long = string.rep("\195\169", 256)   -- 512 bytes, 256 characters
    c:describe(D.service_id, { e1 = tricky, e2 = long, e3 = "" })
    local s = mock:by_id()
    assert.equal(tricky, s.e1.description)
    assert.equal(long, s.e2.description)
    assert.equal("", s.e3.description)
  end)

  it("signs the PUT and its body with AK/SK (the mock checks the signature)", function()
    service { "e1" }
    local signed = vpcep.new(helper.aksk_opts(mock, { retries = 0 }))
    local res = signed:describe(D.service_id, { e1 = "signed text" })
    signed:close()
    assert.equal("signed text", res[1].description)
    local log = mock:log()
    assert.equal(1, #log)
    assert.matches("^SDK%-HMAC%-SHA256 ", helper.header(log[1], "Authorization"))
  end)

  it("sends 40 descriptions concurrently (at most `concurrency` connections), each once", function()
    local ids = helper.ids(40)
    service(ids)
    local want = {}
    for _, id in ipairs(ids) do want[id] = "n " .. id end
    mock:config { delay_ms = 50 }
    local four = helper.client(mock, { retries = 0, concurrency = 4 })
    local before = mock:stats().connections_opened
    local res = four:describe(D.service_id, want)
    local opened = mock:stats().connections_opened - before
    four:close()
    assert.equal(40, #res)
    local seen = {}
    for _, e in ipairs(mock:log()) do
      local id = json.decode(e.body).connections[1].id
      assert.is_nil(seen[id], id .. " sent twice")
      seen[id] = true
    end
    for i, id in ipairs(ids) do
      assert.is_true(seen[id])
      assert.equal(id, res[i].id)   -- helper.ids are already in byte order
    end
    -- several at once over kept connections: more than one, never more than 4
    -- (the stats call itself opens one)
    assert.is_true(opened > 2 and opened <= 5, "connections opened: " .. opened)
  end)

  describe("refuses bad input before sending anything", function()
    local cases = {
      { "not a table", "text" },
      { "nil", nil },
      { "an empty table", {} },
      { "an array (number keys)", { "x" } },
      { "a key that is not an id", { ["a/b"] = "x" } },
      { "an empty id", { [""] = "x" } },
      { "an id of 65 characters", { [string.rep("a", 65)] = "x" } },
      { "an id with '..'", { ["a..b"] = "x" } },
      { "a number as text", { e1 = 5 } },
      { "a table as text", { e1 = {} } },
      { "a boolean as text", { e1 = true } },
      { "513 bytes", { e1 = string.rep("x", 513) } },
      { "257 two-byte characters (514 bytes)", { e1 = string.rep("\195\169", 257) } },
      { "'<'", { e1 = "a <b" } },
      { "'>'", { e1 = "a> b" } },
      { "a new line", { e1 = "two\nlines" } },
      { "a tab", { e1 = "a\tb" } },
      { "a NUL byte", { e1 = "a\0b" } },
      { "DEL", { e1 = "a\127b" } },
      { "a byte that is not UTF-8", { e1 = "a\255b" } },
      { "an overlong UTF-8 sequence", { e1 = "\192\175" } },
      { "a cut UTF-8 sequence", { e1 = "euro \226\130" } },
      { "a UTF-16 surrogate in UTF-8", { e1 = "\237\160\128" } },
      { "one bad among good ones", { e1 = "fine", e2 = "fine too", e3 = "<bad>" } },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        service { "e1", "e2", "e3" }
        helper.einval(c.describe, c, D.service_id, case[2])
        assert.equal(0, #mock:log())
        assert.equal("old e1", mock:by_id().e1.description)
      end)
    end

    it("more than 1000 connections at once", function()
      local many = {}
      for i = 1, 1001 do many[string.format("ep-%04d", i)] = "x" end
      local err = helper.einval(c.describe, c, D.service_id, many)
      assert.matches("1000", err.message)
      assert.equal(0, #mock:log())
    end)

    it("a bad service id, and a closed client", function()
      helper.einval(c.describe, c, "bad/id", { e1 = "x" })
      helper.einval(c.describe, c, nil, { e1 = "x" })
      local closed = helper.client(mock)
      closed:close()
      helper.einval(closed.describe, closed, D.service_id, { e1 = "x" })
      assert.equal(0, #mock:log())
    end)

    it("never names the text it refused, only where it goes wrong", function()
      local err = helper.einval(c.describe, c, D.service_id, { e1 = "secret-ish <text>" })
      assert.is_nil(err.message:find("secret-ish", 1, true), err.message)
      assert.matches("e1", err.message)
    end)
  end)

  describe("errors", function()
    it("an unknown endpoint fails alone: its 404 in err.results, the others written", function()
      service { "e1", "e3" }
      local err = helper.raised(c.describe, c, D.service_id, { e1 = "one", e2 = "two", e3 = "three" })
      assert.equal("EndPoint.0005", err.code)
      assert.equal(404, err.status)
      assert.equal("e2", err.endpoint)
      assert.equal(1, err.failed)
      assert.equal(3, #err.results)
      assert.equal("one", err.results[1].description)
      assert.is_true(vpcep.is_error(err.results[2]))
      assert.equal("e2", err.results[2].endpoint)
      assert.matches("^%x+$", err.results[2].request_id)
      assert.equal("three", err.results[3].description)
      local s = mock:by_id()
      assert.equal("one", s.e1.description)
      assert.equal("three", s.e3.description)
    end)

    it("an unknown service is the service's 404", function()
      local err = helper.raised(c.describe, c, D.service_id, { e1 = "x" })
      assert.equal("EndPoint.0005", err.code)
      assert.equal(404, err.status)
    end)

    it("a 400 from the service is its error object, not retried", function()
      service { "e1" }
      mock:fault { match = { method = "PUT" }, answer = { status = 400,
        json = { error_code = "EndPoint.0001", error_msg = "Invalid parameter: description" } } }
      local retrying = helper.client(mock, { retries = 3 })
      local err = helper.raised(retrying.describe, retrying, D.service_id, { e1 = "x" })
      retrying:close()
      assert.equal("EndPoint.0001", err.code)
      assert.equal(400, err.status)
      assert.equal(1, #mock:log())
    end)

    it("retries a 503 as accept does, and then succeeds", function()
      service { "e1" }
      mock:fault { match = { method = "PUT" }, answer = { status = 503, body = "busy" } }
      local retrying = helper.client(mock, { retries = 2 })
      local res = retrying:describe(D.service_id, { e1 = "after a retry" })
      retrying:close()
      assert.equal("after a retry", res[1].description)
      assert.equal(2, #mock:log())
    end)

    it("an answer that is not the documented JSON is vpcep.bad_response", function()
      service { "e1" }
      mock:fault { match = { method = "PUT" }, answer = { status = 200, json = { nothing = true } } }
      local err = helper.raised(c.describe, c, D.service_id, { e1 = "x" })
      assert.equal("vpcep.bad_response", err.code)
    end)

    it("an answer about another connection is vpcep.bad_response, credited to the one asked for",
      function()
        service { "e1", "e2" }
        mock:fault { match = { method = "PUT" }, answer = { status = 200,
          json = { connections = { { id = "e2", status = "pendingAcceptance", description = "x" } } } } }
        local err = helper.raised(c.describe, c, D.service_id, { e1 = "x" })
        assert.equal("vpcep.bad_response", err.code)
        assert.equal("e1", err.endpoint)
      end)
  end)

  describe("the mock's description call", function()
    local function put(doc, headers)
      local h = { ["X-Auth-Token"] = D.token, ["Content-Type"] = "application/json" }
      for k, v in pairs(headers or {}) do h[k] = v or nil end
      local body = type(doc) == "string" and doc or json.encode(doc)
      local status, text = mock:request { method = "PUT", path = DESC_PATH, body = body, headers = h }
      return status, json.decode(text)
    end

    it("answers the updated connections, and checks what the service checks", function()
      service { "e1", "e2" }
      local st, doc = put { connections = { { id = "e1", description = "new" } } }
      assert.equal(200, st)
      assert.equal("e1", doc.connections[1].id)
      assert.equal("new", doc.connections[1].description)
      assert.equal("old e2", mock:by_id().e2.description)

      st, doc = put { connections = { { id = "e1", description = "a <b> c" } } }
      assert.equal(400, st)
      assert.equal("EndPoint.0001", doc.error_code)
      st = put { connections = { { id = "e1", description = string.rep("x", 513) } } }
      assert.equal(400, st)
      st, doc = put { connections = { { id = "nope", description = "x" } } }
      assert.equal(404, st)
      assert.equal("EndPoint.0005", doc.error_code)
      st = put { connections = {} }
      assert.equal(400, st)
      st = put "not json"
      assert.equal(400, st)
      st, doc = put({ connections = { { id = "e1", description = "x" } } }, { ["X-Auth-Token"] = "wrong" })
      assert.equal(401, st)
      assert.equal("APIGW.0301", doc.error_code)
      assert.equal("new", mock:by_id().e1.description)

      local status = mock:request { method = "POST", path = DESC_PATH, body = "{}",
        headers = { ["X-Auth-Token"] = D.token, ["Content-Type"] = "application/json" } }
      assert.equal(404, status)
    end)
  end)
end)
