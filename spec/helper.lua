-- spec/helper.lua: start and drive the mock VPCEP server (spec/mock/server.py).
-- Works on Lua 5.1-5.4 and LuaJIT. Uses luasocket (+ luasec for TLS) and
-- lua-cjson; the vpcep module (and luassert) only inside the functions that
-- need them, never at load time.
-- Also the small tools the specs share: files, shell commands, the running
-- interpreter and its build, error-object checks, clients of the mock.
--
--   local helper = require "spec.helper"
--   local mock
--   setup(function() mock = helper.start() end)
--   teardown(function() mock:stop() end)
--   before_each(function() mock:reset() end)

local socket = require "socket"
local http   = require "socket.http"
local ltn12  = require "ltn12"
local cjson  = require "cjson"
local json   = cjson.new and cjson.new() or cjson

local helper = {}

helper.json = json
helper.python = "/usr/bin/python3"

helper.defaults = {
  token      = "mock-token",
  ak         = "MOCKAK0000000000000X",
  sk         = "mock-secret-key-0123456789",
  security_token = nil,
  project_id = "p-0123456789",
  service_id = "4e9a7c1b-5d2f-4a8e-9b3c-0123456789ab",
}

-- directory of this file, so the server is found whatever the cwd
local function here()
  local src = debug.getinfo(1, "S").source
  if src:sub(1, 1) == "@" then
    local dir = src:sub(2):match("^(.*)/[^/]*$")
    if dir then return dir end
  end
  return "spec"
end
helper.spec_dir = here()
helper.server_script = helper.spec_dir .. "/mock/server.py"
helper.signer_script = helper.spec_dir .. "/mock/sdk_signer.py"

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
helper.shell_quote = shell_quote

-- The whole file, or nil when it cannot be opened.
local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
helper.read_file = read_file

function helper.write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

function helper.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- A fresh temporary name (no file left behind).
local function tmpname()
  local t = os.tmpname()   -- creates the file on most platforms
  os.remove(t)
  return t
end
helper.tmpname = tmpname

