-- spec/neovim_spec.lua: vpcep inside a real headless Neovim (Debian's 0.7,
-- LuaJIT), against the mock server.
--
--  * `nvim --headless --clean -u NONE` runs a Lua script that puts the LuaJIT
--    build on package.cpath, requires vpcep, accepts a connection and writes
--    what it saw to a file that this spec reads;
--  * the same with cjson hidden (package.path/cpath holding only vpcep.so):
--    the module falls back to vim.json, and marker_id stays exact;
--  * examples/neovim: :VpcepAccept returns at once while the call runs in a
--    job; a timer keeps ticking while the mock holds the call; the result
--    arrives afterwards.
local helper = require "spec.helper"

local q = helper.shell_quote
local D = helper.defaults
local NVIM = "nvim"

local exists, read, write = helper.exists, helper.read_file, helper.write_file
local run, build_root = helper.run, helper.build_root

-- key=value lines -> table
local function parse_result(text)
  local t = {}
  for k, v in (text or ""):gmatch("([%w_]+)=([^\n]*)") do t[k] = v end
  return t
end

local available = helper.exec_ok("command -v " .. NVIM .. " >/dev/null 2>&1")
local describe_nvim = available and describe
  or function(name) pending(name .. ": nvim is not installed") end

describe_nvim("neovim (headless)", function()
  local mock, dir, so_dir

  -- Runs a Lua script in a fresh headless Neovim; the script writes RESULT
  -- (key=value lines) and quits; returns the parsed result and nvim's output.
  local function nvim(script, env)
    local sfile = dir .. "/script.lua"
    local rfile = dir .. "/result.txt"
    os.remove(rfile)
    local prologue = "local RESULT = " .. string.format("%q", rfile) .. "\n"
      .. "local function result(t)\n"
      .. "  local f = assert(io.open(RESULT, 'w'))\n"
      .. "  for k, v in pairs(t) do f:write(k, '=', tostring(v), '\\n') end\n"
      .. "  f:close()\n"
      .. "end\n"
    write(sfile, prologue .. script .. "\nvim.cmd('qa!')\n")
    local ok, out = run((env or "") .. " " .. NVIM .. " --headless --clean -u NONE -c " .. q("luafile " .. sfile)
      .. " -c cq </dev/null")
    return parse_result(read(rfile)), out, ok
  end

  setup(function()
    local root = assert(build_root(), "cannot tell the build root from package.cpath")
    local ok, text = run("make -s LUA=luajit O=" .. q(root) .. " lib")
    assert(ok, "make LUA=luajit failed:\n" .. text)
    so_dir = root .. "/luajit"
    if so_dir:sub(1, 1) ~= "/" then so_dir = os.getenv("PWD") .. "/" .. so_dir end
    assert(exists(so_dir .. "/vpcep.so"))
    dir = os.tmpname()
    os.remove(dir)
    assert(helper.exec_ok("mkdir -p " .. q(dir)))
    mock = helper.start()
  end)

  teardown(function()
    if mock then mock:stop() end
    if dir then os.execute("rm -rf " .. q(dir)) end
  end)

  before_each(function()
    mock:reset()
    mock:service(string.format('{"project_id":"%s","service_id":"%s","endpoints":['
      .. '{"id":"e1","marker_id":422321321312321321},{"id":"e2"},{"id":"slow"}]}', D.project_id, D.service_id))
  end)

  local function call_script(accept_id)
    return string.format([[
local vpcep = require "vpcep"
local c = vpcep.new { endpoint = %q, project_id = %q, token = %q }
local conns = c:accept(%q, %q)
local ok, err = pcall(c.accept, c, %q, "nope")
c:close()
result {
  version = vpcep._VERSION,
  lua = _VERSION,
  jit = jit and jit.version or "none",
  cjson_loaded = package.loaded.cjson ~= nil,
  cjson_requirable = (pcall(require, "cjson")),
  vim_json = vim.json ~= nil,
  id = conns[1].id,
  status = conns[1].status,
  marker_type = type(conns[1].marker_id),
  marker = tostring(conns[1].marker_id),
  err_ok = ok,
  err_code = type(err) == "table" and err.code or tostring(err),
  err_status = type(err) == "table" and err.status or "",
}
]], mock.url, D.project_id, D.token, D.service_id, accept_id, D.service_id)
  end

  it("requires the module and accepts against the mock", function()
    local r, out = nvim("package.cpath = " .. string.format("%q", so_dir .. "/?.so;") .. " .. package.cpath\n"
      .. call_script("e1"))
    assert.are.equal("e1", r.id, out)
    assert.are.equal("accepted", r.status)
    assert.matches("^vpcep %d+%.%d+%.%d+$", r.version)
    assert.are.equal("Lua 5.1", r.lua)
    assert.matches("^LuaJIT", r.jit)
    -- marker_id on LuaJIT: the decimal string above 2^53
    assert.are.equal("string", r.marker_type)
    assert.are.equal("422321321312321321", r.marker)
    assert.are.equal("false", r.err_ok)
    assert.are.equal("EndPoint.0005", r.err_code)
    assert.are.equal("404", r.err_status)
    -- here lua-cjson was there and was used
    assert.are.equal("true", r.cjson_loaded)
    assert.are.equal("accepted", mock:by_id()["e1"].status)
  end)

  it("uses vim.json when require 'cjson' fails", function()
    local r, out = nvim("package.cpath = " .. string.format("%q", so_dir .. "/?.so") .. "\n"
      .. "package.path = ''\npackage.loaded.cjson = nil\npackage.preload.cjson = nil\n"
      .. call_script("e1"))
    assert.are.equal("e1", r.id, out)
    assert.are.equal("accepted", r.status)
    assert.are.equal("false", r.cjson_requirable)
    assert.are.equal("false", r.cjson_loaded)
    assert.are.equal("true", r.vim_json)
    assert.are.equal("422321321312321321", r.marker)
    assert.are.equal("EndPoint.0005", r.err_code)
    -- the body vim.json encoded reached the service intact
    local log = mock:log()
    assert.are.same({ action = "receive", endpoints = { "e1" } }, helper.json.decode(log[1].body))
  end)

  it("without cjson and outside Neovim's vim.json, loading fails with a clear message", function()
    local r, out = nvim("package.cpath = " .. string.format("%q", so_dir .. "/?.so") .. "\n"
      .. "package.path = ''\npackage.loaded.cjson = nil\nlocal saved = vim.json\nvim.json = nil\n"
      .. "local ok, err = pcall(require, 'vpcep')\nvim.json = saved\n"
      .. "result { ok = ok, err = tostring(err):gsub('\\n', ' ') }\n")
    assert.are.equal("false", r.ok, out)
    assert.matches("cjson", r.err, 1, true)
    assert.matches("vim.json", r.err, 1, true)
  end)

  describe("examples/neovim", function()
    local function plugin_script(body)
      return "vim.opt.runtimepath:prepend(" .. string.format("%q", os.getenv("PWD") .. "/examples/neovim") .. ")\n"
        .. "vim.cmd('runtime plugin/vpcep.lua')\n"
        .. "vim.g.vpcep_cpath = " .. string.format("%q", so_dir .. "/?.so") .. "\n"
        .. "vim.g.vpcep_endpoint = " .. string.format("%q", mock.url) .. "\n"
        .. "vim.g.vpcep_project_id = " .. string.format("%q", D.project_id) .. "\n"
        .. body
    end
    local ENV = "VPCEP_TOKEN=" .. q(D.token)

    it(":VpcepAccept returns at once; the loop keeps running until the job's answer comes", function()
      mock:fault { match = { endpoint = "slow" }, delay_ms = 1500 }
      local r, out = nvim(plugin_script(string.format([[
local ticks = 0
local timer = vim.loop.new_timer()
timer:start(10, 10, function() ticks = ticks + 1 end)
local done_events = 0
vim.api.nvim_create_autocmd("User", { pattern = "VpcepDone", callback = function() done_events = done_events + 1 end })
vim.cmd("VpcepAccept %s slow")
local right_after = vim.g.vpcep_last      -- nil: the call has not finished
local ticks_at_return = ticks
for _ = 1, 20000 do
  if vim.g.vpcep_last ~= nil then break end
  vim.wait(10)
end
timer:stop()
timer:close()
local last = vim.g.vpcep_last or {}
local conn = last.connection or {}
result {
  right_after = tostring(right_after),
  ticks_at_return = ticks_at_return,
  ticks = ticks,
  done_events = done_events,
  id = conn.id,
  status = conn.status,
  error = last.error and last.error.code or "",
}
]], D.service_id)), ENV)
      assert.are.equal("nil", r.right_after, out)
      assert.are.equal("0", r.ticks_at_return)
      assert.are.equal("", r.error, out)
      assert.are.equal("slow", r.id)
      assert.are.equal("accepted", r.status)
      assert.are.equal("1", r.done_events)
      -- the timer ran many times while the service held the call
      assert.is_true(tonumber(r.ticks) >= 5, "ticks: " .. tostring(r.ticks))
      assert.are.equal("accepted", mock:by_id()["slow"].status)
    end)

    it(":VpcepReject reports the service's error through vim.g.vpcep_last", function()
      local r, out = nvim(plugin_script(string.format([[
vim.cmd("VpcepReject %s nope")
for _ = 1, 20000 do
  if vim.g.vpcep_last ~= nil then break end
  vim.wait(10)
end
local last = vim.g.vpcep_last or {}
vim.cmd("VpcepReject %s e2")
local cleared = vim.g.vpcep_last
for _ = 1, 20000 do
  if vim.g.vpcep_last ~= nil then break end
  vim.wait(10)
end
local second = vim.g.vpcep_last or {}
result {
  code = last.error and last.error.code or "",
  status = last.error and last.error.status or "",
  message = last.error and last.error.message or "",
  cleared = tostring(cleared),
  second = second.connection and second.connection.status or "",
}
]], D.service_id, D.service_id)), ENV)
      assert.are.equal("EndPoint.0005", r.code, out)
      assert.are.equal("404", r.status)
      assert.is_nil(r.message:find(D.token, 1, true))
      assert.are.equal("nil", r.cleared)
      assert.are.equal("rejected", r.second)
      assert.are.equal("rejected", mock:by_id()["e2"].status)
    end)

    it("a wrong token comes back as APIGW.0301, never echoing the token", function()
      local r, out = nvim(plugin_script(string.format([[
vim.cmd("VpcepAccept %s e2")
for _ = 1, 20000 do
  if vim.g.vpcep_last ~= nil then break end
  vim.wait(10)
end
local last = vim.g.vpcep_last or {}
result { code = last.error and last.error.code or "", message = last.error and last.error.message or "" }
]], D.service_id)), "VPCEP_TOKEN=not-the-mock-token-xyz")
      assert.are.equal("APIGW.0301", r.code, out)
      assert.is_nil(r.message:find("not-the-mock-token-xyz", 1, true))
      assert.are.equal("pendingAcceptance", mock:by_id()["e2"].status)
    end)
  end)
end)
