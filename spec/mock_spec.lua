-- Specs of the mock VPCEP server itself (spec/mock/server.py), through luasocket only.
package.path = "./?.lua;" .. package.path
local helper = require "spec.helper"
local socket = require "socket"
local json = helper.json
local D = helper.defaults

local BASE = "/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. D.service_id .. "/connections"
local ACTION = BASE .. "/action"

describe("mock VPCEP server", function()
  local mock

  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function() mock:reset() end)

  local function api(method, path, body, headers)
    local h = { ["X-Auth-Token"] = D.token }
    if body then h["Content-Type"] = "application/json" end
    for k, v in pairs(headers or {}) do h[k] = v end
    for k, v in pairs(h) do if v == false then h[k] = nil end end
    local status, text, rh = mock:request{ method = method, path = path, body = body, headers = h, redirect = false }
    local ok, doc = pcall(json.decode, text)
    return status, ok and doc or nil, rh, text
  end

  local function act(action, id, headers)
    return api("POST", ACTION, json.encode({ action = action, endpoints = { id } }), headers)
  end

  local function seed()
    mock:service{ endpoints = {
      { id = "e1", domain_id = "dom-a", description = "first" },
      { id = "e2", status = "accepted" },
      { id = "e3", fail_with = { error_code = "EndPoint.1234", error_message = "quota exceeded" } },
    } }
  end

  it("passes the published SDK-HMAC-SHA256 vectors in the Python signer", function()
    assert.is_true(helper.signer_self_test())
  end)

  describe("service calls", function()
    it("accepts and rejects, changing the state", function()
      seed()
      local st, doc, h = act("receive", "e1")
      assert.equal(200, st)
      assert.equal(1, #doc.connections)
      local c = doc.connections[1]
      assert.equal("e1", c.id)
      assert.equal("accepted", c.status)
      assert.equal("dom-a", c.domain_id)
      assert.equal("first", c.description)
      assert.is_nil(c.error)
      assert.is_nil(doc.total_count)
      assert.matches("^%x+$", h["x-request-id"])
      assert.equal(32, #h["x-request-id"])
      assert.matches("application/json", h["content-type"])
      assert.are_not.equal(c.created_at, c.updated_at)
      assert.equal("accepted", mock:by_id().e1.status)

      st, doc = act("reject", "e2")
      assert.equal(200, st)
      assert.equal("rejected", doc.connections[1].status)
      assert.equal("rejected", mock:by_id().e2.status)
    end)

    it("ends in failed with an error list for an endpoint seeded with fail_with", function()
      seed()
      local st, doc = act("receive", "e3")
      assert.equal(200, st)
      local c = doc.connections[1]
      assert.equal("failed", c.status)
      assert.same({ { error_code = "EndPoint.1234", error_message = "quota exceeded" } }, c.error)
    end)

    it("goes through creating when transition_ms is set", function()
      seed()
      mock:config{ transition_ms = 200 }
      local _, doc = act("receive", "e1")
      assert.equal("creating", doc.connections[1].status)
      local _, l = api("GET", BASE .. "?id=e1")
      assert.equal("creating", l.connections[1].status)
      socket.sleep(0.25)
      _, l = api("GET", BASE .. "?id=e1")
      assert.equal("accepted", l.connections[1].status)
    end)

    it("lists with paging and filters", function()
      mock:service{ count = 25, prefix = "ep-" }
      local st, doc = api("GET", BASE)
      assert.equal(200, st)
      assert.equal(25, doc.total_count)
      assert.equal(10, #doc.connections)
      assert.equal("ep-0000", doc.connections[1].id)

      st, doc = api("GET", BASE .. "?limit=10&offset=20")
      assert.equal(200, st)
      assert.equal(5, #doc.connections)
      assert.equal("ep-0020", doc.connections[1].id)
      assert.equal(25, doc.total_count)

      st, doc = api("GET", BASE .. "?limit=1000")
      assert.equal(200, st)
      assert.equal(25, #doc.connections)

      st, doc = api("GET", BASE .. "?id=ep-0007")
      assert.equal(200, st)
      assert.equal(1, doc.total_count)
      assert.equal("ep-0007", doc.connections[1].id)

      act("receive", "ep-0003")
      act("receive", "ep-0004")
      st, doc = api("GET", BASE .. "?status=accepted&limit=1")
      assert.equal(200, st)
      assert.equal(2, doc.total_count)
      assert.equal(1, #doc.connections)

      st, doc = api("GET", BASE .. "?sort_key=create_at&sort_dir=desc&limit=1")
      assert.equal(200, st)
      assert.equal("ep-0024", doc.connections[1].id)
      st, doc = api("GET", BASE .. "?sort_key=create_at&sort_dir=asc&limit=1")
      assert.equal(200, st)
      assert.equal("ep-0000", doc.connections[1].id)
    end)

    it("keeps 64-bit marker_ids exact and filters on them", function()
      mock:service(string.format(
        '{"project_id":"%s","service_id":"%s","endpoints":[{"id":"big","marker_id":422321321312321321},'
          .. '{"id":"small"}]}',
        D.project_id, D.service_id))
      local st, _, _, text = api("GET", BASE .. "?marker_id=422321321312321321")
      assert.equal(200, st)
      assert.matches('"marker_id": 422321321312321321', text, 1, true)
      assert.matches('"total_count": 1', text, 1, true)
      assert.matches('"id": "big"', text, 1, true)
    end)

    it("rejects invalid query values with 400", function()
      seed()
      for _, q in ipairs{ "limit=1001", "limit=-1", "limit=x", "offset=-1", "sort_key=name",
                          "sort_dir=up", "status=bogus", "marker_id=abc" } do
        local st, doc = api("GET", BASE .. "?" .. q)
        assert.equal(400, st, q)
        assert.equal("EndPoint.0001", doc.error_code, q)
      end
    end)

    it("answers 400 EndPoint.0001 for bad action bodies", function()
      seed()
      local bodies = {
        "not json",
        '{"action":"approve","endpoints":["e1"]}',
        '{"action":"receive","endpoints":["e1","e2"]}',
        '{"action":"receive","endpoints":[]}',
        '{"action":"receive","endpoints":"e1"}',
        '{"action":"receive","endpoints":[1]}',
      }
      for _, b in ipairs(bodies) do
        local st, doc = api("POST", ACTION, b)
        assert.equal(400, st, b)
        assert.equal("EndPoint.0001", doc.error_code, b)
        assert.is_string(doc.error_msg)
      end
      local st, doc = api("POST", ACTION, '{"action":"receive","endpoints":["e1"]}',
                          { ["Content-Type"] = "text/plain" })
      assert.equal(400, st)
      assert.equal("EndPoint.0001", doc.error_code)
    end)

    it("answers 404 EndPoint.0005 for unknown services and endpoints, APIGW.0101 for unknown paths", function()
      seed()
      local st, doc = act("receive", "nope")
      assert.equal(404, st)
      assert.same({ error_code = "EndPoint.0005", error_msg = "The requested resource does not exist." }, doc)
      st, doc = api("GET", "/v1/" .. D.project_id .. "/vpc-endpoint-services/other/connections")
      assert.equal(404, st)
      assert.equal("EndPoint.0005", doc.error_code)
      st, doc = api("GET", "/v2/nothing/here")
      assert.equal(404, st)
      assert.equal("APIGW.0101", doc.error_code)
      st = api("GET", BASE .. "/")   -- the signer's trailing slash is never sent
      assert.equal(404, st)
    end)
  end)

  describe("authentication", function()
    it("refuses a wrong token or no credentials with the gateway's 401 body", function()
      seed()
      local st, doc, h = api("GET", BASE, nil, { ["X-Auth-Token"] = "wrong" })
      assert.equal(401, st)
      assert.equal("APIGW.0301", doc.error_code)
      assert.matches("token invalid", doc.error_msg)
      assert.equal(h["x-request-id"], doc.request_id)
      st, doc = api("GET", BASE, nil, { ["X-Auth-Token"] = false })
      assert.equal(401, st)
      assert.equal("APIGW.0301", doc.error_code)
    end)

    it("accepts a token changed through the control API", function()
      seed()
      mock:auth{ token = "another" }
      assert.equal(401, (api("GET", BASE)))
      assert.equal(200, (api("GET", BASE, nil, { ["X-Auth-Token"] = "another" })))
    end)

    it("refuses a bad AK/SK signature and an expired date", function()
      seed()
      local st, doc = api("GET", BASE, nil, {
        ["X-Auth-Token"] = false,
        ["X-Sdk-Date"] = os.date("!%Y%m%dT%H%M%SZ"),
        ["X-Project-Id"] = D.project_id,
        Authorization = "SDK-HMAC-SHA256 Access=" .. D.ak .. ", SignedHeaders=x-sdk-date, Signature="
          .. string.rep("0", 64),
      })
      assert.equal(401, st)
      assert.equal("APIGW.0301", doc.error_code)
      assert.matches("verify aksk signature fail", doc.error_msg)
      st, doc = api("GET", BASE, nil, {
        ["X-Auth-Token"] = false,
        ["X-Sdk-Date"] = "20000101T000000Z",
        ["X-Project-Id"] = D.project_id,
        Authorization = "SDK-HMAC-SHA256 Access=" .. D.ak .. ", SignedHeaders=x-sdk-date, Signature="
          .. string.rep("0", 64),
      })
      assert.equal(401, st)
      assert.equal("APIGW.0303", doc.error_code)
    end)

    it("verifies a correctly signed request (signed by the Python signer)", function()
      seed()
      -- sign with the independent Python implementation, send with luasocket
      local date = os.date("!%Y%m%dT%H%M%SZ")
      local host = "127.0.0.1:" .. mock.port
      local script = string.format([[
import sys; sys.path.insert(0, %q)
import sdk_signer
print(sdk_signer.sign("GET", %q, "limit=5&id=e1",
                      [("Host", %q), ("X-Project-Id", %q), ("X-Sdk-Date", %q)], b"", %q, %q))
]], helper.spec_dir .. "/mock", BASE, host, D.project_id, date, D.ak, D.sk)
      local f = assert(io.popen(helper.python .. " -c " .. helper.shell_quote(script)))
      local authz = f:read("*l")
      f:close()
      local c = mock:connect()
      local st, body = c:request("GET", BASE .. "?limit=5&id=e1", {
        ["X-Project-Id"] = D.project_id, ["X-Sdk-Date"] = date, Authorization = authz })
      c:close()
      assert.equal(200, st, body)
      assert.equal(1, json.decode(body).total_count)
    end)

    it("needs no authentication for control calls", function()
      assert.is_table(mock:stats())
    end)
  end)

  describe("faults", function()
    it("answers a canned status, body and headers, a limited number of times", function()
      seed()
      mock:fault{ match = { method = "POST", path_contains = "/connections", endpoint = "e1" }, times = 2,
                  answer = { status = 503, json = { error_code = "APIGW.0308", error_msg = "busy" },
                             headers = { ["Retry-After"] = "1" } } }
      assert.equal(200, (act("receive", "e2")))   -- other endpoint: not matched
      local st, doc, h = act("receive", "e1")
      assert.equal(503, st)
      assert.equal("APIGW.0308", doc.error_code)
      assert.equal("1", h["retry-after"])
      assert.equal(32, #h["x-request-id"])
      assert.equal(503, (act("receive", "e1")))
      assert.equal(200, (act("receive", "e1")))
    end)

    it("answers a raw body and can drop X-Request-Id", function()
      seed()
      mock:fault{ answer = { status = 502, body = "<html>bad gateway</html>",
                             headers = { ["Content-Type"] = "text/html", ["X-Request-Id"] = json.null } } }
      local st, _, h, text = api("GET", BASE)
      assert.equal(502, st)
      assert.equal("<html>bad gateway</html>", text)
      assert.equal("text/html", h["content-type"])
      assert.is_nil(h["x-request-id"])
    end)

    it("delays an answer", function()
      seed()
      mock:fault{ delay_ms = 300 }
      local t0 = socket.gettime()
      assert.equal(200, (api("GET", BASE)))
      assert.is_true(socket.gettime() - t0 >= 0.28)
    end)

    it("delays every answer with config delay_ms", function()
      seed()
      mock:config{ delay_ms = 150 }
      local t0 = socket.gettime()
      api("GET", BASE)
      assert.is_true(socket.gettime() - t0 >= 0.14)
    end)

    it("resets the connection", function()
      seed()
      mock:fault{ reset = true }
      local c = mock:connect()
      local st, err = c:request("GET", BASE, { ["X-Auth-Token"] = D.token })
      c:close()
      assert.is_nil(st)
      assert.is_truthy(err == "closed" or tostring(err):match("reset"), err)
    end)

    it("truncates an answer", function()
      seed()
      mock:fault{ truncate = true }
      local c = mock:connect()
      local st, err, partial = c:request("GET", BASE, { ["X-Auth-Token"] = D.token })
      c:close()
      assert.is_nil(st)
      assert.equal("closed", err)
      assert.is_true(#partial > 0)
    end)

    it("hangs, then closes without answering", function()
      seed()
      mock:fault{ hang_ms = 300 }
      local c = mock:connect()
      local t0 = socket.gettime()
      local st, err = c:request("GET", BASE, { ["X-Auth-Token"] = D.token })
      c:close()
      assert.is_nil(st)
      assert.equal("closed", err)
      assert.is_true(socket.gettime() - t0 >= 0.28)
    end)

    it("writes raw bytes", function()
      seed()
      mock:fault{ raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" }
      local c = mock:connect()
      local st, body = c:request("GET", BASE, { ["X-Auth-Token"] = D.token })
      c:close()
      assert.equal(200, st)
      assert.equal("{}", body)
    end)

    it("redirects", function()
      seed()
      mock:fault{ redirect = "http://127.0.0.1:1/elsewhere" }
      local st, _, h = api("GET", BASE)
      assert.equal(302, st)
      assert.equal("http://127.0.0.1:1/elsewhere", h["location"])
    end)

    it("sends a big body", function()
      seed()
      mock:fault{ big_body = 2 * 1024 * 1024 }
      local st, doc, _, text = api("GET", BASE)
      assert.equal(200, st)
      assert.equal(2 * 1024 * 1024, #text)
      assert.is_table(doc.connections)
    end)

    -- Whatever has arrived on sock and waits to be read.
    local function drain(sock)
      local got = {}
      while #socket.select({ sock }, nil, 0) > 0 do
        local chunk, err, partial = sock:receive(1)
        chunk = chunk or partial
        if chunk == nil or chunk == "" then break end
        got[#got + 1] = chunk
        if err then break end
      end
      return table.concat(got)
    end

    -- A raw keep-alive connection: the request, its answer, then what else
    -- the mock writes on it.
    local function answer_then_more(method, path, body)
      local c = mock:connect()
      local h = { ["X-Auth-Token"] = D.token }
      if body then h["Content-Type"] = "application/json" end
      local st, text = c:request(method, path, h, body)
      mock:await_extra(1)
      local more = drain(c.sock)
      c:close()
      return st, text, more
    end

    it("writes an extra copy of the answer after it, on the same connection", function()
      seed()
      mock:fault{ match = { method = "POST" }, extra = true, extra_delay_ms = 0 }
      local body = json.encode({ action = "receive", endpoints = { "e1" } })
      local st, text, more = answer_then_more("POST", ACTION, body)
      assert.equal(200, st)
      assert.equal("e1", json.decode(text).connections[1].id)
      assert.matches("^HTTP/1%.1 200 OK\r\n", more)
      assert.equal(text, more:match("\r\n\r\n(.*)$"))
      assert.equal(1, mock:control("GET", "/_mock/faults").rules[1].extra_sent)
    end)

    it("writes an extra answer given like answer, or raw bytes, after the real one", function()
      seed()
      mock:fault{ extra = { status = 503, json = { error_code = "X", error_msg = "late" } } }
      local st, _, more = answer_then_more("GET", BASE)
      assert.equal(200, st)
      assert.matches("^HTTP/1%.1 503 ", more)
      assert.matches('"late"', more)
      mock:reset()
      seed()
      mock:fault{ extra = "not HTTP" }
      st, _, more = answer_then_more("GET", BASE)
      assert.equal(200, st)
      assert.equal("not HTTP", more)
    end)

    it("writes the answer and its copy at once with extra_same_write", function()
      seed()
      mock:fault{ extra = true, extra_same_write = true, extra_delay_ms = 60000 }
      local c = mock:connect()
      c.sock:send("GET " .. BASE .. " HTTP/1.1\r\nHost: x\r\nX-Auth-Token: " .. D.token .. "\r\n\r\n")
      mock:await_extra(1)   -- no 60 s: the delay is not for a same write
      local text = drain(c.sock)
      c:close()
      local first, second = text:match("^(HTTP/1%.1 200 .-)(HTTP/1%.1 200 .*)$")
      assert.is_string(first, text)
      assert.equal(first, second)
    end)

    it("shapes list answers: list_total, list_cycle, list_endless", function()
      seed()
      mock:fault{ times = 0, list_total = 99 }
      local _, doc = api("GET", BASE .. "?limit=2")
      assert.equal(99, doc.total_count)
      assert.equal(2, #doc.connections)
      mock:clear_faults()
      mock:fault{ times = 0, list_total = false }
      _, doc = api("GET", BASE)
      assert.is_nil(doc.total_count)
      assert.equal(3, #doc.connections)
      mock:clear_faults()
      mock:fault{ times = 0, list_cycle = 1 }
      _, doc = api("GET", BASE .. "?limit=2&offset=2")
      assert.equal("e1", doc.connections[1].id)
      assert.equal(3, doc.total_count)
      mock:clear_faults()
      mock:fault{ times = 0, list_endless = 2 }
      _, doc = api("GET", BASE .. "?offset=7")
      assert.equal(2, #doc.connections)
      assert.equal("endless-7", doc.connections[1].id)
      assert.equal("endless-8", doc.connections[2].id)
      assert.equal(10, doc.total_count)
    end)

    it("applies a rule forever with times = 0, first matching rule wins", function()
      seed()
      mock:faults{ { times = 0, match = { method = "GET" }, answer = { status = 429 } },
                   { times = 0, answer = { status = 500 } } }
      for _ = 1, 3 do assert.equal(429, (api("GET", BASE))) end
      assert.equal(500, (act("receive", "e1")))
    end)
  end)

  describe("observability", function()
    it("logs every API request as received", function()
      seed()
      mock:clear_log()
      local c = mock:connect()   -- raw socket: header case as we write it
      assert.equal(200, (c:request("POST", ACTION, { ["X-Auth-Token"] = D.token, ["X-Custom-Case"] = "Value",
        ["Content-Type"] = "application/json" }, '{"action":"receive","endpoints":["e1"]}')))
      c:close()
      api("GET", BASE .. "?limit=3")
      mock:stats()   -- control calls are not logged
      local log = mock:log()
      assert.equal(2, #log)
      assert.equal("POST", log[1].method)
      assert.equal(ACTION, log[1].path)
      assert.equal('{"action":"receive","endpoints":["e1"]}', log[1].body)
      local found
      for _, kv in ipairs(log[1].headers) do
        if kv[1] == "X-Custom-Case" then found = kv[2] end
      end
      assert.equal("Value", found)
      assert.equal(BASE .. "?limit=3", log[2].path)
      assert.is_number(log[2].time)
      mock:clear_log()
      assert.equal(0, #mock:log())
    end)

    it("keeps connections alive (stats)", function()
      seed()
      local before = mock:stats()
      local c = mock:connect()
      for _ = 1, 3 do
        local st = c:request("GET", BASE, { ["X-Auth-Token"] = D.token })
        assert.equal(200, st)
      end
      c:close()
      local after = mock:stats()
      -- our keep-alive connection plus the /_mock/stats call itself
      assert.equal(before.connections_opened + 2, after.connections_opened)
      assert.equal(before.requests + 3, after.requests)
    end)

    it("serves 64 concurrent connections", function()
      seed()
      local conns = {}
      for i = 1, 64 do conns[i] = mock:connect() end
      local req = "GET " .. BASE .. "?id=e1 HTTP/1.1\r\nHost: x\r\nX-Auth-Token: " .. D.token .. "\r\n\r\n"
      for i = 1, 64 do assert(conns[i].sock:send(req)) end
      for i = 1, 64 do
        local line = conns[i].sock:receive("*l")
        assert.equal("HTTP/1.1 200 OK", line)
        conns[i]:close()
      end
    end)
  end)
end)

describe("mock VPCEP server over TLS", function()
  local mock
  setup(function() mock = helper.start{ tls = true } end)
  teardown(function() mock:stop() end)

  it("serves HTTPS", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", mock.url)
    mock:reset()
    mock:service{ endpoints = { { id = "e1" } } }
    local st, text = mock:request{ path = BASE, headers = { ["X-Auth-Token"] = D.token } }
    assert.equal(200, st)
    assert.equal(1, json.decode(text).total_count)
    assert.is_string(mock.cafile)
  end)
end)