-- os.execute returns true/0 on success depending on the Lua version
local function exec_ok(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end
helper.exec_ok = exec_ok

-- A new, empty temporary directory.
function helper.tmpdir()
  local d = tmpname()
  assert(exec_ok("mkdir -p " .. shell_quote(d)), "cannot create " .. d)
  return d
end

-- Runs a shell command with stdout and stderr into one text: ok, text.
function helper.run(cmd)
  local out = os.tmpname()
  local ok = exec_ok("(" .. cmd .. ") >" .. shell_quote(out) .. " 2>&1")
  local text = read_file(out) or ""
  os.remove(out)
  return ok, text
end

-- Can spec/c/ programs be built against this Lua and the pkg-config
-- packages named (a space-separated list)?
function helper.can_build_c(pkgs)
  return helper.have("cc") and helper.have("pkg-config")
      and exec_ok("pkg-config --exists " .. helper.this_lua .. " " .. pkgs)
end

-- Builds the C sources (spec/c/NAME.c first) against this Lua and pkgs,
-- runs the program, and asserts it built, exited 0 and printed no FAIL
-- line. Returns how many "ok" lines it printed, and its output.
function helper.run_c_checks(name, sources, pkgs)
  local dir = helper.tmpdir()
  local exe = dir .. "/" .. name
  local flags = helper.this_lua .. " " .. pkgs
  local ok, out = helper.run("cc -std=c99 -Wall -Wextra -Werror -pedantic -D_POSIX_C_SOURCE=200809L "
    .. "$(pkg-config --cflags " .. flags .. ") -o " .. exe .. " spec/c/" .. name .. ".c " .. sources
    .. " $(pkg-config --libs " .. flags .. ") -lm")
  if ok then ok, out = helper.run(exe) end
  os.execute("rm -rf " .. shell_quote(dir))
  assert(ok, out)
  assert(not out:find("FAIL", 1, true), out)
  local n = 0
  for _ in out:gmatch("ok [^\n]*") do n = n + 1 end
  return n, out
end

-- Is the command on PATH?
function helper.have(cmd)
  return exec_ok("command -v " .. cmd .. " >/dev/null 2>&1")
end

-- A TCP port on 127.0.0.1 that was free a moment ago.
function helper.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

---------------------------------------------------------------------------
-- The Lua running this suite, for child processes that must load the very
-- build under test.

-- Its name as a command and build directory: "lua5.4", "luajit", ...
helper.this_lua = rawget(_G, "jit") and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

-- The interpreter running busted (started as `lua /usr/bin/busted`, so the
-- lowest arg[-n]); else the one _VERSION names.
function helper.interpreter()
  if type(arg) == "table" then
    local lo = 0
    while arg[lo - 1] ~= nil do lo = lo - 1 end
    if lo < 0 then return arg[lo] end
  end
  return helper.this_lua
end

-- The entry of `path` (default package.cpath) the C module `name` is found
-- through, e.g. "build/lua5.4/?.so"; nil when none holds it.
function helper.cmodule_template(name, path)
  for template in (path or package.cpath):gmatch("[^;]+") do
    if helper.exists((template:gsub("%?", (name:gsub("%.", "/"))))) then
      return template
    end
  end
end

-- The build root vpcep is loaded from (mk/test.sh passes --cpath ROOT/<lua>/?.so).
function helper.build_root()
  local template = helper.cmodule_template("vpcep")
  return template and template:match("^(.*)/" .. helper.this_lua:gsub("%.", "%%.") .. "/%?%.so$")
end

---------------------------------------------------------------------------
-- Error objects and clients (these load vpcep and luassert when called).

-- f(...) must raise a vpcep error object (with a code, a message, retryable
-- and a tostring); returns it.
function helper.raised(f, ...)
  local luassert, vpcep = require "luassert", require "vpcep"
  local ok, err = pcall(f, ...)
  luassert.is_false(ok, "expected an error")
  luassert.is_true(vpcep.is_error(err), "expected an error object, got " .. tostring(err))
  luassert.is_string(err.code)
  luassert.is_string(err.message)
  luassert.is_boolean(err.retryable)
  luassert.is_string(tostring(err))
  return err
end

-- f(...) must raise a vpcep.invalid_argument error object, as bad input
-- does before anything is sent: a message, no status, not retryable.
-- Returns it.
function helper.einval(f, ...)
  local luassert = require "luassert"
  local err = helper.raised(f, ...)
  luassert.are.equal("vpcep.invalid_argument", err.code, tostring(err))
  luassert.is_nil(err.status, tostring(err))
  luassert.is_false(err.retryable, tostring(err))
  return err
end

-- A checker for the secrets (a list of strings): no_secret(x) asserts that
-- none of them shows in x, a text or an error object (its tostring and
-- message). Extra arguments are ignored (a gsub's count may follow).
--   local no_secret = helper.no_secret { D.token, D.sk }
function helper.no_secret(secrets)
  return function(x)
    local text = x
    if type(x) ~= "string" then
      text = tostring(x) .. "\n" .. tostring(type(x) == "table" and x.message or "")
    end
    for _, s in ipairs(secrets) do
      require("luassert").is_nil(text:find(s, 1, true), "a secret (" .. s:sub(1, 6) .. "...) shows in: " .. text)
    end
  end
end

-- A new table with the fields of each argument in turn (nil arguments skipped).
function helper.merge(...)
  local o = {}
  for i = 1, select("#", ...) do
    for k, v in pairs(select(i, ...) or {}) do o[k] = v end
  end
  return o
end

-- Options for a client of the mock with token auth; later tables override.
function helper.client_opts(mock, ...)
  return helper.merge({ endpoint = mock.url, project_id = helper.defaults.project_id,
                        token = helper.defaults.token }, ...)
end

-- vpcep.new(helper.client_opts(mock, ...))
-- The hooks of a describe block that has one mock and one client for its
-- tests, the mock reset before each; set(mock, client) receives them.
-- (busted's setup/teardown/before_each live in the spec's environment, so
-- the spec passes the hooks to them.)
function helper.mock_and_client(client_opts, set)
  local mock, c
  return {
    setup = function()
      mock = helper.start()
      c = helper.client(mock, client_opts)
      set(mock, c)
    end,
    teardown = function()
      c:close()
      mock:stop()
    end,
    before_each = function() mock:reset() end,
  }
end

-- The paths of a mock log's requests, each of which must be a GET.
function helper.get_paths(log)
  local t = {}
  for i, e in ipairs(log) do
    require("luassert").are.equal("GET", e.method)
    t[i] = e.path
  end
  return t
end

function helper.client(mock, ...)
  return require("vpcep").new(helper.client_opts(mock, ...))
end

-- Options for a client of the mock that signs with the default AK/SK.
function helper.aksk_opts(mock, ...)
  return helper.merge({ endpoint = mock.url, project_id = helper.defaults.project_id,
                        ak = helper.defaults.ak, sk = helper.defaults.sk }, ...)
end

-- A request header in a mock log entry (headers = {{name, value}, ...}),
-- whatever the case of its name: the first value, and how many there were.
function helper.log_header(entry, name)
  local value, n = nil, 0
  for _, h in ipairs(entry.headers) do
    if h[1]:lower() == name:lower() then
      value = value or h[2]
      n = n + 1
    end
  end
  return value, n
end

-- The first value of that header, alone.
function helper.header(entry, name)
  return (helper.log_header(entry, name))
end

-- n endpoint ids: prefix .. "0000", prefix .. "0001", ... (prefix "ep-").
function helper.ids(n, prefix)
  local t = {}
  for i = 1, n do t[i] = string.format("%s%04d", prefix or "ep-", i - 1) end
  return t
end

-- A self-signed certificate for 127.0.0.1/localhost (needs the openssl CLI).
-- Returns cert_path, key_path.
function helper.make_cert(dir)
  dir = dir or tmpname()
  assert(exec_ok("mkdir -p " .. shell_quote(dir)), "cannot create " .. dir)
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  local cmd = "openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2"
    .. " -keyout " .. shell_quote(key) .. " -out " .. shell_quote(cert)
    .. " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
    .. " >/dev/null 2>&1"
  assert(exec_ok(cmd), "openssl could not make a certificate")
  return cert, key, dir
end

local Mock = {}
Mock.__index = Mock

-- helper.start{ tls = true | {cert=..., key=...}, quiet = true, log = "/path/stderr.log" }
function helper.start(opts)
  opts = opts or {}
  local self = setmetatable({}, Mock)
  local base = tmpname()
  self.port_file = base .. ".port"
  self.tmp_files = { self.port_file, self.port_file .. ".tmp" }
  local args = { helper.python, shell_quote(helper.server_script),
                 "--port", "0", "--port-file", shell_quote(self.port_file) }
  if opts.tls then
    local cert, key
    if type(opts.tls) == "table" and opts.tls.cert then
      cert, key = opts.tls.cert, opts.tls.key
    else
      local dir
      cert, key, dir = helper.make_cert(base .. ".tls")
      self.tmp_dir = dir
    end
    self.cert, self.key, self.cafile = cert, key, cert
    args[#args + 1] = "--tls-cert " .. shell_quote(cert) .. " --tls-key " .. shell_quote(key)
  end
  if opts.quiet ~= false then args[#args + 1] = "--quiet" end
  local errlog = opts.log and shell_quote(opts.log) or "/dev/null"
  local cmd = table.concat(args, " ") .. " </dev/null >/dev/null 2>" .. errlog .. " & echo $!"
  local p = assert(io.popen(cmd, "r"))
  local pid = p:read("*l")
  p:close()
  self.pid = tonumber(pid)
  assert(self.pid, "could not start the mock server")

  local deadline = socket.gettime() + 10
  while true do
    local s = read_file(self.port_file)
    local port = s and tonumber(s:match("(%d+)"))
    if port then self.port = port break end
    if socket.gettime() > deadline then
      self:stop()
      error("mock server did not start within 10 s (" .. cmd .. ")")
    end
    socket.sleep(0.02)
  end
  self.tls = opts.tls and true or false
  self.host = "127.0.0.1"
  self.url = (self.tls and "https" or "http") .. "://127.0.0.1:" .. self.port
  self.defaults = helper.defaults
  return self
end

-- A Mock for a server already running at url (started by another process,
-- say the parent of this one): every call but stop works on it.
function helper.attach(url)
  local self = setmetatable({}, Mock)
  self.url = url
  self.port = tonumber(url:match(":(%d+)$"))
  self.tls = url:match("^https:") ~= nil
  self.host = "127.0.0.1"
  self.defaults = helper.defaults
  return self
end

-- A process that has exited but waits to be reaped (a zombie) is gone too.
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read("*l") or ""
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

function Mock:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    -- wait (briefly) for it to go away so ports and threads are released
    local deadline = socket.gettime() + 3
    while socket.gettime() < deadline and alive(self.pid) do
      socket.sleep(0.02)
    end
    self.pid = nil
  end
  for _, f in ipairs(self.tmp_files or {}) do os.remove(f) end
  if self.tmp_dir then
    os.execute("rm -rf " .. shell_quote(self.tmp_dir))
    self.tmp_dir = nil
  end
end

-- Low-level: one HTTP request to the mock (new connection each time).
-- req = { method=, path=, headers={}, body=string } -> status, body, headers
function Mock:request(req)
  local out = {}
  local body = req.body
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k] = v end
  if body then headers["Content-Length"] = tostring(#body) end
  local params = {
    url = self.url .. req.path,
    method = req.method or (body and "POST" or "GET"),
    headers = headers,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(out),
    redirect = req.redirect,
  }
  local requester = http.request
  if self.tls then
    local https = require "ssl.https"
    params.verify = "none"
    params.protocol = "any"
    params.options = { "all" }
    requester = https.request
  end
  local ok, status, rheaders = requester(params)
  if not ok then error("mock request " .. params.method .. " " .. req.path .. " failed: " .. tostring(status)) end
  return status, table.concat(out), rheaders
end

local function control(self, method, path, doc)
  local body
  if doc ~= nil then
    body = type(doc) == "string" and doc or json.encode(doc)
  end
  local status, text = self:request{
    method = method, path = path, body = body,
    headers = body and { ["Content-Type"] = "application/json" } or nil,
  }
  local ok, decoded = pcall(json.decode, text)
  if status ~= 200 then
    error("mock control " .. method .. " " .. path .. " -> " .. tostring(status) .. ": " .. tostring(text), 3)
  end
  return ok and decoded or text
end
Mock.control = control

function Mock:reset() return control(self, "POST", "/_mock/reset", {}) end

-- Sends a request table of client:prepare / vpcep.sign ({method, url,
-- headers, body}, its url on this mock) as it is: status, body, headers.
function Mock:send(req)
  require("luassert").are.equal(self.url, req.url:sub(1, #self.url), "not a request to this mock")
  return self:request { method = req.method, path = req.url:sub(#self.url + 1), headers = req.headers,
                        body = req.body }
end

-- mock:service{ project_id=?, service_id=?, endpoints={...}, count=?, prefix=? }
-- or a pre-encoded JSON string (to keep 64-bit marker_ids exact).
-- project_id/service_id default to helper.defaults.
function Mock:service(spec)
  if type(spec) == "table" then
    local copy = {}
    for k, v in pairs(spec) do copy[k] = v end
    copy.project_id = copy.project_id or helper.defaults.project_id
    copy.service_id = copy.service_id or helper.defaults.service_id
    if copy.endpoints and #copy.endpoints == 0 then copy.endpoints = nil end
    spec = copy
  end
  return control(self, "POST", "/_mock/services", spec)
end

-- Seeds the default service with n pending endpoints ep-0000, ep-0001, ...
-- (the mock's count/prefix form); returns their ids (helper.ids(n)).
function Mock:seed(n)
  self:service{ count = n, prefix = "ep-" }
  return helper.ids(n)
end

function Mock:auth(t) return control(self, "POST", "/_mock/auth", t) end

-- The mock's IAM and metadata services (spec/mock/README.md): settings,
-- the clock, and the requests each endpoint answered.
function Mock:iam(t) return control(self, "POST", "/_mock/iam", t) end
function Mock:revoke() return control(self, "POST", "/_mock/iam/revoke", {}) end
function Mock:advance_clock(seconds) return control(self, "POST", "/_mock/clock", { advance = seconds }) end
function Mock:counts() return control(self, "GET", "/_mock/counts") end
function Mock:clear_counts() return control(self, "POST", "/_mock/counts/clear", {}) end
function Mock:config(t) return control(self, "POST", "/_mock/config", t) end
function Mock:fault(rule) return control(self, "POST", "/_mock/faults", { rules = { rule } }) end
function Mock:faults(rules)
  if rules.rules then return control(self, "POST", "/_mock/faults", rules) end
  return control(self, "POST", "/_mock/faults", { rules = rules })
end
function Mock:clear_faults() return control(self, "POST", "/_mock/faults/clear", {}) end

-- How many unsolicited answers the fault rules' `extra` have written so far.
function Mock:extra_sent()
  local n = 0
  for _, r in ipairs(control(self, "GET", "/_mock/faults").rules) do n = n + r.extra_sent end
  return n
end

-- Waits until count() reaches n; raises after 10 s, naming `what`.
local function await(count, n, what)
  local deadline = socket.gettime() + 10
  while count() < n do
    if socket.gettime() > deadline then error("the mock had not " .. what .. " after 10 s", 3) end
    socket.sleep(0.01)
  end
end

-- Waits until the rules' `extra` have written n unsolicited answers (so they
-- sit unread on the client's connections).
function Mock:await_extra(n)
  await(function() return self:extra_sent() end, n, "written " .. n .. " extra answers")
end

-- Waits until the log holds n requests (the mock may read a request some
-- time after the client took an answer for it, when a fault holds it up).
function Mock:await_log(n)
  await(function() return #self:log() end, n, "logged " .. n .. " requests")
end
function Mock:log() return control(self, "GET", "/_mock/log").requests end
function Mock:clear_log() return control(self, "POST", "/_mock/log/clear", {}) end
function Mock:stats() return control(self, "GET", "/_mock/stats") end
-- Starts the mock's max_in_flight count again.
function Mock:clear_stats() return control(self, "POST", "/_mock/stats/clear", {}) end

local function urlenc(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
helper.urlencode = urlenc

function Mock:state(project_id, service_id)
  project_id = project_id or helper.defaults.project_id
  service_id = service_id or helper.defaults.service_id
  return control(self, "GET", "/_mock/state?project_id=" .. urlenc(project_id)
    .. "&service_id=" .. urlenc(service_id)).connections
end

-- The state as a map id -> connection.
function Mock:by_id(project_id, service_id)
  local m = {}
  for _, c in ipairs(self:state(project_id, service_id)) do m[c.id] = c end
  return m
end

-- A persistent (keep-alive) plain-HTTP connection to the mock:
--   local c = mock:connect(); local st, body, hdrs = c:request("GET", path, {h=v}, body); c:close()
-- hdrs keys are lowercased.
local Conn = {}
Conn.__index = Conn

function Mock:connect()
  assert(not self.tls, "mock:connect() speaks plain HTTP only")
  local s = assert(socket.tcp())
  s:settimeout(10)
  assert(s:connect("127.0.0.1", self.port))
  return setmetatable({ sock = s, port = self.port }, Conn)
end

function Conn:request(method, path, headers, body)
  local lines = { method .. " " .. path .. " HTTP/1.1", "Host: 127.0.0.1:" .. self.port }
  for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  local ok, err = self.sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or ""))
  if not ok then return nil, err end
  local status_line, e = self.sock:receive("*l")
  if not status_line then return nil, e end
  local status = tonumber(status_line:match("^HTTP/%d%.%d (%d+)"))
  local h = {}
  while true do
    local line, e2 = self.sock:receive("*l")
    if not line then return nil, e2 end
    if line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then h[k:lower()] = v end
  end
  local n = tonumber(h["content-length"] or "0")
  local data = ""
  if n > 0 then
    local d, e3, partial = self.sock:receive(n)
    if not d then return nil, e3, partial end
    data = d
  end
  return status, data, h
end

function Conn:close() self.sock:close() end

-- Run the Python signer's self-test (the five published vectors); true on success.
function helper.signer_self_test()
  return exec_ok(helper.python .. " " .. shell_quote(helper.signer_script) .. " -q >/dev/null 2>&1")
end

-- ---- reconcile on the non-blocking hosts (openresty_spec, uv_spec) ---------

-- Pending connections of dA (a1..a3) and dB (b1, b2), one accepted of dA.
function helper.seed_two_domains(mock)
  mock:service { endpoints = {
    { id = "a1", domain_id = "dA" }, { id = "a2", domain_id = "dA" }, { id = "a3", domain_id = "dA" },
    { id = "b1", domain_id = "dB" }, { id = "b2", domain_id = "dB" },
    { id = "old", domain_id = "dA", status = "accepted" } } }
end

-- What the mock was asked to write: { [id] = "receive" | "reject" |
-- "describe", joined by commas }, and how many writes.
function helper.writes(mock)
  local by_id, n = {}, 0
  for _, e in ipairs(mock:log()) do
    if e.method ~= "GET" then
      local doc = json.decode(e.body)
      local id = e.method == "POST" and doc.endpoints[1] or doc.connections[1].id
      by_id[id] = (by_id[id] and by_id[id] .. "," or "") .. (doc.action or "describe")
      n = n + 1
    end
  end
  return by_id, n
end

-- A report's outcome by connection id.
function helper.outcomes(report)
  local t = {}
  for _, e in ipairs(report.plan) do t[e.id] = e.outcome end
  return t
end

return helper
