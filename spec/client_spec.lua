-- spec/client_spec.lua: the client against the mock, with token auth:
-- accept/reject of one id and of arrays, exact marker_id, unknown fields,
-- keep-alive, the request on the wire, close/__gc/__close, tostring, and
-- the one-shot functions.
package.path = "./?.lua;" .. package.path
local helper = require "spec.helper"
local vpcep = require "vpcep"
local json = helper.json
local D = helper.defaults

-- 5.3+ has integers; 5.1 and LuaJIT give a number up to 2^53, else a string.
local HAS_INT = math.type ~= nil
local TOKEN = "tok-Zq81-secret-" .. string.rep("k", 40)
local ACTION_PATH = "/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. D.service_id .. "/connections/action"

local einval = helper.einval

local log_header = helper.log_header

describe("client", function()
  local mock

  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function()
    mock:reset()
    mock:auth{ token = TOKEN }
  end)

  local function new(extra) return helper.client(mock, { token = TOKEN, retries = 0 }, extra) end

  local function seed(n)
    local eps = {}
    for i = 1, n do eps[i] = { id = "e" .. i } end
    mock:service{ endpoints = eps }
  end

  describe("accept and reject", function()
    it("accepts one id given as a string and returns an array of one connection", function()
      seed(2)
      local c = new()
      local conns = c:accept(D.service_id, "e1")
      assert.are.equal(1, #conns)
      assert.are.equal("e1", conns[1].id)
      assert.are.equal("accepted", conns[1].status)
      assert.are.equal("d0", conns[1].domain_id)
      assert.is_string(conns[1].created_at)
      assert.is_string(conns[1].updated_at)
      local st = mock:by_id()
      assert.are.equal("accepted", st.e1.status)
      assert.are.equal("pendingAcceptance", st.e2.status)
      c:close()
    end)

    it("rejects one id and the state shows it", function()
      seed(2)
      local c = new()
      local conns = c:reject(D.service_id, "e2")
      assert.are.equal(1, #conns)
      assert.are.equal("e2", conns[1].id)
      assert.are.equal("rejected", conns[1].status)
      local st = mock:by_id()
      assert.are.equal("rejected", st.e2.status)
      assert.are.equal("pendingAcceptance", st.e1.status)
      c:close()
    end)

    it("accepts an array and returns the connections in input order", function()
      seed(6)
      local c = new()
      local ids = { "e5", "e1", "e3", "e6" }
      local conns = c:accept(D.service_id, ids)
      assert.are.equal(#ids, #conns)
      for i, id in ipairs(ids) do
        assert.are.equal(id, conns[i].id)
        assert.are.equal("accepted", conns[i].status)
      end
      local st = mock:by_id()
      for _, id in ipairs(ids) do assert.are.equal("accepted", st[id].status) end
      assert.are.equal("pendingAcceptance", st.e2.status)
      assert.are.equal("pendingAcceptance", st.e4.status)
      assert.are.equal(#ids, #mock:log())
      c:close()
    end)

    it("rejects an array in input order, after accepting them", function()
      seed(4)
      local c = new()
      c:accept(D.service_id, { "e1", "e2", "e3", "e4" })
      local conns = c:reject(D.service_id, { "e4", "e2" })
      assert.are.equal("e4", conns[1].id)
      assert.are.equal("e2", conns[2].id)
      assert.are.equal("rejected", conns[1].status)
      assert.are.equal("rejected", conns[2].status)
      local st = mock:by_id()
      assert.are.equal("accepted", st.e1.status)
      assert.are.equal("rejected", st.e2.status)
      assert.are.equal("accepted", st.e3.status)
      assert.are.equal("rejected", st.e4.status)
      c:close()
    end)

    it("returns plain tables, not the client's or the error's metatable", function()
      seed(1)
      local c = new()
      local conns = c:accept(D.service_id, "e1")
      assert.is_false(vpcep.is_error(conns))
      assert.is_false(vpcep.is_error(conns[1]))
      assert.is_nil(conns[1].error)
      c:close()
    end)
  end)

  describe("marker_id", function()
    local function seed_marker(id, marker)
      mock:service(string.format('{"project_id":"%s","service_id":"%s","endpoints":[{"id":"%s","marker_id":%s}]}',
        D.project_id, D.service_id, id, marker))
    end

    it("comes back exactly as 422321321312321321", function()
      seed_marker("big", "422321321312321321")
      local c = new()
      local m = c:accept(D.service_id, "big")[1].marker_id
      if HAS_INT then
        assert.are.equal("integer", math.type(m))
        assert.is_true(m == 422321321312321321)
        assert.are.equal("422321321312321321", string.format("%d", m))
        -- the neighbours a double would collapse onto are different
        assert.is_false(m == 422321321312321320)
        assert.is_false(m == 422321321312321322)
      else
        assert.are.equal("string", type(m))
        assert.are.equal("422321321312321321", m)
      end
      c:close()
    end)

    it("keeps the largest 64-bit value and 2^53 + 1 exact", function()
      mock:service(string.format('{"project_id":"%s","service_id":"%s","endpoints":['
        .. '{"id":"max","marker_id":9223372036854775807},{"id":"p53","marker_id":9007199254740993}]}',
        D.project_id, D.service_id))
      local c = new()
      local conns = c:accept(D.service_id, { "max", "p53" })
      if HAS_INT then
        assert.are.equal("integer", math.type(conns[1].marker_id))
        assert.are.equal("9223372036854775807", string.format("%d", conns[1].marker_id))
        assert.are.equal("9007199254740993", string.format("%d", conns[2].marker_id))
      else
        assert.are.equal("9223372036854775807", conns[1].marker_id)
        assert.are.equal("9007199254740993", conns[2].marker_id)
      end
      c:close()
    end)

    it("is a number at or below 2^53 on every Lua (an integer on 5.3+)", function()
      mock:service(string.format('{"project_id":"%s","service_id":"%s","endpoints":['
        .. '{"id":"small","marker_id":12345},{"id":"p53","marker_id":9007199254740992}]}',
        D.project_id, D.service_id))
      local c = new()
      local conns = c:accept(D.service_id, { "small", "p53" })
      assert.are.equal("number", type(conns[1].marker_id))
      assert.are.equal(12345, conns[1].marker_id)
      assert.are.equal("number", type(conns[2].marker_id))
      assert.are.equal(9007199254740992, conns[2].marker_id)
      if HAS_INT then
        assert.are.equal("integer", math.type(conns[1].marker_id))
        assert.are.equal("integer", math.type(conns[2].marker_id))
      end
      c:close()
    end)
  end)

  describe("answers", function()
    it("keeps unknown fields and unknown statuses as they come", function()
      seed(1)
      mock:fault{ match = { path_contains = "/connections/action" }, answer = { status = 200,
        body = '{"connections":[{"id":"e1","marker_id":7,"status":"quarantined","domain_id":"d9",'
          .. '"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-02T00:00:00Z",'
          .. '"description":"hi","zone":"az-3","tags":{"k":["a","b"]},"weight":2.5,"flag":false}],'
          .. '"extra_top":1}' } }
      local c = new()
      local conn = c:accept(D.service_id, "e1")[1]
      assert.are.equal("quarantined", conn.status)
      assert.are.equal("az-3", conn.zone)
      assert.are.same({ k = { "a", "b" } }, conn.tags)
      assert.are.equal(2.5, conn.weight)
      assert.is_false(conn.flag)
      assert.are.equal("hi", conn.description)
      assert.are.equal("d9", conn.domain_id)
      assert.are.equal(7, conn.marker_id)
      c:close()
    end)

    it("keeps each known status of the contract", function()
      seed(1)
      local c = new()
      for _, s in ipairs({ "pendingAcceptance", "creating", "accepted", "rejected", "deleting" }) do
        mock:clear_faults()
        mock:fault{ answer = { status = 200, json = { connections = { { id = "e1", status = s } } } } }
        assert.are.equal(s, c:accept(D.service_id, "e1")[1].status)
      end
      c:close()
    end)
  end)

  describe("keep-alive", function()
    it("uses one TCP connection for several sequential calls", function()
      seed(5)
      local c = new()
      c:accept(D.service_id, "e1") -- a connection an earlier client left, or a new one
      local before = mock:stats()
      c:reject(D.service_id, "e2")
      c:accept(D.service_id, "e3")
      c:accept(D.service_id, "e4")
      local after = mock:stats()
      assert.are.equal(3, after.requests - before.requests)
      -- only the control call that read `after` opened one
      assert.are.equal(1, after.connections_opened - before.connections_opened)
      c:close()
    end)

    it("a second client reuses the connection the first left idle (spec/share_spec.lua)", function()
      seed(2)
      local a, b = new(), new()
      a:accept(D.service_id, "e1")
      local before = mock:stats()
      b:accept(D.service_id, "e2")
      a:reject(D.service_id, "e1")
      local after = mock:stats()
      assert.are.equal(1, after.connections_opened - before.connections_opened)
      a:close()
      b:close()
    end)
  end)

  describe("the request on the wire", function()
    it("is the contract's POST with headers and body", function()
      seed(1)
      local c = new()
      c:accept(D.service_id, "e1")
      local log = mock:log()
      assert.are.equal(1, #log)
      local r = log[1]
      assert.are.equal("POST", r.method)
      assert.are.equal(ACTION_PATH, r.path)
      assert.are_not.equal("/", r.path:sub(-1))
      local tok, ntok = log_header(r, "X-Auth-Token")
      assert.are.equal(TOKEN, tok)
      assert.are.equal(1, ntok)
      local ct = log_header(r, "Content-Type")
      assert.are.equal("application/json", ct)
      local ua = log_header(r, "User-Agent")
      assert.is_string(ua)
      assert.matches("vpcep", ua, 1, true)
      local version = vpcep._VERSION:match("^vpcep (%d+%.%d+%.%d+)$")
      assert.is_string(version)
      assert.matches(version, ua, 1, true)
      assert.is_nil(log_header(r, "Authorization"))
      assert.are.equal(#r.body, tonumber((log_header(r, "Content-Length"))))
      assert.are.same({ action = "receive", endpoints = { "e1" } }, json.decode(r.body))
      c:close()
    end)

    it("sends action reject and one request per id of an array", function()
      seed(3)
      local c = new()
      c:reject(D.service_id, { "e3", "e1", "e2" })
      local log = mock:log()
      assert.are.equal(3, #log)
      local seen = {}
      for _, r in ipairs(log) do
        local doc = json.decode(r.body)
        assert.are.equal("reject", doc.action)
        assert.are.equal(1, #doc.endpoints)
        seen[doc.endpoints[1]] = (seen[doc.endpoints[1]] or 0) + 1
        assert.are.equal(ACTION_PATH, r.path)
      end
      assert.are.same({ e1 = 1, e2 = 1, e3 = 1 }, seen)
      c:close()
    end)

    it("honours user_agent", function()
      seed(1)
      local c = new{ user_agent = "my-app/2.0" }
      c:accept(D.service_id, "e1")
      assert.are.equal("my-app/2.0", (log_header(mock:log()[1], "User-Agent")))
      c:close()
    end)
  end)

  describe("close", function()
    it("close() makes the client refuse every method with invalid_argument", function()
      seed(1)
      local c = new()
      c:close()
      einval(function() c:accept(D.service_id, "e1") end)
      einval(function() c:reject(D.service_id, "e1") end)
      einval(function() c:connections(D.service_id) end)
      einval(function() c:prepare("receive", D.service_id, "e1") end)
      assert.are.equal(0, #mock:log())
    end)

    it("closing twice is fine", function()
      local c = new()
      assert.has_no.errors(function() c:close() end)
      assert.has_no.errors(function() c:close() end)
      einval(function() c:accept(D.service_id, "e1") end)
    end)

    it("__gc releases the client (called directly, it also closes it)", function()
      seed(1)
      local c = new()
      c:accept(D.service_id, "e1")
      local mt = getmetatable(c)
      assert.is_function(mt.__gc)
      mt.__gc(c)
      einval(function() c:accept(D.service_id, "e1") end)
      assert.has_no.errors(function() c:close() end)
      mt.__gc(c) -- again, after close: fine
    end)

    it("many clients dropped without close are collected and others still work", function()
      seed(1)
      for _ = 1, 50 do
        local c = new()
        c:accept(D.service_id, "e1")
      end
      collectgarbage()
      collectgarbage()
      local c = new()
      assert.are.equal("accepted", c:accept(D.service_id, "e1")[1].status)
      c:close()
    end)

    local is54 = _VERSION == "Lua 5.4" and not rawget(_G, "jit")
    local it54 = is54 and it or pending
    it54("__close closes a client declared <close> (Lua 5.4)", function()
      seed(1)
      local chunk = assert(load([[
        local vpcep, opts, sid = ...
        local outer
        do
          local c <close> = vpcep.new(opts)
          outer = c
          c:accept(sid, "e1")
        end
        return outer
      ]]))
      local c = chunk(vpcep, { endpoint = mock.url, project_id = D.project_id, token = TOKEN, retries = 0 },
        D.service_id)
      assert.are.equal(1, #mock:log())
      einval(function() c:accept(D.service_id, "e1") end)
      assert.are.equal(1, #mock:log())
      assert.are.equal("vpcep.client (closed)", tostring(c))
    end)

    it54("__close also runs when the block raises (Lua 5.4)", function()
      local chunk = assert(load([[
        local vpcep, opts = ...
        local outer
        local ok, err = pcall(function()
          local c <close> = vpcep.new(opts)
          outer = c
          error("boom")
        end)
        return outer, ok, err
      ]]))
      local c, ok, err = chunk(vpcep, { endpoint = mock.url, project_id = D.project_id, token = TOKEN })
      assert.is_false(ok)
      assert.matches("boom", tostring(err))
      einval(function() c:accept(D.service_id, "e1") end)
    end)

    it("a method called with a dot instead of a colon raises invalid_argument", function()
      local c = new()
      einval(function() c.accept(D.service_id, "e1") end)
      einval(function() c.close("x") end)
      c:close()
      assert.are.equal(0, #mock:log())
    end)
  end)

  describe("tostring", function()
    it("names the client and never shows the token", function()
      local c = new()
      local s = tostring(c)
      assert.matches("vpcep", s, 1, true)
      assert.is_nil(s:find(TOKEN, 1, true))
      assert.is_nil(s:find("Zq81", 1, true))
      c:close()
      s = tostring(c)
      assert.matches("closed", s, 1, true)
      assert.is_nil(s:find(TOKEN, 1, true))
    end)
  end)

  describe("one-shot functions", function()
    local function opts(extra)
      return helper.client_opts(mock, { token = TOKEN, retries = 0, service_id = D.service_id }, extra)
    end

    it("vpcep.accept{...} accepts an array in order", function()
      seed(3)
      local conns = vpcep.accept(opts{ endpoints = { "e3", "e1" } })
      assert.are.equal(2, #conns)
      assert.are.equal("e3", conns[1].id)
      assert.are.equal("e1", conns[2].id)
      assert.are.equal("accepted", conns[1].status)
      local st = mock:by_id()
      assert.are.equal("accepted", st.e1.status)
      assert.are.equal("pendingAcceptance", st.e2.status)
      assert.are.equal("accepted", st.e3.status)
    end)

    it("vpcep.reject{...} rejects one id given as a string", function()
      seed(2)
      local conns = vpcep.reject(opts{ endpoints = "e2" })
      assert.are.equal(1, #conns)
      assert.are.equal("rejected", conns[1].status)
      assert.are.equal("rejected", mock:by_id().e2.status)
      assert.are.equal(1, #mock:log())
    end)

    it("raises the service's error as an error object", function()
      seed(1)
      local ok, err = pcall(vpcep.accept, opts{ endpoints = "nope" })
      assert.is_false(ok)
      assert.is_true(vpcep.is_error(err))
      assert.are.equal("EndPoint.0005", err.code)
      assert.are.equal(404, err.status)
      assert.are.equal("nope", err.endpoint)
    end)

    it("refuses bad arguments before sending anything", function()
      seed(1)
      einval(vpcep.accept, opts{ endpoints = {} })
      einval(vpcep.reject, opts{ endpoints = "e/1" })
      einval(vpcep.accept, opts{ service_id = "a/b", endpoints = "e1" })
      einval(vpcep.accept, opts{ endpoints = "e1", bogus = 1 })
      local o = opts{ endpoints = "e1" }
      o.service_id = nil
      einval(vpcep.accept, o)
      einval(vpcep.accept, "not a table")
      einval(vpcep.reject)
      assert.are.equal(0, #mock:log())
    end)
  end)
end)
