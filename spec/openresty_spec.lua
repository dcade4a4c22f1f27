-- spec/openresty_spec.lua: examples/openresty/ in a real nginx with Debian's
-- libnginx-mod-http-lua (LuaJIT), driven against the mock server.
--
-- nginx gets its own prefix under /tmp, listens on 127.0.0.1 on a free port,
-- loads the ndk and http-lua modules itself, and finds vpcep.so in the LuaJIT
-- build (make LUA=luajit, in the build root this suite runs from). The example
-- accepts and rejects from request handlers (client:prepare + an internal
-- proxy_pass location + vpcep.parse), and runs the blocking client once in a
-- timer started by init_worker_by_lua.
local helper = require "spec.helper"
local socket = require "socket"

local q = helper.shell_quote
local json = helper.json
local D = helper.defaults

local NGINX = "/usr/sbin/nginx"
local MODULES = { "/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so" }

local exists, read, run = helper.exists, helper.read_file, helper.run
local free_port, build_root = helper.free_port, helper.build_root

-- One HTTP/1.0 request to nginx; returns status, decoded JSON (or raw body), headers.
local function get(port, path, headers)
  local s = assert(socket.tcp())
  s:settimeout(30)
  assert(s:connect("127.0.0.1", port))
  local lines = { "GET " .. path .. " HTTP/1.0", "Host: 127.0.0.1" }
  for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  assert(s:send(table.concat(lines, "\r\n") .. "\r\n\r\n"))
  local text = s:receive("*a")
  s:close()
  assert(text, "no answer from nginx for " .. path)
  local head, body = text:match("^(.-)\r\n\r\n(.*)$")
  local status = tonumber(head:match("^HTTP/%d%.%d (%d+)"))
  local h = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do h[k:lower()] = v end
  local ok, doc = pcall(json.decode, body)
  return status, ok and doc or body, h
end

local available = exists(NGINX) and exists(MODULES[1]) and exists(MODULES[2])
local describe_nginx = available and describe
  or function(name) pending(name .. ": nginx or libnginx-mod-http-lua is not installed") end

