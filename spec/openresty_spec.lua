-- spec/openresty_spec.lua: vpcep.resty (lua/vpcep/resty.lua) in a real
-- nginx with Debian's libnginx-mod-http-lua (LuaJIT), against the mock.
--
-- nginx gets its own prefix under /tmp, one worker, listens on 127.0.0.1 on
-- a free port, and runs spec/openresty/app.lua, which makes the calls the
-- tests describe in JSON from a handler (/call) or a timer (/timer) and
-- answers their results or error objects in JSON. The same scenarios run
-- through the blocking client here, and both must agree.
-- VPCEP_KEEP_NGINX=1 keeps nginx's prefix (its config and logs) after the run.
local helper = require "spec.helper"
local socket = require "socket"
local vpcep = require "vpcep"

-- the checkout's Lua part (the blocking client's reconcile), whatever --lpath busted was given
package.path = helper.spec_dir .. "/../lua/?.lua;" .. package.path

local q = helper.shell_quote
local json = helper.json
local D = helper.defaults
local SID = D.service_id
local unpack = table.unpack or unpack -- luacheck: ignore 143

local NGINX = "/usr/sbin/nginx"
local MODULES = { "/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so" }
local exists, read, run = helper.exists, helper.read_file, helper.run

-- nginx with the Lua module, and LuaJIT's headers for the build it loads
local available = exists(NGINX) and exists(MODULES[1]) and exists(MODULES[2])
  and helper.exec_ok("pkg-config --exists luajit")
local describe_nginx = available and describe
  or function(name) pending(name .. ": nginx, libnginx-mod-http-lua or libluajit2-5.1-dev is not installed") end

---------------------------------------------------------------------------
-- nginx

-- The LuaJIT build's vpcep.so folder, built if need be (absolute).
local function luajit_build()
  local root = assert(helper.build_root(), "cannot tell the build root from package.cpath")
  local ok, text = run("make -s LUA=luajit O=" .. q(root) .. " lib")
  assert(ok, "make LUA=luajit failed:\n" .. text)
  local dir = root .. "/luajit"
  if dir:sub(1, 1) ~= "/" then dir = os.getenv("PWD") .. "/" .. dir end
  assert(exists(dir .. "/vpcep.so"))
  return dir
end

-- Starts nginx on the configuration in prefix (env: "NAME=value ..." for
-- its environment); returns { prefix=, port=, errlog= }.
local function launch(prefix, port, env)
  local ok, text = run((env or "") .. " " .. NGINX .. " -p " .. q(prefix) .. " -c " .. q(prefix .. "/nginx.conf"))
  local n = { prefix = prefix, port = port, errlog = prefix .. "/logs/error.log" }
  assert(ok, "nginx did not start:\n" .. text .. "\n" .. (read(n.errlog) or ""))
  for _ = 1, 500 do -- until it answers (bounded by count)
    local c = socket.tcp()
    c:settimeout(1)
    local up = c:connect("127.0.0.1", port)
    c:close()
    if up then break end
    socket.sleep(0.02)
  end
  return n
end

-- Starts nginx from a template with @NAME@ -> vars[NAME] (PORT: a free port).
local function start_nginx(template, vars)
  local prefix = helper.tmpdir()
  assert(helper.exec_ok("mkdir -p " .. q(prefix .. "/logs") .. " " .. q(prefix .. "/tmp")))
  local port = helper.free_port()
  vars.PORT = tostring(port)
  local conf = assert(read(template)):gsub("@([%u_]+)@", function(k)
    return assert(vars[k], "no value for @" .. k .. "@")
  end)
  helper.write_file(prefix .. "/nginx.conf", conf)
  return launch(prefix, port)
end