describe_nginx("openresty example (nginx + http-lua)", function()
  local mock, prefix, port, errlog

  local function path(action, endpoint, service)
    return "/vpcep/" .. action .. "?service=" .. helper.urlencode(service or D.service_id)
      .. (endpoint and ("&endpoint=" .. helper.urlencode(endpoint)) or "")
  end

  local function seed()
    mock:clear_faults()
    mock:clear_log()
    mock:auth { token = D.token }
    mock:service { endpoints = { { id = "e1" }, { id = "e2" }, { id = "t1" },
      { id = "bad", fail_with = { error_code = "EndPoint.2001", error_message = "quota exceeded" } } } }
  end

  setup(function()
    local root = assert(build_root(), "cannot tell the build root from package.cpath")
    local ok, text = run("make -s LUA=luajit O=" .. q(root) .. " lib")
    assert(ok, "make LUA=luajit failed:\n" .. text)
    local so_dir = root .. "/luajit"
    if so_dir:sub(1, 1) ~= "/" then so_dir = os.getenv("PWD") .. "/" .. so_dir end
    assert(exists(so_dir .. "/vpcep.so"))

    mock = helper.start()
    mock:reset()
    seed()
    prefix = os.tmpname()
    os.remove(prefix)
    port = free_port()
    errlog = prefix .. "/logs/error.log"
    ok, text = run("sh examples/openresty/render.sh " .. table.concat({
      q(prefix), port, q(mock.url), q(D.project_id), q(so_dir .. "/?.so"), q(D.service_id), "t1" }, " "))
    assert(ok, text)
    ok, text = run("VPCEP_TOKEN=" .. q(D.token) .. " " .. NGINX .. " -p " .. q(prefix) .. " -c "
      .. q(prefix .. "/nginx.conf"))
    assert(ok, "nginx did not start:\n" .. text .. "\n" .. (read(errlog) or ""))
    -- wait until it answers (bounded by count)
    for _ = 1, 500 do
      local c = socket.tcp()
      c:settimeout(1)
      if c:connect("127.0.0.1", port) then c:close() break end
      c:close()
      socket.sleep(0.02)
    end
  end)

  teardown(function()
    if prefix then
      local pid = tonumber(read(prefix .. "/logs/nginx.pid") or "")
      if pid then
        os.execute("kill -QUIT " .. pid .. " 2>/dev/null")
        for _ = 1, 250 do
          if not helper.exec_ok("kill -0 " .. pid .. " 2>/dev/null") then break end
          socket.sleep(0.02)
        end
      end
      os.execute("rm -rf " .. q(prefix))
    end
    if mock then mock:stop() end
  end)

  it("answers at all (the module loaded in init_by_lua)", function()
    local status, body = get(port, "/ping")
    assert.are.equal(200, status, read(errlog))
    assert.matches("pong", body)
  end)

  it("the blocking client works inside a timer started by init_worker_by_lua", function()
    local status, doc
    for _ = 1, 500 do
      status, doc = get(port, "/vpcep/timer")
      if status ~= 404 then break end
      socket.sleep(0.02)
    end
    assert.are.equal(200, status, read(errlog))
    assert.is_table(doc.connection, json.encode(doc))
    assert.are.equal("t1", doc.connection.id)
    assert.are.equal("accepted", doc.connection.status)
    assert.are.equal("accepted", mock:by_id()["t1"].status)
  end)

  describe("request handlers", function()
    before_each(seed)

    it("accept: 200 with the connection, sent with the token and only the prepared headers", function()
      local status, doc = get(port, path("receive", "e1"), { ["X-Client-Secret"] = "do-not-forward" })
      assert.are.equal(200, status, read(errlog))
      assert.are.equal("e1", doc.connection.id)
      assert.are.equal("accepted", doc.connection.status)
      assert.are.equal("accepted", mock:by_id()["e1"].status)
      local log = mock:log()
      assert.are.equal(1, #log)
      local r = log[1]
      assert.are.equal("POST", r.method)
      assert.are.equal("/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. D.service_id .. "/connections/action",
        r.path)
      assert.are.same({ action = "receive", endpoints = { "e1" } }, json.decode(r.body))
      local h = {}
      for _, kv in ipairs(r.headers) do h[kv[1]:lower()] = kv[2] end
      assert.are.equal(D.token, h["x-auth-token"])
      assert.are.equal("application/json", h["content-type"])
      assert.is_string(h["host"])
      assert.is_nil(h["x-client-secret"])
    end)

    it("reject: 200 with the rejected connection", function()
      local status, doc = get(port, path("reject", "e2"))
      assert.are.equal(200, status, read(errlog))
      assert.are.equal("e2", doc.connection.id)
      assert.are.equal("rejected", doc.connection.status)
      assert.are.equal("rejected", mock:by_id()["e2"].status)
      assert.are.equal("pendingAcceptance", mock:by_id()["e1"].status)
    end)

    it("an unknown endpoint: 404 with the service's code and request id", function()
      local status, doc = get(port, path("receive", "nope"))
      assert.are.equal(404, status)
      assert.are.equal("EndPoint.0005", doc.error.code)
      assert.are.equal(404, doc.error.status)
      assert.matches("^%x+$", doc.error.request_id)
      assert.is_false(doc.error.retryable)
      assert.are.equal(1, #mock:log())
    end)

    it("a refused token: 401 APIGW.0301, the token nowhere in the answer or the log", function()
      mock:auth { token = "another-token" }
      local status, doc, _ = get(port, path("receive", "e1"))
      assert.are.equal(401, status)
      assert.are.equal("APIGW.0301", doc.error.code)
      assert.is_nil(json.encode(doc):find(D.token, 1, true))
      assert.is_nil((read(errlog) or ""):find(D.token, 1, true))
      assert.are.equal("pendingAcceptance", mock:by_id()["e1"].status)
    end)

    it("bad input: 400 vpcep.invalid_argument, nothing sent", function()
      local status, doc = get(port, path("receive", nil))
      assert.are.equal(400, status)
      assert.are.equal("vpcep.invalid_argument", doc.error.code)
      status = get(port, path("approve", "e1"))
      assert.are.equal(404, status)        -- no such location
      status, doc = get(port, path("receive", "e1", string.rep("s", 65)))
      assert.are.equal(400, status)
      assert.are.equal("vpcep.invalid_argument", doc.error.code)
      assert.are.equal(0, #mock:log())
    end)

    it("a connection that fails: 409 vpcep.connection_failed with the service's reason", function()
      local status, doc = get(port, path("receive", "bad"))
      assert.are.equal(409, status)
      assert.are.equal("vpcep.connection_failed", doc.error.code)
      assert.are.equal("bad", doc.error.endpoint)
      assert.matches("EndPoint.2001", doc.error.message, 1, true)
    end)

    it("no answer (connection reset): 502 vpcep.transport, retryable", function()
      mock:fault { match = { path_contains = "/connections" }, reset = true }
      local status, doc = get(port, path("receive", "e1"))
      assert.are.equal(502, status)
      assert.are.equal("vpcep.transport", doc.error.code)
      assert.is_true(doc.error.retryable)
    end)

    it("an answer cut short: 502 vpcep.transport", function()
      mock:fault { match = { path_contains = "/connections" }, truncate = true }
      local status, doc = get(port, path("receive", "e1"))
      assert.are.equal(502, status)
      assert.are.equal("vpcep.transport", doc.error.code)
    end)

    it("a service error without a JSON body (HTML from a proxy): 502 HTTP.503", function()
      mock:fault { match = { path_contains = "/connections" },
                   answer = { status = 503, body = "<html>maintenance</html>",
                     headers = { ["Content-Type"] = "text/html" } } }
      local status, doc = get(port, path("receive", "e1"))
      assert.are.equal(502, status)
      assert.are.equal("HTTP.503", doc.error.code)
      assert.are.equal(503, doc.error.status)
      assert.is_true(doc.error.retryable)
    end)

    it("a throttled answer: 429 passed on, retryable", function()
      mock:fault { match = { path_contains = "/connections" },
                   answer = { status = 429, json = { error_code = "APIGW.0308", error_msg = "throttled" } } }
      local status, doc = get(port, path("receive", "e1"))
      assert.are.equal(429, status)
      assert.are.equal("APIGW.0308", doc.error.code)
      assert.is_true(doc.error.retryable)
    end)

    it("does not block the worker: other requests are served while a call waits on the service", function()
      -- one worker; the service holds the "e2" call for a while
      mock:fault { match = { endpoint = "e2" }, delay_ms = 2000 }
      local slow = assert(socket.tcp())
      slow:settimeout(30)
      assert(slow:connect("127.0.0.1", port))
      assert(slow:send("GET " .. path("receive", "e2") .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
      -- wait until the call has reached the service (bounded by count)
      local arrived = false
      for _ = 1, 500 do
        for _, r in ipairs(mock:log()) do
          if r.body:find('"e2"', 1, true) then arrived = true end
        end
        if arrived then break end
        socket.sleep(0.01)
      end
      assert.is_true(arrived, "the slow call never reached the mock")
      -- while it waits: a plain location and another vpcep call are answered
      local st = get(port, "/ping")
      assert.are.equal(200, st)
      local st2, doc2 = get(port, path("receive", "e1"))
      assert.are.equal(200, st2)
      assert.are.equal("accepted", doc2.connection.status)
      -- and the slow call has still not been answered
      slow:settimeout(0)
      local data, err = slow:receive(1)
      assert.is_nil(data)
      assert.are.equal("timeout", err)
      assert.are.equal("pendingAcceptance", mock:by_id()["e2"].status)
      -- then it completes
      slow:settimeout(30)
      local text = slow:receive("*a")
      slow:close()
      assert.matches("^HTTP/1%.1 200", text)
      assert.matches('"status":"accepted"', text, 1, true)
      assert.are.equal("accepted", mock:by_id()["e2"].status)
    end)

    it("the error log has no 'unknown reason' and no Lua error", function()
      local log = read(errlog) or ""
      assert.is_nil(log:find("unknown reason", 1, true))
      assert.is_nil(log:find("runtime error", 1, true), log)
    end)
  end)
end)