-- Whether pid runs (an exited process waiting to be reaped does not).
local function running(pid)
  local stat = read("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
end

local function stop_nginx(n)
  if not n then return end
  local pid = tonumber(read(n.prefix .. "/logs/nginx.pid") or "")
  if pid then
    os.execute("kill -TERM " .. pid .. " 2>/dev/null") -- fast shutdown: nothing to finish gracefully
    for _ = 1, 500 do
      if not running(pid) then break end
      socket.sleep(0.01)
    end
  end
  if os.getenv("VPCEP_KEEP_NGINX") then -- to read its logs after a run
    io.stderr:write("nginx prefix kept: " .. n.prefix .. "\n")
  else
    os.execute("rm -rf " .. q(n.prefix))
  end
end

-- Sends one HTTP/1.0 request to nginx; returns the socket, to read with finish().
local function send(port, method, path, doc)
  local body = doc and json.encode(doc) or ""
  local s = assert(socket.tcp())
  s:settimeout(120)
  assert(s:connect("127.0.0.1", port))
  assert(s:send(method .. " " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: " .. #body
    .. "\r\nContent-Type: application/json\r\n\r\n" .. body))
  return s
end

-- Reads the answer: status, decoded JSON (or the raw body), the time it arrived.
local function finish(s)
  local text = s:receive("*a")
  local arrived = socket.gettime()
  s:close()
  assert(text and text ~= "", "no answer from nginx")
  local head, body = text:match("^(.-)\r\n\r\n(.*)$")
  local status = tonumber(head:match("^HTTP/%d%.%d (%d+)"))
  local ok, doc = pcall(json.decode, body)
  return status, ok and doc or body, arrived
end

local function request(port, method, path, doc)
  return finish(send(port, method, path, doc))
end

---------------------------------------------------------------------------
-- The shapes both clients' outcomes are compared in

-- An error object's fields that must agree (request ids differ per request).
local function err_shape(e)
  if e == nil then return nil end
  local t = { code = e.code, status = e.status, retryable = e.retryable, endpoint = e.endpoint,
              tries = e.tries, failed = e.failed, has_request_id = e.request_id ~= nil,
              connection = e.connection and { id = e.connection.id, status = e.connection.status } }
  if e.results then
    t.results = {}
    for i, r in ipairs(e.results) do
      local re = r.error or (vpcep.is_error(r) and r)
      t.results[i] = re and { code = re.code, endpoint = re.endpoint } or { id = r.id, status = r.status }
    end
  end
  return t
end

-- Without its request id: a text both clients must give alike.
local function plain(text)
  return (tostring(text):gsub(" ?%(?request_id=%x+%)?", ""))
end

-- (marker_ids differ from one seeding of the mock to the next: compared apart)
local function conns_shape(list)
  local t = {}
  for i, c in ipairs(list or {}) do
    t[i] = { id = c.id, status = c.status, domain_id = c.domain_id, has_marker = c.marker_id ~= nil }
  end
  return t
end

-- The texts of a transport failure are libcurl's in one and nginx's in the other.
local OWN_TEXT = { ["vpcep.connect"] = true, ["vpcep.timeout"] = true, ["vpcep.tls"] = true,
                   ["vpcep.transport"] = true }

---------------------------------------------------------------------------

describe_nginx("vpcep.resty in nginx (lua-nginx-module)", function()
  local mock, tls_mock, rogue, nginx
  local drip_port = helper.free_port()
  local at_start -- API requests the mock had seen right after nginx started

  setup(function()
    local so_dir = luajit_build()
    mock = helper.start()
    tls_mock = helper.start { tls = true }
    rogue = helper.start { tls = true } -- a certificate nginx does not trust
    mock:reset()
    nginx = start_nginx("spec/openresty/nginx.conf", {
      ROOT = os.getenv("PWD"), CPATH = so_dir .. "/?.so", MOCK_URL = mock.url, PROJECT_ID = D.project_id,
      TOKEN = D.token, TRUST = "lua_ssl_trusted_certificate " .. tls_mock.cafile .. ";",
      DRIP_PORT = tostring(drip_port),
    })
    at_start = #mock:log()
  end)

  teardown(function()
    stop_nginx(nginx)
    for _, m in ipairs({ mock, tls_mock, rogue }) do m:stop() end
  end)

  before_each(function()
    for _, m in ipairs({ mock, tls_mock, rogue }) do m:reset() end
  end)

  -- Client options for m (default: the plain mock), merged with the tables after it.
  local function opts_for(m, ...)
    return helper.client_opts(m or mock, ...)
  end

  -- Runs method(args...) through vpcep.resty in a handler; the app's answer.
  local function call(client, method, ...)
    local args = { ... }
    local status, doc = request(nginx.port, "POST", "/call",
      { client = client, method = method, args = args, nargs = select("#", ...) })
    assert.are.equal(200, status, tostring(doc) .. "\n" .. (read(nginx.errlog) or ""))
    return doc
  end

  -- The same through the blocking client: { ok=, results=, total=, err= }.
  local function blocking(client, method, ...)
    local c = vpcep.new(client)
    local res = { pcall(c[method], c, ...) }
    c:close()
    if res[1] then return { ok = true, results = res[2], total = res[3] } end
    return { ok = false, err = res[2] }
  end

  it("loads in init_by_lua, where new only validates (nothing was sent)", function()
    assert.are.equal(0, at_start)
    local status, doc = request(nginx.port, "GET", "/init")
    assert.are.equal(200, status)
    assert.are.equal("vpcep.invalid_argument", doc.init_error.code)
    assert.matches("^vpcep: vpcep.invalid_argument: ", doc.init_error.tostring)
    -- a call where cosockets do not exist (init_worker_by_lua) is refused, not blocking
    assert.are.equal("vpcep.invalid_argument", doc.init_worker.code, json.encode(doc))
    assert.matches("init_worker", doc.init_worker.message)
    -- the client made in init_by_lua works in a handler
    mock:seed(1)
    local out = call("init", "accept", SID, "ep-0000")
    assert.is_true(out.ok, json.encode(out))
    assert.are.equal("accepted", out.results[1].status)
  end)

  it("a handler's bulk call does not block the worker: another request is answered first", function()
    mock:seed(40)
    mock:config { delay_ms = 200 }
    local ids = helper.ids(40)
    local bulk = send(nginx.port, "POST", "/call",
      { client = opts_for(mock, { concurrency = 8 }), method = "accept", args = { SID, ids }, nargs = 2 })
    -- until the call's first requests reach the mock (bounded by count)
    local arrived = 0
    for _ = 1, 1000 do
      arrived = #mock:log()
      if arrived > 0 then break end
      socket.sleep(0.005)
    end
    assert.is_true(arrived > 0, "the bulk call never reached the mock")
    local st, ping, ping_at = request(nginx.port, "GET", "/ping")
    assert.are.equal(200, st)
    local status, out, bulk_at = finish(bulk)
    assert.are.equal(200, status)
    assert.is_true(out.ok, json.encode(out))
    -- the ping's answer arrived before the bulk call's, on both clocks
    assert.is_true(ping_at < bulk_at)
    assert.is_true(ping.t < out.t1)
    assert.is_true(out.t0 < ping.t)
    assert.are.equal(40, #out.results)
    for i, c in ipairs(out.results) do
      assert.are.equal(ids[i], c.id)
      assert.are.equal("accepted", c.status)
    end
    assert.are.equal(40, #mock:log())
  end)

  it("the same bulk call from an ngx.timer.at callback, while the worker answers other requests", function()
    mock:seed(40)
    mock:config { delay_ms = 200 }
    local ids = helper.ids(40)
    local st, started = request(nginx.port, "POST", "/timer?key=bulk",
      { client = opts_for(mock, { concurrency = 8 }), method = "accept", args = { SID, ids }, nargs = 2 })
    assert.are.equal(200, st)
    assert.is_true(started.started)
    local arrived = 0
    for _ = 1, 1000 do
      arrived = #mock:log()
      if arrived > 0 then break end
      socket.sleep(0.005)
    end
    assert.is_true(arrived > 0, "the timer's call never reached the mock")
    local _, ping = request(nginx.port, "GET", "/ping")
    local status, out
    for _ = 1, 3000 do -- until the timer has stored its outcome (bounded by count)
      status, out = request(nginx.port, "GET", "/result?key=bulk")
      if status == 200 then break end
      socket.sleep(0.01)
    end
    assert.are.equal(200, status, read(nginx.errlog))
    assert.are.equal("timer", out.phase)
    assert.is_true(out.ok, json.encode(out))
    assert.is_true(out.t0 < ping.t and ping.t < out.t1)
    assert.are.equal(40, #out.results)
    for i, c in ipairs(out.results) do
      assert.are.equal(ids[i], c.id)
      assert.are.equal("accepted", c.status)
    end
  end)

  describe("retries", function()
    -- the API requests the mock saw for endpoint id, in order
    local function tries_of(id)
      local t = {}
      for _, r in ipairs(mock:log()) do
        if r.body:find('"' .. id .. '"', 1, true) then t[#t + 1] = r end
      end
      return t
    end

    it("503 then 429 with Retry-After: retried, the wait honoured, then accepted", function()
      mock:seed(2)
      mock:faults {
        { match = { endpoint = "ep-0000" }, times = 1,
          answer = { status = 503, json = { error_code = "APIGW.0201", error_msg = "busy" },
                     headers = { ["Retry-After"] = "0" } } },
        { match = { endpoint = "ep-0000" }, times = 1,
          answer = { status = 429, json = { error_code = "APIGW.0308", error_msg = "throttled" },
                     headers = { ["Retry-After"] = "1" } } },
      }
      local out = call(opts_for(mock, { retries = 3 }), "accept", SID, { "ep-0000", "ep-0001" })
      assert.is_true(out.ok, json.encode(out))
      assert.are.same({ "accepted", "accepted" }, { out.results[1].status, out.results[2].status })
      local t = tries_of("ep-0000")
      assert.are.equal(3, #t)
      assert.is_true(t[3].time - t[2].time >= 1, "Retry-After: 1 was not waited for")
      assert.are.equal(1, #tries_of("ep-0001"))
    end)

    it("EndPoint.0022 (throttled as a 400) is retried; a 503 on every try ends as HTTP.503 after retries", function()
      mock:seed(1)
      mock:fault { match = { endpoint = "ep-0000" }, times = 1,
                   answer = { status = 400, json = { error_code = "EndPoint.0022", error_msg = "too frequent" },
                              headers = { ["Retry-After"] = "0" } } }
      local out = call(opts_for(mock, { retries = 1 }), "accept", SID, "ep-0000")
      assert.is_true(out.ok, json.encode(out))
      assert.are.equal(2, #tries_of("ep-0000"))
      mock:clear_log()
      mock:fault { times = 0, answer = { status = 503, body = "<html>down</html>", headers = {
        ["Content-Type"] = "text/html", ["Retry-After"] = "0" } } }
      out = call(opts_for(mock, { retries = 2 }), "accept", SID, "ep-0000")
      assert.is_false(out.ok)
      assert.are.equal("HTTP.503", out.err.code)
      assert.are.equal(3, out.err.tries)
      assert.is_true(out.err.retryable)
      assert.are.equal(3, #tries_of("ep-0000"))
    end)

    it("a reset is vpcep.transport; a server that never answers is vpcep.timeout; as the blocking client", function()
      -- both over a kept-alive connection (warmed by a listing first): a
      -- reset of a reused connection gets one more try on a new one in both
      mock:seed(1)
      for _, case in ipairs({
        { { reset = true }, "vpcep.transport", { retries = 2 } },
        { { hang_ms = 3000 }, "vpcep.timeout", { retries = 1, timeout = 0.5 } },
      }) do
        local o = opts_for(mock, case[3])
        local rule = helper.merge({ match = { endpoint = "ep-0000" }, times = 0 }, case[1])
        mock:clear_faults()
        assert.is_true(call(o, "connections", SID, { limit = 1 }).ok)
        mock:clear_log()
        mock:fault(rule)
        local out = call(o, "accept", SID, "ep-0000")
        local seen = #tries_of("ep-0000")
        mock:clear_faults()
        local c = vpcep.new(o)
        c:connections(SID, { limit = 1 })
        mock:clear_log()
        mock:fault(rule)
        local want = helper.raised(c.accept, c, SID, "ep-0000")
        c:close()
        assert.is_false(out.ok)
        assert.are.equal(case[2], out.err.code)
        assert.is_true(out.err.retryable)
        assert.are.same(err_shape(want), err_shape(out.err))
        assert.are.equal(#tries_of("ep-0000"), seen)
      end
    end)
  end)

  describe("gives what the blocking client gives", function()
    -- Each scenario: how to set the mock up, the client options, the call.
    -- Both clients run it from the same state; their outcomes must agree.
    local scenarios = {
      { "accept over 12 ids, results in order", function() mock:seed(12) end, { concurrency = 5 },
        "accept", SID, helper.ids(12) },
      { "reject one id", function() mock:seed(1) end, {}, "reject", SID, "ep-0000" },
      { "an unknown endpoint among three: EndPoint.0005 with every result", function() mock:seed(2) end, {},
        "accept", SID, { "ep-0000", "no-such-endpoint", "ep-0001" } },
      { "a connection that fails: vpcep.connection_failed", function()
          mock:service { endpoints = { { id = "e1" }, { id = "bad", fail_with = {
            error_code = "EndPoint.2001", error_message = "quota exceeded" } } } }
        end, {}, "accept", SID, { "e1", "bad" } },
      { "accept with wait: polled until accepted", function()
          mock:config { transition_ms = 300 }
          mock:seed(3)
        end, {}, "accept", SID, helper.ids(3), { wait = 20 } },
      { "every page of a listing (2300 connections)", function() mock:seed(2300) end, {}, "connections", SID },
      { "one page of a listing with a filter", function() mock:seed(30) end, {},
        "connections", SID, { status = "pendingAcceptance", limit = 7, offset = 3 } },
      { "a 64-bit marker_id, exact", function()
          mock:service('{"project_id":"' .. D.project_id .. '","service_id":"' .. SID
            .. '","endpoints":[{"id":"e","marker_id":422321321312321321}]}')
        end, {}, "accept", SID, "e",
        check = function(out, want)
          assert.are.equal("422321321312321321", out.results[1].marker_id) -- LuaJIT: beyond 2^53, a string
          assert.are.equal("422321321312321321", tostring(want.results[1].marker_id))
        end },
      { "a refused token: APIGW.0301", function()
          mock:seed(1)
          mock:auth { token = "another-token" }
        end, {}, "accept", SID, "ep-0000" },
      { "AK/SK, signed per request", function() mock:seed(2) end,
        { token = false, ak = D.ak, sk = D.sk }, "accept", SID, helper.ids(2) },
      { "a refused signature: APIGW.0301, the SK nowhere", function() mock:seed(1) end,
        { token = false, ak = D.ak, sk = "wrong-secret-key-0123" }, "accept", SID, "ep-0000",
        check = function(out) assert.is_nil(json.encode(out):find("wrong-secret-key-0123", 1, true)) end },
      { "bad input: vpcep.invalid_argument before anything is sent", function() mock:seed(1) end, {},
        "accept", SID, {} },
      { "describe one connection", function()
          mock:seed(1)
          mock:fault { match = { method = "PUT" }, times = 0, answer = { status = 200, json = { connections = {
            { id = "ep-0000", status = "pendingAcceptance", description = "approved: account 1234" } } } } }
        end, {}, "describe", SID, { ["ep-0000"] = "approved: account 1234" },
        check = function(out) assert.are.equal("approved: account 1234", out.results[1].description) end },
      { "describe two, the service refusing: every result, in the ids' order", function()
          mock:seed(2)
          mock:fault { match = { method = "PUT" }, times = 0, answer = { status = 404,
            json = { error_code = "EndPoint.0005", error_msg = "The requested resource does not exist." } } }
        end, {}, "describe", SID, { ["ep-0001"] = "b", ["ep-0000"] = "a" } },
      { "describe with a '<': refused before anything is sent", function() mock:seed(1) end, {},
        "describe", SID, { ["ep-0000"] = "<b>" } },
      { "a 503 on every try: HTTP.503 after the retries", function()
          mock:seed(1)
          mock:fault { times = 0, answer = { status = 503, json = { error_code = "APIGW.0201" },
                                             headers = { ["Retry-After"] = "0" } } }
        end, { retries = 2 }, "accept", SID, "ep-0000" },
      { "nothing listening: vpcep.connect after the retries", function() mock:seed(1) end,
        { endpoint = "http://127.0.0.1:" .. helper.free_port(), retries = 1 }, "accept", SID, "ep-0000" },
    }

    local function options(extra)
      local o = opts_for(mock, extra)
      if o.token == false then o.token = nil end
      return o
    end

    for _, sc in ipairs(scenarios) do
      it(sc[1], function()
        local n = #sc - 4
        local args = { unpack(sc, 5, #sc) }
        sc[2]()
        local o = options(sc[3])
        local st, out = request(nginx.port, "POST", "/call", { client = o, method = sc[4], args = args, nargs = n })
        assert.are.equal(200, st)
        local sent = #mock:log()
        mock:reset()
        sc[2]()
        local want = blocking(o, sc[4], unpack(args, 1, n))
        assert.are.equal(want.ok, out.ok, json.encode(out))
        if want.ok then
          assert.are.same(conns_shape(want.results), conns_shape(out.results))
          assert.are.equal(want.total, out.total)
        else
          assert.are.same(err_shape(want.err), err_shape(out.err))
          if not OWN_TEXT[want.err.code] then
            assert.are.equal(plain(tostring(want.err)), plain(out.err.tostring))
            assert.are.equal(plain(want.err.message), plain(out.err.message))
          end
          for _, secret in ipairs({ D.token, D.sk }) do
            assert.is_nil(json.encode(out):find(secret, 1, true))
          end
        end
        assert.are.equal(#mock:log(), sent)
        if sc.check then sc.check(out, want) end
      end)
    end
  end)

  describe("TLS", function()
    it("verifies against lua_ssl_trusted_certificate: the trusted mock with cafile works, as blocking", function()
      tls_mock:seed(2)
      local o = opts_for(tls_mock, { cafile = tls_mock.cafile })
      local out = call(o, "accept", SID, helper.ids(2))
      assert.is_true(out.ok, json.encode(out))
      assert.are.same({ "accepted", "accepted" }, { out.results[1].status, out.results[2].status })
      tls_mock:reset()
      tls_mock:seed(2)
      local want = blocking(o, "accept", SID, helper.ids(2))
      assert.are.same(conns_shape(want.results), conns_shape(out.results))
    end)

    it("refuses a certificate nginx does not trust (vpcep.tls, nothing sent), as blocking without cafile", function()
      rogue:seed(1)
      local o = opts_for(rogue, { retries = 2 })
      local out = call(o, "accept", SID, "ep-0000")
      assert.is_false(out.ok)
      assert.are.equal("vpcep.tls", out.err.code)
      assert.are.equal(0, #rogue:log())
      local want = blocking(o, "accept", SID, "ep-0000")
      assert.are.same(err_shape(want.err), err_shape(out.err))
      -- cafile cannot widen what nginx trusts: the message says where to look
      out = call(opts_for(rogue, { cafile = rogue.cafile }), "accept", SID, "ep-0000")
      assert.are.equal("vpcep.tls", out.err.code)
      assert.matches("lua_ssl_trusted_certificate", out.err.message)
      assert.are.equal(0, #rogue:log())
    end)

    it("verify = false talks to it; a verified call never reuses that unverified connection", function()
      rogue:seed(1)
      local out = call(opts_for(rogue, { verify = false }), "accept", SID, "ep-0000")
      assert.is_true(out.ok, json.encode(out))
      assert.are.equal(1, #rogue:log())
      out = call(opts_for(rogue), "reject", SID, "ep-0000")
      assert.is_false(out.ok)
      assert.are.equal("vpcep.tls", out.err.code)
      assert.are.equal(1, #rogue:log())
    end)
  end)

  describe("keep-alive", function()
    -- A mock of its own, so that no connection of earlier tests is pooled for it.
    local function sequential(m, n, concurrency)
      m:reset()
      m:seed(8)
      local o = opts_for(m, { concurrency = concurrency })
      local before = m:stats()
      for _ = 1, n do
        local out = call(o, "accept", SID, helper.ids(8))
        assert.is_true(out.ok, json.encode(out))
      end
      local after = m:stats()
      -- the second stats call's own connection is counted in after
      return after.connections_opened - before.connections_opened - 1, after.requests - before.requests
    end

    it("20 sequential calls of 8 requests open at most concurrency connections (plain HTTP)", function()
      local m = helper.start()
      local ok, opened, requests = pcall(sequential, m, 20, 4)
      m:stop()
      assert(ok, opened)
      assert.are.equal(160, requests)
      assert.is_true(opened >= 1 and opened <= 4, opened .. " connections opened")
    end)

    it("and over TLS", function()
      local m = helper.start { tls = { cert = tls_mock.cert, key = tls_mock.key } }
      local ok, opened, requests = pcall(sequential, m, 20, 3)
      m:stop()
      assert(ok, opened)
      assert.are.equal(160, requests)
      assert.is_true(opened >= 1 and opened <= 3, opened .. " connections opened")
    end)
  end)

  describe("hostile answers end as the blocking client's errors, never in a hang", function()
    local big = 4 * 1024 * 1024 + 100
    local flood = string.rep("X-Flood: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 20000)
    local ok_json = '{"connections":[{"id":"e1","status":"accepted"}]}'
    local function chunked(body, size)
      local out = {}
      for k = 1, #body, size do
        local piece = body:sub(k, k + size - 1)
        out[#out + 1] = string.format("%x\r\n%s\r\n", #piece, piece)
      end
      return table.concat(out) .. "0\r\n\r\n"
    end
    local head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    local cases = {
      { "200 with an empty body", "vpcep.bad_response", { answer = { status = 200, body = "" } } },
      { "200 with HTML", "vpcep.bad_response",
        { answer = { status = 200, body = "<html><body>proxy</body></html>" } } },
      { "200 with truncated JSON", "vpcep.bad_response",
        { answer = { status = 200, body = '{"connections":[{"id":"e1","st' } } },
      { "200 nested 10000 deep", "vpcep.bad_response",
        { answer = { status = 200, body = string.rep("[", 10000) .. string.rep("]", 10000) } } },
      { "200 with a NUL byte", "vpcep.bad_response",
        { answer = { status = 200, body = '{"connections":[]}\0garbage' } } },
      { "403 with an HTML body", "HTTP.403", { answer = { status = 403, body = "<html>no</html>",
                                              headers = { ["Content-Type"] = "text/html" } } } },
      { "a chunked answer", "ok", { raw = head .. "Transfer-Encoding: chunked\r\n\r\n" .. chunked(ok_json, 7) } },
      { "a chunked answer with extensions and a trailer", "ok", { raw = head .. "Transfer-Encoding: chunked\r\n\r\n"
        .. string.format("%x;name=value\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n", #ok_json, ok_json) } },
      { "a chunked answer cut short", "vpcep.transport",
        { raw = head .. "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"con\r\n" } },
      { "a malformed chunk size", "vpcep.transport",
        { raw = head .. "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n" } },
      { "a chunk size of 19 hex digits", "vpcep.transport",
        { raw = head .. "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n" } },
      { "a chunked answer over max_body", "vpcep.bad_response", { raw = head .. "Transfer-Encoding: chunked\r\n\r\n"
        .. chunked(string.rep(" ", 3000) .. ok_json, 1024) }, { max_body = 2048 } },
      { "a Content-Length over max_body", "vpcep.bad_response", { big_body = 4096 }, { max_body = 2048 } },
      { "a body over the default cap (4 MiB)", "vpcep.bad_response", { big_body = big } },
      { "an answer that ends when the server closes", "ok", { raw = head .. "Connection: close\r\n\r\n" .. ok_json } },
      { "100 Continue, then the answer", "ok", { raw = "HTTP/1.1 100 Continue\r\n\r\n" .. head
        .. "Content-Length: " .. #ok_json .. "\r\n\r\n" .. ok_json } },
      { "a body cut in the middle", "vpcep.transport", { truncate = true } },
      { "a reset mid-body", "vpcep.transport",
        { raw = head .. "Content-Length: 1000\r\n\r\n{\"connections\":[{\"id\":" } },
      { "a reset before answering", "vpcep.transport", { reset = true } },
      { "garbage instead of HTTP", "vpcep.transport", { raw = "\0\1\2 this is not HTTP at all\r\n\r\n" } },
      { "an empty reply", "vpcep.transport", { raw = "" } },
      { "an invalid Content-Length", "vpcep.transport", { raw = head .. "Content-Length: abc\r\n\r\n{}" } },
      { "a flood of 20000 headers", "vpcep.bad_response", { raw = head .. flood .. "Content-Length: 2\r\n\r\n{}" } },
      { "one header line of 200 KB", "vpcep.bad_response", { raw = head .. "X-Long: " .. string.rep("a", 200000)
        .. "\r\nContent-Length: 2\r\n\r\n{}" } },
      { "a server that never answers", "vpcep.timeout", { hang_ms = 5000 }, { timeout = 0.5 } },
      { "a redirect, not followed", "APIGW.0302", function() return { redirect = mock.url .. "/v1/elsewhere" } end },
      { "a 200 with the wrong Content-Type", "vpcep.bad_response",
        { answer = { status = 200, json = { connections = { { id = "e1" } } },
                                                          headers = { ["Content-Type"] = "text/html" } } } },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local rule = helper.merge({ times = 0 }, type(case[3]) == "function" and case[3]() or case[3])
        local o = opts_for(mock, { retries = 0, timeout = 10 }, case[4])
        mock:service { endpoints = { { id = "e1" } } }
        mock:fault(rule)
        local out = call(o, "accept", SID, "e1")
        mock:reset()
        mock:service { endpoints = { { id = "e1" } } }
        mock:fault(rule)
        local want = blocking(o, "accept", SID, "e1")
        assert.are.equal(case[2] == "ok", out.ok, json.encode(out.err or out.results))
        if not out.ok then assert.are.equal(case[2], out.err.code) end
        assert.are.equal(want.ok, out.ok, json.encode(out.err or out.results))
        if want.ok then
          assert.are.same(conns_shape(want.results), conns_shape(out.results))
        else
          assert.are.equal(want.err.code, out.err.code, out.err.message .. " / " .. want.err.message)
          assert.are.equal(want.err.status, out.err.status)
          assert.is_true(#out.err.message < 4096)
        end
      end)
    end

    it("the worker that served them all still answers, and its client still works", function()
      mock:seed(1)
      local out = call(opts_for(mock), "accept", SID, "ep-0000")
      assert.is_true(out.ok, json.encode(out))
    end)
  end)

  describe("through a proxy (HTTP CONNECT)", function()
    local proxy, proxy_url, tunnels_file
    local PASSWORD = "p@ss-word-42"

    setup(function()
      local base = helper.tmpname()
      tunnels_file = base .. ".out"
      local p = assert(io.popen(helper.python .. " spec/openresty/proxy.py --port-file " .. q(base .. ".port")
        .. " --auth " .. q("user:" .. PASSWORD) .. " </dev/null >" .. q(tunnels_file) .. " 2>/dev/null & echo $!"))
      proxy = { pid = tonumber(p:read("*l")), port_file = base .. ".port" }
      p:close()
      for _ = 1, 500 do
        proxy.port = tonumber(read(proxy.port_file) or "")
        if proxy.port then break end
        socket.sleep(0.02)
      end
      assert(proxy.port, "the proxy did not start")
      proxy_url = "http://user:" .. helper.urlencode(PASSWORD) .. "@127.0.0.1:" .. proxy.port
    end)

    teardown(function()
      if proxy and proxy.pid then os.execute("kill " .. proxy.pid .. " 2>/dev/null") end
      if proxy then os.remove(proxy.port_file) end
      if tunnels_file then os.remove(tunnels_file) end
    end)

    local function tunnels()
      local n = 0
      for _ in (read(tunnels_file) or ""):gmatch("tunnel ") do n = n + 1 end
      return n
    end

    it("reaches the HTTPS and the plain mock through it, kept alive: one tunnel for sequential calls", function()
      tls_mock:seed(2)
      local o = opts_for(tls_mock, { cafile = tls_mock.cafile, proxy = proxy_url, concurrency = 1 })
      local before = tunnels()
      for _ = 1, 3 do
        local out = call(o, "accept", SID, helper.ids(2))
        assert.is_true(out.ok, json.encode(out))
      end
      assert.are.equal(before + 1, tunnels())
      assert.are.equal(6, #tls_mock:log())
      tls_mock:reset()
      tls_mock:seed(2)
      local want = blocking(o, "accept", SID, helper.ids(2))
      assert.is_true(want.ok, tostring(want.err))
      mock:seed(1)
      local out = call(opts_for(mock, { proxy = proxy_url }), "accept", SID, "ep-0000")
      assert.is_true(out.ok, json.encode(out))
      assert.are.equal(before + 3, tunnels()) -- the blocking client's, and the plain mock's
    end)

    it("a proxy that refuses the credentials, or is not there: the blocking client's codes, no password", function()
      tls_mock:seed(1)
      local o = opts_for(tls_mock, { cafile = tls_mock.cafile, proxy = "http://user:wrong-pw-1234@127.0.0.1:"
        .. proxy.port, retries = 1 })
      local out = call(o, "accept", SID, "ep-0000")
      local want = blocking(o, "accept", SID, "ep-0000")
      assert.is_false(out.ok)
      assert.are.same(err_shape(want.err), err_shape(out.err))
      assert.matches("407", out.err.message)
      assert.is_nil(json.encode(out):find("wrong-pw-1234", 1, true))
      assert.is_nil((read(nginx.errlog) or ""):find("wrong-pw-1234", 1, true))
      assert.are.equal(0, #tls_mock:log())
      -- and one that is not there: vpcep.connect, retried, as the blocking client
      o.proxy = "http://127.0.0.1:" .. helper.free_port()
      out = call(o, "accept", SID, "ep-0000")
      want = blocking(o, "accept", SID, "ep-0000")
      assert.are.equal("vpcep.connect", out.err.code)
      assert.are.same(err_shape(want.err), err_shape(out.err))
    end)
  end)

  describe("reconcile, each_connection, describe and opts.concurrency", function()
    local function seed() helper.seed_two_domains(mock) end

    local function writes() return helper.writes(mock) end

    local outcomes = helper.outcomes

    it("a table policy: accepts dA, rejects the others, as the plan says", function()
      seed()
      local out = call(opts_for(mock), "reconcile", SID, { accept_domains = { "dA" }, otherwise = "reject" })
      assert.is_true(out.ok, json.encode(out))
      local r = out.report
      assert.are.same({ 3, 2, 0, 0 }, { r.accepted, r.rejected, r.left, r.failed })
      assert.are.same({ a1 = "accepted", a2 = "accepted", a3 = "accepted", b1 = "rejected", b2 = "rejected" },
        outcomes(r))
      local state = mock:by_id()
      for _, id in ipairs({ "a1", "a2", "a3" }) do assert.are.equal("accepted", state[id].status) end
      for _, id in ipairs({ "b1", "b2" }) do assert.are.equal("rejected", state[id].status) end
      local w, n = writes()
      assert.are.same({ a1 = "receive", a2 = "receive", a3 = "receive", b1 = "reject", b2 = "reject" }, w)
      assert.are.equal(5, n)
      -- the blocking client plans the same from the same state
      seed()
      local c = vpcep.new(opts_for(mock))
      local report = c:reconcile(SID, { accept_domains = { "dA" }, otherwise = "reject" }, { dry_run = true })
      c:close()
      local want = {}
      for i, e in ipairs(report.plan) do want[i] = { id = e.id, action = e.action, reason = e.reason } end
      local got = {}
      for i, e in ipairs(r.plan) do got[i] = { id = e.id, action = e.action, reason = e.reason } end
      assert.are.same(want, got)
    end)

    it("a policy function with reasons, and describe: each reason written before its action", function()
      seed()
      local policy = { lua = [[return function(conn)
        if conn.id == "a2" then return "reject", "a2 is retired" end
        if conn.domain_id == "dA" then return "accept", "ours" end
      end]] }
      local out = call(opts_for(mock), "reconcile", SID, policy, { describe = true })
      assert.is_true(out.ok, json.encode(out))
      local r = out.report
      assert.are.same({ 2, 1, 2, 0 }, { r.accepted, r.rejected, r.left, r.failed })
      assert.are.same({ a1 = "accepted", a2 = "rejected", a3 = "accepted", b1 = "left", b2 = "left" }, outcomes(r))
      local w = writes()
      assert.are.same({ a1 = "describe,receive", a2 = "describe,reject", a3 = "describe,receive" }, w)
      local state = mock:by_id()
      assert.matches(": reject: a2 is retired$", state.a2.description)
      assert.matches(": accept: ours$", state.a1.description)
      assert.are.equal("pendingAcceptance", state.b1.status)
    end)

    it("a dry run sends nothing but list reads", function()
      seed()
      local out = call(opts_for(mock), "reconcile", SID, { accept_domains = { "dA" }, otherwise = "reject" },
        { dry_run = true, describe = true })
      assert.is_true(out.ok, json.encode(out))
      assert.is_true(out.report.dry_run)
      assert.are.same({ 3, 2, 0 }, { out.report.accepted, out.report.rejected, out.report.failed })
      for _, e in ipairs(out.report.plan) do assert.are.equal("planned", e.outcome) end
      local _, n = writes()
      assert.are.equal(0, n)
      assert.is_true(#mock:log() >= 1)
      for _, c in ipairs(mock:state()) do
        if c.id ~= "old" then assert.are.equal("pendingAcceptance", c.status) end
      end
    end)

    it("a failure fails that connection alone and raises with err.report; a safe client returns it", function()
      seed()
      mock:fault { match = { method = "POST", endpoint = "a2" }, answer = { status = 404,
        json = { error_code = "EndPoint.0005", error_msg = "gone" } } }
      local policy = { lua = [[return function(conn)
        if conn.id == "b1" then error("cannot decide b1") end
        if conn.domain_id == "dA" then return "accept" end
      end]] }
      local out = call(opts_for(mock), "reconcile", SID, policy)
      assert.is_false(out.ok)
      local r = out.err.report
      assert.is_table(r, json.encode(out))
      assert.are.same({ 2, 0, 1, 2 }, { r.accepted, r.rejected, r.left, r.failed })
      local o = outcomes(r)
      assert.are.same({ a1 = "accepted", a2 = "failed", a3 = "accepted", b1 = "failed", b2 = "left" }, o)
      assert.are.equal(2, out.err.failed)
      local codes = {}
      for _, e in ipairs(r.plan) do codes[e.id] = e.error end
      assert.are.equal("EndPoint.0005", codes.a2)
      assert.are.equal("vpcep.policy", codes.b1)
      assert.are.equal("accepted", mock:by_id().a3.status)
      -- the safe client: nil, err, the same report
      seed()
      mock:fault { match = { method = "POST", endpoint = "a2" }, answer = { status = 404,
        json = { error_code = "EndPoint.0005", error_msg = "gone" } } }
      local _, sout = request(nginx.port, "POST", "/call", { client = opts_for(mock), safe = true,
        method = "reconcile", args = { SID, policy }, nargs = 2 })
      assert.is_true(sout.safe_nil, json.encode(sout))
      assert.are.same({ 2, 0, 1, 2 }, { sout.err.report.accepted, sout.err.report.rejected, sout.err.report.left,
        sout.err.report.failed })
      -- bad input: refused before anything is sent, raised or returned
      mock:clear_log()
      out = call(opts_for(mock), "reconcile", SID, { otherwise = "accept" })
      assert.are.equal("vpcep.invalid_argument", out.err.code)
      local _, bad = request(nginx.port, "POST", "/call", { client = opts_for(mock), safe = true,
        method = "reconcile", args = { SID, { accept_domains = "dA" } }, nargs = 2 })
      assert.is_true(bad.safe_nil)
      assert.are.equal("vpcep.invalid_argument", bad.err.code)
      assert.are.equal(0, #mock:log())
    end)

    it("each_connection: lazy pages of query.limit, every connection once, in order", function()
      mock:seed(2500)
      local out = call(opts_for(mock), "each_connection", SID, { limit = 1000 })
      assert.is_true(out.ok, json.encode(out))
      assert.are.equal(2500, #out.results)
      local ids = helper.ids(2500)
      for i = 1, 2500 do assert.are.equal(ids[i], out.results[i].id) end
      local paths = helper.get_paths(mock:log())
      assert.are.equal(3, #paths)
      for k, path in ipairs(paths) do
        assert.matches("offset=" .. (k - 1) * 1000, path)
        assert.matches("limit=1000", path)
      end
      -- a page that fails raises from the loop; a bad query is refused before sending
      mock:fault { match = { method = "GET", path_contains = "offset=1000" }, answer = { status = 404,
        json = { error_code = "EndPoint.0005", error_msg = "gone" } } }
      out = call(opts_for(mock), "each_connection", SID, { limit = 1000 })
      assert.is_false(out.ok)
      assert.are.equal("EndPoint.0005", out.err.code)
      mock:clear_log()
      out = call(opts_for(mock), "each_connection", SID, { limit = 0 })
      assert.are.equal("vpcep.invalid_argument", out.err.code)
      out = call(opts_for(mock), "each_connection", SID, { colour = "red" })
      assert.are.equal("vpcep.invalid_argument", out.err.code)
      assert.are.equal(0, #mock:log())
    end)

    it("opts.concurrency: at most that many requests out at once, for accept, describe and reconcile", function()
      local ids = mock:seed(10)
      mock:config { delay_ms = 150 }
      local most = {}
      local texts = {}
      for _, id in ipairs(ids) do texts[id] = "t " .. id end
      local calls = {
        { "accept", SID, ids, { concurrency = 2 } },
        { "describe", SID, texts, { concurrency = 2 } },
        { "reconcile", SID, { accept_domains = { "d0" } }, { statuses = { "accepted" }, concurrency = 2 } },
        { "reject", SID, ids },
      }
      for k, args in ipairs(calls) do
        mock:clear_stats()
        local out = call(opts_for(mock, { concurrency = 8 }), unpack(args))
        assert.is_true(out.ok, json.encode(out))
        most[k] = mock:stats().max_in_flight
      end
      assert.are.same({ 2, 2 }, { most[1], most[2] })
      -- (the accepted ones are accepted already: the reconcile only lists)
      assert.are.equal(1, most[3])
      assert.is_true(most[4] > 2, "the client's concurrency gave only " .. most[4])
      mock:clear_log()
      local out = call(opts_for(mock), "accept", SID, ids, { concurrency = 65 })
      assert.are.equal("vpcep.invalid_argument", out.err.code)
      assert.are.equal(0, #mock:log())
    end)
  end)

  describe("the rest of the surface", function()
    it("close() ends a call in flight with vpcep.cancelled, at once", function()
      mock:seed(3)
      mock:config { delay_ms = 3000 }
      local st, out = request(nginx.port, "POST", "/cancel?after=0.2",
        { client = opts_for(mock), method = "accept", args = { SID, helper.ids(3) } })
      assert.are.equal(200, st)
      assert.is_false(out.ok)
      assert.are.equal("vpcep.cancelled", out.err.code)
      -- answered before the mock (still sleeping on the requests) accepted any
      for _, c in ipairs(mock:state()) do assert.are.equal("pendingAcceptance", c.status) end
    end)

    it("vpcep.resty.safe: nil, err from new and from the client's methods", function()
      local st, out = request(nginx.port, "POST", "/call",
        { client = { project_id = "p", region = "xx-nowhere-1", token = "t" }, safe = true,
          method = "accept", args = { SID, "e1" }, nargs = 2 })
      assert.are.equal(200, st)
      assert.is_false(out.ok)
      assert.is_true(out.safe_nil) -- returned, not raised
      assert.are.equal("vpcep.invalid_argument", out.err.code)
      mock:seed(1)
      out = call(opts_for(mock), "accept", SID, "nope")
      local _, sout = request(nginx.port, "POST", "/call",
        { client = opts_for(mock), safe = true, method = "accept", args = { SID, "nope" }, nargs = 2 })
      assert.is_true(sout.safe_nil)
      assert.are.equal("EndPoint.0005", sout.err.code)
      assert.are.same(err_shape(out.err), err_shape(sout.err))
    end)

    it("the one-shots vpcep.resty.accept{...} and reject{...}, and their safe forms", function()
      mock:seed(2)
      local one = helper.merge(opts_for(mock), { service_id = SID, endpoints = { "ep-0000", "ep-0001" } })
      local _, out = request(nginx.port, "POST", "/call", { module = true, method = "accept", args = { one } })
      assert.is_true(out.ok, json.encode(out))
      assert.are.same({ "accepted", "accepted" }, { out.results[1].status, out.results[2].status })
      one.endpoints = "ep-0001"
      _, out = request(nginx.port, "POST", "/call", { module = true, method = "reject", args = { one } })
      assert.are.equal("rejected", out.results[1].status)
      one.endpoints = "nope"
      _, out = request(nginx.port, "POST", "/call", { module = true, safe = true, method = "reject", args = { one } })
      assert.is_true(out.safe_nil)
      assert.are.equal("EndPoint.0005", out.err.code)
      one.bogus = 1
      _, out = request(nginx.port, "POST", "/call", { module = true, method = "reject", args = { one } })
      assert.are.equal("vpcep.invalid_argument", out.err.code)
    end)

    it("a closed client refuses calls, as the blocking one does; closing twice is fine", function()
      mock:seed(1)
      local st, out = request(nginx.port, "POST", "/call", { client = opts_for(mock), close_first = true,
        method = "accept", args = { SID, "ep-0000" }, nargs = 2 })
      assert.are.equal(200, st)
      assert.is_false(out.ok)
      local c = vpcep.new(opts_for(mock))
      c:close()
      local want = helper.raised(c.accept, c, SID, "ep-0000")
      assert.are.same(err_shape(want), err_shape(out.err))
      assert.are.equal(want.message, out.err.message)
      assert.are.equal(0, #mock:log())
    end)

    it("a server that drips its answer slowly is cut off at the request's timeout (vpcep.timeout)", function()
      local out = call(opts_for(mock, { endpoint = "http://127.0.0.1:" .. drip_port, timeout = 1, retries = 0 }),
        "accept", SID, "e1")
      assert.is_false(out.ok)
      assert.are.equal("vpcep.timeout", out.err.code, out.err.message)
      -- and it did not read on to the end of the drip
      assert.are.equal(404, (request(nginx.port, "GET", "/result?key=drip_done")))
    end)

    describe("credentials the client fetches itself, over cosockets", function()
      local PASSWORD = "resty-iam-password-Zx81"
      local function iam_opts(user, password)
        return { endpoint = mock.url, project_id = D.project_id, iam_endpoint = mock.url, retries = 0,
                 iam = { user = user, password = password or PASSWORD, domain = "acme" } }
      end
      local function counts(keys)
        local n, out = mock:counts(), {}
        for _, k in ipairs(keys) do out[k] = n[k] end
        return out
      end

      it("an iam client: the token at the first call, cached in the worker; info() and prepare()", function()
        mock:iam { users = { ["resty-u1"] = { password = PASSWORD, domain = "acme" } } }
        mock:seed(2)
        local out = call(iam_opts("resty-u1"), "accept", SID, "ep-0000")
        assert.is_true(out.ok, json.encode(out))
        assert.are.equal("accepted", out.results[1].status)
        assert.are.same({ iam_tokens = 1, vpcep = 1 }, counts { "iam_tokens", "vpcep" })
        local log = mock:log()
        assert.are.equal("/v3/auth/tokens", log[1].path:match("^[^?]*"))
        assert.are.equal(6000, #helper.header(log[2], "X-Auth-Token"))
        out = call(iam_opts("resty-u1"), "info")
        assert.is_true(out.ok, json.encode(out))
        assert.are.equal("iam", out.results.auth)
        assert.are.equal(D.project_id, out.results.project_id)
        assert.is_string(out.results.expires_at)
        out = call(iam_opts("resty-u1"), "prepare", "receive", SID, "ep-0001")
        assert.is_true(out.ok, json.encode(out))
        assert.are.equal(6000, #out.results.headers["X-Auth-Token"])
        assert.are.same({ iam_tokens = 1, vpcep = 1 }, counts { "iam_tokens", "vpcep" }) -- the worker's cache
      end)

      it("metadata = true: the agency's keys over cosockets, then signed calls", function()
        mock:seed(1)
        local out = call({ endpoint = mock.url, project_id = D.project_id, metadata = true,
                           metadata_endpoint = mock.url, retries = 0 }, "accept", SID, "ep-0000")
        assert.is_true(out.ok, json.encode(out))
        assert.are.same({ metadata_token = 1, metadata_securitykey = 1, vpcep = 1 },
                        counts { "metadata_token", "metadata_securitykey", "vpcep" })
        assert.matches("^SDK%-HMAC%-SHA256 Access=", helper.header(mock:log()[3], "Authorization"))
      end)

      it("a refused password is vpcep.credentials with the cause, as the blocking client's, no password", function()
        mock:iam { users = { ["resty-u2"] = { password = "the-right-one-Qq11", domain = "acme" } } }
        local out = call(iam_opts("resty-u2"), "accept", SID, "ep-0000")
        assert.is_false(out.ok)
        assert.are.equal("vpcep.credentials", out.err.code, json.encode(out))
        local b = blocking(iam_opts("resty-u2"), "accept", SID, "ep-0000")
        assert.are.equal(b.err.message, out.err.message)
        assert.are.same({ code = b.err.cause.code, status = b.err.cause.status }, out.err.cause)
        assert.is_not_nil(out.err.cause.status)
        assert.is_nil(json.encode(out):find(PASSWORD, 1, true))
        assert.are.same({ iam_tokens = 2, vpcep = 0 }, counts { "iam_tokens", "vpcep" })
      end)
    end)

    it("one client (made in init_by_lua) serves two handlers' calls at once", function()
      mock:seed(8)
      mock:config { delay_ms = 100 }
      local a = send(nginx.port, "POST", "/call", { client = "init", method = "accept",
                                                    args = { SID, { unpack(helper.ids(8), 1, 4) } }, nargs = 2 })
      local b = send(nginx.port, "POST", "/call", { client = "init", method = "reject",
                                                    args = { SID, { unpack(helper.ids(8), 5, 8) } }, nargs = 2 })
      local _, ra = finish(a)
      local _, rb = finish(b)
      assert.is_true(ra.ok and rb.ok, json.encode({ ra, rb }))
      -- they overlapped: each started before the other ended
      assert.is_true(ra.t0 < rb.t1 and rb.t0 < ra.t1)
      for i = 1, 4 do
        assert.are.equal("accepted", ra.results[i].status)
        assert.are.equal("rejected", rb.results[i].status)
      end
    end)

    it("refuses what cosockets cannot do: a proxy other than http:// (at new), a host name without a resolver",
      function()
      local proxies = { "socks5://u:secret-pw@127.0.0.1:1080", "https://127.0.0.1:3128",
                        "http://127.0.0.1:3128\r\nX: 1" }
      for _, proxy in ipairs(proxies) do
        local out = call(opts_for(mock, { proxy = proxy }), "accept", SID, "e1")
        assert.are.equal("vpcep.invalid_argument", out.err.code)
        assert.is_nil(json.encode(out):find("secret-pw", 1, true))
      end
      mock:seed(1)
      local o = opts_for(mock, { endpoint = "http://localhost:" .. mock.port, retries = 0 })
      local out = call(o, "accept", SID, "ep-0000")
      assert.are.equal("vpcep.connect", out.err.code)
      assert.matches("resolver", out.err.message)
      assert.are.equal(0, #mock:log())
    end)

    it("nginx's error log holds no secret, no Lua error and no 'unknown reason'", function()
      local log = read(nginx.errlog) or ""
      for _, secret in ipairs({ D.token, D.sk, "another-token", "wrong-secret-key-0123", "p@ss-word-42",
                                "p%40ss-word-42", "wrong-pw-1234", "secret-pw" }) do
        assert.is_nil(log:find(secret, 1, true), "secret in the error log")
      end
      assert.is_nil(log:find("unknown reason", 1, true), log)
      assert.is_nil(log:find("runtime error", 1, true), log)
      assert.is_nil(log:find("vpcep/resty", 1, true), log)
      assert.is_nil(log:find("[alert]", 1, true), log)
    end)
  end)
end)

-- examples/openresty/: rendered by its render.sh, credentials from the
-- environment, against a mock of its own.
describe_nginx("examples/openresty (vpcep.resty: /approve and the approver timer)", function()
  local mock, nginx
  local SID2 = "5f0a8d2c-6e3a-4b9f-8c4d-0123456789cd"

  setup(function()
    local so_dir = luajit_build()
    mock = helper.start()
    mock:reset()
    -- the approver's service: two connections of an account it trusts, one of another
    mock:service { service_id = SID2, endpoints = {
      { id = "p1", domain_id = "d-ok" }, { id = "p2", domain_id = "d-ok" }, { id = "x1", domain_id = "d-other" } } }
    local prefix = helper.tmpdir()
    local port = helper.free_port()
    local ok, text = run("sh examples/openresty/render.sh " .. table.concat({ q(prefix), port, q(mock.url),
      q(D.project_id), q(so_dir .. "/?.so"), q(SID2), "0.2", "d-ok", "reject" }, " "))
    assert(ok, text)
    nginx = launch(prefix, port, "VPCEP_TOKEN=" .. q(D.token))
  end)

  teardown(function()
    stop_nginx(nginx)
    if mock then mock:stop() end
  end)

  local function approve(service, ids, method)
    local path = "/approve?service=" .. helper.urlencode(service)
    for _, id in ipairs(ids) do path = path .. "&id=" .. helper.urlencode(id) end
    return request(nginx.port, method or "POST", path)
  end

  it("POST /approve accepts the ids given, in order", function()
    mock:service { endpoints = { { id = "e1" }, { id = "e2" }, { id = "e3" } } }
    local status, doc = approve(SID, { "e2", "e1" })
    assert.are.equal(200, status, read(nginx.errlog))
    assert.are.same({ "e2", "e1" }, { doc.connections[1].id, doc.connections[2].id })
    assert.are.same({ "accepted", "accepted" }, { doc.connections[1].status, doc.connections[2].status })
    local state = mock:by_id()
    assert.are.equal("accepted", state.e1.status)
    assert.are.equal("pendingAcceptance", state.e3.status)
    local h = {}
    for _, r in ipairs(mock:log()) do
      if r.path:find(SID, 1, true) then h[#h + 1] = helper.log_header(r, "X-Auth-Token") end
    end
    assert.are.same({ D.token, D.token }, h)
  end)

  it("answers the error objects as JSON: 404 with each id's outcome, 400 for bad input, 405 for GET", function()
    mock:service { endpoints = { { id = "e1" } } }
    local status, doc = approve(SID, { "e1", "nope" })
    assert.are.equal(404, status)
    assert.are.equal("EndPoint.0005", doc.error.code)
    assert.are.equal("nope", doc.error.endpoint)
    assert.are.equal("accepted", doc.results[1].status)
    assert.are.equal("EndPoint.0005", doc.results[2].error.code)
    -- (the log is kept whole: the approver's timer test reads it)
    local before = #mock:log()
    status, doc = approve(SID, { "bad id!" })
    assert.are.equal(400, status)
    assert.are.equal("vpcep.invalid_argument", doc.error.code)
    status = approve(SID, { "e1" }, "GET")
    assert.are.equal(405, status)
    local sent = 0
    for k, r in ipairs(mock:log()) do if k > before and r.path:find(SID, 1, true) then sent = sent + 1 end end
    assert.are.equal(0, sent)
  end)

  it("the approver timer reconciles: accepts the accounts it trusts, rejects the other, each once", function()
    local state
    for _ = 1, 1000 do -- until the timer has done it (bounded by count)
      state = mock:by_id(D.project_id, SID2)
      if state.p1.status == "accepted" and state.p2.status == "accepted" and state.x1.status == "rejected" then
        break
      end
      socket.sleep(0.02)
    end
    assert.are.equal("accepted", state.p1.status, read(nginx.errlog))
    assert.are.equal("accepted", state.p2.status)
    assert.are.equal("rejected", state.x1.status)
    -- further rounds have listed again since (reconcile's pending listing),
    -- and acted on nothing more: one action per connection
    local lists, actions
    for _ = 1, 1000 do
      lists, actions = 0, {}
      for _, r in ipairs(mock:log()) do
        if r.path:find(SID2, 1, true) then
          if r.method == "GET" then
            assert.matches("status=pendingAcceptance", r.path)
            lists = lists + 1
          elseif r.method == "POST" then
            local doc = json.decode(r.body)
            actions[#actions + 1] = doc.endpoints[1] .. "=" .. doc.action
          end
        end
      end
      if lists >= 3 then break end
      socket.sleep(0.02)
    end
    assert.is_true(lists >= 3)
    table.sort(actions)
    assert.are.same({ "p1=receive", "p2=receive", "x1=reject" }, actions)
    local log = read(nginx.errlog)
    assert.matches("vpcep approver: " .. SID2 .. ": accepted 2, rejected 1, left 0, failed 0", log, 1, true)
    assert.matches("vpcep approver: x1 (domain d-other): rejected: domain d-other is in no list (otherwise = reject)",
      log, 1, true)
    assert.matches("vpcep approver: p1 (domain d-ok): accepted: domain d-ok is in accept_domains", log, 1, true)
  end)

  it("a round that fails is logged and the next round goes on", function()
    mock:service { service_id = SID2, endpoints = { { id = "n1", domain_id = "d-ok" } } }
    mock:fault { match = { method = "GET", path_contains = SID2 }, times = 2, answer = { status = 404,
      json = { error_code = "EndPoint.0005", error_msg = "not there yet" } } }
    local state
    for _ = 1, 1000 do -- until a round after the failing ones accepted it (bounded by count)
      state = mock:by_id(D.project_id, SID2)
      if state.n1.status == "accepted" then break end
      socket.sleep(0.02)
    end
    assert.are.equal("accepted", state.n1.status, read(nginx.errlog))
    assert.matches("vpcep approver: vpcep: 404 EndPoint.0005: not there yet", read(nginx.errlog), 1, true)
  end)

  it("nginx's error log holds no token and no Lua error", function()
    local log = read(nginx.errlog) or ""
    assert.is_nil(log:find(D.token, 1, true))
    assert.is_nil(log:find("runtime error", 1, true), log)
    assert.is_nil(log:find("unknown reason", 1, true), log)
  end)
end)
