-- spec/neovim_spec.lua: vpcep inside a real headless Neovim (Debian's 0.7,
-- LuaJIT), against the mock server.
--
--  * `nvim --headless --clean -u NONE` runs a Lua script that puts the LuaJIT
--    build on package.cpath, requires vpcep, accepts a connection and writes
--    what it saw to a file that this spec reads;
--  * the same with cjson hidden (package.path/cpath holding only vpcep.so):
--    the module falls back to vim.json, and marker_id stays exact;
--  * vpcep.uv on the editor's loop, with vim.json too;
--  * examples/neovim, the plugin: :VpcepAccept of 40 ids returns at once and
--    a 20 ms timer keeps firing while the mock takes 200 ms per answer; the
--    :VpcepPending buffer and its keys (a, r on the cursor's or the selected
--    lines, R); retries, a timeout and an auth failure as error objects in
--    the callbacks; one connection across 20 calls; a callback's error
--    reported once; close() cancelling; :checkhealth vpcep.
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

  it("vpcep.uv decodes with vim.json on the editor's loop when require 'cjson' fails", function()
    local r, out = nvim("package.cpath = " .. string.format("%q", so_dir .. "/?.so") .. "\n"
      .. "package.path = " .. string.format("%q", os.getenv("PWD") .. "/lua/?.lua") .. "\n"
      .. "package.loaded.cjson = nil\npackage.preload.cjson = nil\n"
      .. string.format([[
local vuv = require "vpcep.uv"
local c = vuv.new { endpoint = %q, project_id = %q, token = %q }
local got
c:accept(%q, "e1", function(conns, err) got = { conns = conns, err = err } end)
vim.wait(60000, function() return got ~= nil end, 10)
c:close()
result {
  cjson_requirable = (pcall(require, "cjson")),
  status = got.conns and got.conns[1].status or tostring(got.err),
  marker = got.conns and tostring(got.conns[1].marker_id) or "",
}
]], mock.url, D.project_id, D.token, D.service_id))
    assert.are.equal("false", r.cjson_requirable, out)
    assert.are.equal("accepted", r.status)
    assert.are.equal("422321321312321321", r.marker)
  end)

  describe("examples/neovim", function()
    local PLUGIN = os.getenv("PWD") .. "/examples/neovim"
    -- The plugin on the runtimepath, the module's build on package.cpath;
    -- vpcep.uv is found in the checkout the plugin sits in.
    local function plugin_script(body)
      return "vim.opt.runtimepath:prepend(" .. string.format("%q", PLUGIN) .. ")\n"
        .. "vim.cmd('runtime plugin/vpcep.lua')\n"
        .. "vim.g.vpcep_cpath = " .. string.format("%q", so_dir .. "/?.so") .. "\n"
        .. "vim.g.vpcep_endpoint = " .. string.format("%q", mock.url) .. "\n"
        .. "vim.g.vpcep_project_id = " .. string.format("%q", D.project_id) .. "\n"
        .. "local SID = " .. string.format("%q", D.service_id) .. "\n"
        .. "local function wait_for(cond) return vim.wait(60000, cond, 10) end\n"
        .. "local function feed(keys)\n"
        .. "  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'mx', false)\n"
        .. "end\n"
        .. body
    end
    local ENV = "VPCEP_TOKEN=" .. q(D.token)

    it(":VpcepAccept of 40 ids returns at once and the editor's 20 ms timer keeps firing while the "
      .. "service takes 200 ms per answer", function()
      local ids = mock:seed(40)
      mock:config { delay_ms = 200 }
      local r, out = nvim(plugin_script(string.format([[
local ticks = 0
local timer = vim.loop.new_timer()
timer:start(20, 20, function() ticks = ticks + 1 end)
local done, ticks_at_done = 0, nil
vim.api.nvim_create_autocmd("User", { pattern = "VpcepDone", callback = function()
  done = done + 1
  ticks_at_done = ticks
end })
vim.cmd("VpcepAccept %s %s")
local ticks_at_return, right_after = ticks, vim.g.vpcep_last
wait_for(function() return done > 0 end)
vim.wait(100)
timer:stop()
timer:close()
local accepted = 0
for _, x in ipairs(vim.g.vpcep_last.results) do
  if x.status == "accepted" then accepted = accepted + 1 end
end
result {
  right_after = tostring(right_after),
  ticks_at_return = ticks_at_return,
  ticks_during = ticks_at_done - ticks_at_return,
  done = done,
  results = #vim.g.vpcep_last.results,
  accepted = accepted,
  first = vim.g.vpcep_last.results[1].id,
  on_editor_loop = require("vpcep_nvim")._client._loop == vim.loop,
}
]], D.service_id, table.concat(ids, " "))), ENV)
      assert.are.equal("nil", r.right_after, out)
      assert.are.equal("0", r.ticks_at_return)
      assert.are.equal("1", r.done)
      assert.are.equal("40", r.results)
      assert.are.equal("40", r.accepted)
      assert.are.equal("ep-0000", r.first)
      assert.are.equal("true", r.on_editor_loop)
      -- 40 answers at 200 ms each, 8 at a time: the timer ran all along
      assert.is_true(tonumber(r.ticks_during) >= 10, "ticks during the call: " .. tostring(r.ticks_during))
      local log = mock:log()
      assert.are.equal(40, #log)
      for _, c in pairs(mock:by_id()) do assert.are.equal("accepted", c.status) end
    end)

    it(":VpcepPending lists the pending connections; a on two selected lines accepts them, r rejects, "
      .. "an error shows its code, R lists again", function()
      mock:service{ endpoints = {
        { id = "e1", domain_id = "dA", description = "first one" }, { id = "e2", domain_id = "dB" }, { id = "e3" },
        { id = "e4", status = "accepted" }, { id = "e5" } } }
      mock:fault { match = { endpoint = "e1" }, times = 0,
                   answer = { status = 404, json = { error_code = "EndPoint.0005", error_msg = "gone" } } }
      local r, out = nvim(plugin_script([[
vim.cmd("VpcepPending " .. SID)
local buf = vim.api.nvim_get_current_buf()
local function lines() return vim.api.nvim_buf_get_lines(buf, 0, -1, false) end
local function line_of(id)
  for n, l in ipairs(lines()) do if l:find("^" .. id .. " ") then return n end end
end
local at_once = lines()[#lines()]
wait_for(function() return line_of("e5") ~= nil end)
local listed = table.concat(lines(), "|")
vim.api.nvim_win_set_cursor(0, { line_of("e2"), 0 })
feed("Vja")
local while_out = lines()[line_of("e2")]
wait_for(function() return lines()[line_of("e2")]:find("accepted$") and lines()[line_of("e3")]:find("accepted$") end)
local after_a = table.concat(lines(), "|")
vim.api.nvim_win_set_cursor(0, { line_of("e5"), 0 })
feed("r")
wait_for(function() return lines()[line_of("e5")]:find("rejected$") end)
vim.api.nvim_win_set_cursor(0, { line_of("e1"), 0 })
feed("a")
wait_for(function() return lines()[line_of("e1")]:find("error") end)
local after_error = table.concat(lines(), "|")
feed("R")
wait_for(function() return line_of("e1") ~= nil and not lines()[#lines()]:find("listing") end)
result {
  name = vim.api.nvim_buf_get_name(buf),
  buftype = vim.api.nvim_buf_get_option(buf, "buftype"),
  modifiable = vim.api.nvim_buf_get_option(buf, "modifiable"),
  at_once = at_once,
  listed = listed,
  while_out = while_out,
  after_a = after_a,
  after_error = after_error,
  refreshed = table.concat(lines(), "|"),
  mode = vim.api.nvim_get_mode().mode,
}
]]), ENV)
      assert.are.equal("(listing...)", r.at_once, out)
      assert.are.equal("nofile", r.buftype)
      assert.are.equal("false", r.modifiable)
      assert.matches("vpcep://pending/" .. D.service_id, r.name, 1, true)
      local rows = {}
      for l in r.listed:gmatch("[^|]+") do rows[#rows + 1] = l end
      assert.are.equal(2 + 4, #rows, r.listed)
      assert.are.equal(1, rows[1]:find("# pending connections of service " .. D.service_id, 1, true))
      assert.matches("^ID +DOMAIN +CREATED_AT +DESCRIPTION +STATUS$", rows[2])
      assert.matches("^e1 +dA +2024%-01%-01T00:00:00Z +first one +pendingAcceptance$", rows[3])
      assert.matches("^e2 +dB +2024%-01%-01T00:00:01Z +pendingAcceptance$", rows[4])
      assert.matches("^e3 ", rows[5])
      assert.matches("^e5 ", rows[6]) -- e4 is not pending
      assert.matches("accepting%.%.%.$", r.while_out)
      -- the two selected lines, and no other
      assert.matches("|e2 [^|]*accepted|e3 [^|]*accepted|e5 [^|]*pendingAcceptance$", r.after_a)
      assert.matches("^[^|]*|[^|]*|e1 [^|]*pendingAcceptance|", r.after_a)
      assert.matches("|e1 [^|]*error EndPoint.0005|", r.after_error)
      assert.matches("|e5 [^|]*rejected$", r.after_error)
      -- listed again: only e1 is still pending
      local refreshed = {}
      for l in r.refreshed:gmatch("[^|]+") do refreshed[#refreshed + 1] = l end
      assert.are.equal(3, #refreshed, r.refreshed)
      assert.matches("^e1 .*pendingAcceptance$", refreshed[3])
      assert.are.equal("n", r.mode)
      local state = mock:by_id()
      assert.are.same({ "pendingAcceptance", "accepted", "accepted", "accepted", "rejected" },
        { state.e1.status, state.e2.status, state.e3.status, state.e4.status, state.e5.status })
    end)

    it("vpcep.uv in the editor: retries over 503s, a timeout and an auth failure reach the callbacks "
      .. "as error objects, where the editor may be changed", function()
      -- e1: two 503s, then accepted; e3: 503s until the retries are spent
      mock:service{ endpoints = { { id = "e1" }, { id = "e2" }, { id = "e3" }, { id = "slow" } } }
      mock:fault { match = { endpoint = "e1" }, times = 2, answer = { status = 503, body = "" } }
      mock:fault { match = { endpoint = "e3" }, times = 0, answer = { status = 503, body = "" } }
      mock:fault { match = { endpoint = "slow" }, times = 0, hang_ms = 3000 }
      local r, out = nvim(plugin_script(string.format([[
local vuv = assert(require("vpcep_nvim").load())
local function new(o)
  local opts = { endpoint = %q, project_id = %q, token = %q }
  for k, v in pairs(o or {}) do opts[k] = v end
  return vuv.new(opts)
end
local got = {}
local function keep(name)
  return function(conns, err)
    got[name] = { conns = conns, err = err, fast = vim.in_fast_event() }
    -- touching the editor works here
    vim.api.nvim_buf_set_lines(0, 0, 0, false, { name })
  end
end
local c, quick = new(), new { timeout = 1, retries = 0 }
local bad = new { token = "not-the-mock-token-xyz" }
c:accept(SID, "e1", keep("retried"))
new({ retries = 1 }):accept(SID, "e3", keep("gave_up"))
quick:accept(SID, "slow", keep("timeout"))
bad:accept(SID, "e2", keep("auth"))
wait_for(function() return got.retried and got.gave_up and got.timeout and got.auth end)
local e_t, e_a, e_g = got.timeout.err or {}, got.auth.err or {}, got.gave_up.err or {}
result {
  retried = got.retried.conns and got.retried.conns[1].status or tostring(got.retried.err),
  fast = got.retried.fast,
  timeout_code = e_t.code, timeout_is_error = vuv.is_error(e_t), timeout_endpoint = e_t.endpoint,
  timeout_results = tostring(got.timeout.conns),
  auth_code = e_a.code, auth_status = e_a.status, auth_is_error = vuv.is_error(e_a),
  auth_text = tostring(e_a),
  lines = vim.api.nvim_buf_line_count(0),
  gave_up_code = e_g.code, gave_up_tries = e_g.tries, gave_up_retryable = e_g.retryable,
  gave_up_is_error = vuv.is_error(e_g),
}
c:close(); quick:close(); bad:close()
]], mock.url, D.project_id, D.token)), ENV)
      assert.are.equal("accepted", r.retried, out)
      assert.are.equal("false", r.fast)
      assert.are.equal("vpcep.timeout", r.timeout_code)
      assert.are.equal("true", r.timeout_is_error)
      assert.are.equal("slow", r.timeout_endpoint)
      assert.are.equal("nil", r.timeout_results)
      assert.are.equal("APIGW.0301", r.auth_code)
      assert.are.equal("401", r.auth_status)
      assert.are.equal("true", r.auth_is_error)
      assert.is_nil(r.auth_text:find("not-the-mock-token-xyz", 1, true))
      assert.are.equal("5", r.lines) -- the four callbacks' lines and the empty one
      assert.are.equal("HTTP.503", r.gave_up_code)
      assert.are.equal("2", r.gave_up_tries)
      assert.are.equal("true", r.gave_up_retryable)
      assert.are.equal("true", r.gave_up_is_error)
      local tries = 0
      for _, e in ipairs(mock:log()) do if (e.body or ""):find('"e1"', 1, true) then tries = tries + 1 end end
      assert.are.equal(3, tries)
      assert.are.equal("accepted", mock:by_id().e1.status)
    end)

    it("one client keeps its connection across 20 calls", function()
      local ids = mock:seed(10)
      local before = mock:stats()
      local r, out = nvim(plugin_script(string.format([[
local c = assert(require("vpcep_nvim").client())
local ids = { %s }
local n, errors = 0, 0
local function step()
  n = n + 1
  if n > 20 then return end
  local cb = function(res, err)
    if not res then errors = errors + 1 end
    step()
  end
  if n %% 2 == 1 then c:accept(SID, ids[(n + 1) / 2], cb) else c:connections(SID, cb) end
end
step()
wait_for(function() return n > 20 end)
result { n = n, errors = errors }
]], "'" .. table.concat(ids, "', '") .. "'")), ENV)
      local after = mock:stats()
      assert.are.equal("21", r.n, out)
      assert.are.equal("0", r.errors)
      assert.are.equal(20, after.requests - before.requests)
      -- the client's one connection, and the one that read `after`
      assert.are.equal(2, after.connections_opened - before.connections_opened)
    end)

    it("an error in a callback is reported once; close() cancels the calls in flight", function()
      mock:seed(4)
      local r, out = nvim(plugin_script([[
local notes = {}
vim.notify = function(msg) notes[#notes + 1] = msg end
local c = assert(require("vpcep_nvim").client())
local ran, second, cancelled = 0, nil, {}
c:accept(SID, "ep-0000", function() ran = ran + 1; error("boom in a callback") end)
wait_for(function() return ran == 1 end)
c:accept(SID, "ep-0001", function(conns) second = conns and conns[1].status end)
wait_for(function() return second ~= nil end)
vim.wait(50)
local booms = 0
for _, m in ipairs(notes) do if m:find("boom in a callback", 1, true) then booms = booms + 1 end end
c:accept(SID, { "ep-0002", "ep-0003" }, function(conns, err)
  cancelled[#cancelled + 1] = conns == nil and err.code or "no error"
end)
c:connections(SID, function(list, err) cancelled[#cancelled + 1] = list == nil and err.code or "no error" end)
require("vpcep_nvim").reset()
wait_for(function() return #cancelled == 2 end)
vim.wait(50)
result { ran = ran, booms = booms, second = second, cancelled = table.concat(cancelled, ",") }
]]), ENV)
      assert.are.equal("1", r.ran, out)
      assert.are.equal("1", r.booms)
      assert.are.equal("accepted", r.second)
      assert.are.equal("vpcep.cancelled,vpcep.cancelled", r.cancelled)
    end)

    it(":VpcepReject reports the service's error in g:vpcep_last, then rejects; a wrong token is "
      .. "APIGW.0301 and never echoed", function()
      local r, out = nvim(plugin_script([[
local done = 0
vim.api.nvim_create_autocmd("User", { pattern = "VpcepDone", callback = function() done = done + 1 end })
vim.cmd("VpcepReject " .. SID .. " nope")
wait_for(function() return done == 1 end)
local first = vim.g.vpcep_last.results[1]
vim.cmd("VpcepReject " .. SID .. " e2 e1")
wait_for(function() return done == 2 end)
local second = vim.g.vpcep_last.results
result {
  id = first.id, code = first.error.code, status = first.error.status,
  second = second[1].id .. "=" .. second[1].status .. "," .. second[2].id .. "=" .. second[2].status,
}
]]), ENV)
      assert.are.equal("nope", r.id, out)
      assert.are.equal("EndPoint.0005", r.code)
      assert.are.equal("404", r.status)
      assert.are.equal("e2=rejected,e1=rejected", r.second)
      r, out = nvim(plugin_script([[
vim.cmd("VpcepAccept " .. SID .. " slow")
wait_for(function() return vim.g.vpcep_last ~= nil end)
local e = vim.g.vpcep_last.results[1].error
result { code = e.code, message = e.message }
]]), "VPCEP_TOKEN=not-the-mock-token-xyz")
      assert.are.equal("APIGW.0301", r.code, out)
      assert.is_nil(r.message:find("not-the-mock-token-xyz", 1, true))
      assert.are.equal("pendingAcceptance", mock:by_id().slow.status)
    end)

    describe(":checkhealth vpcep", function()
      local function health(env, pre)
        return nvim(plugin_script((pre or "") .. [[
vim.cmd("checkhealth vpcep")
result { text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "|") }
]]), env)
      end

      it("says OK for the module, its version, libcurl, the JSON library and the token's source, "
        .. "never the token", function()
        local secret = "health-secret-token-0123456789"
        local r, out = health("VPCEP_TOKEN=" .. secret)
        local text = r.text or ""
        assert.matches("OK: module loads: vpcep %d+%.%d+%.%d+", text, 1, false)
        assert.matches("OK: vpcep.uv loads", text, 1, true)
        assert.matches("OK: libcurl %d+%.%d+", text)
        assert.matches("OK: JSON library: lua-cjson", text, 1, true)
        assert.matches("OK: credentials: IAM token from $VPCEP_TOKEN", text, 1, true)
        assert.matches("OK: settings accepted: " .. mock.url, text, 1, true)
        assert.is_nil(text:find("ERROR", 1, true), text .. out)
        assert.is_nil(text:find(secret, 1, true))
        assert.are.same({}, mock:log()) -- nothing was sent
      end)

      it("names AK/SK from the environment without showing either, and vim.json without cjson", function()
        local ak, sk = "HEALTHAK0123456789XY", "health-sk-secret-0123456789"
        local r = health("HUAWEICLOUD_SDK_AK=" .. ak .. " HUAWEICLOUD_SDK_SK=" .. sk,
          "package.path = ''\npackage.loaded.cjson = nil\npackage.preload.cjson = nil\n"
          .. "package.cpath = " .. string.format("%q", so_dir .. "/?.so") .. "\n")
        local text = r.text or ""
        assert.matches("OK: credentials: AK/SK from $HUAWEICLOUD_SDK_AK and $HUAWEICLOUD_SDK_SK", text, 1, true)
        assert.matches("OK: JSON library: vim.json", text, 1, true)
        assert.is_nil(text:find(sk, 1, true))
        assert.is_nil(text:find(ak, 1, true))
      end)

      it("names every other source (profile, iam, metadata, idp) without a secret, and sends nothing", function()
        local sk, password = "health-profile-sk-Qw73", "health-iam-password-Lp29"
        local file = dir .. "/credentials"
        write(file, "[ops]\nak = HEALTHPROFILEAK001\nsk = " .. sk .. "\n")
        local function says(env, pre, want)
          local text = health(env, pre).text or ""
          assert.matches("OK: credentials: " .. want, text, 1, true)
          for _, secret in ipairs { sk, password, "HEALTHPROFILEAK001" } do
            assert.is_nil(text:find(secret, 1, true), secret .. " shown in: " .. text)
          end
          assert.are.same({}, mock:log())
          return text
        end
        says("HUAWEICLOUD_SDK_CREDENTIALS_FILE=" .. q(file), "vim.g.vpcep_options = { profile = 'ops' }\n",
             "profile [ops] of " .. file .. ": AK/SK")
        says("VPCEP_TOKEN=not-taken", "vim.g.vpcep_options = { iam = { user = 'alice', password = "
             .. string.format("%q", password) .. ", domain = 'acme' } }\n",
             "IAM password token of user alice (domain acme), fetched at the first call")
        says("VPCEP_METADATA=1", "vim.g.vpcep_options = { metadata_endpoint = " .. string.format("%q", mock.url)
             .. " }\n", "ECS agency keys from the metadata service " .. mock.url
             .. " ($VPCEP_METADATA=1), fetched at the first call")
        says("", "vim.g.vpcep_options = { metadata = true, metadata_endpoint = " .. string.format("%q", mock.url)
             .. " }\n", "ECS agency keys from the metadata service " .. mock.url .. " (g:vpcep_options)")
        says("HUAWEICLOUD_SDK_IDP_ID=corp HUAWEICLOUD_SDK_ID_TOKEN_FILE=/run/idt", "",
             "federated token of idp corp from /run/idt ($HUAWEICLOUD_SDK_IDP_ID), fetched at the first call")
        local text = health("HUAWEICLOUD_SDK_AK=HALFONLY0001").text or ""
        assert.matches("ERROR: credentials: .*HUAWEICLOUD_SDK_SK", text)
        assert.is_nil(text:find("HALFONLY0001", 1, true))
      end)

      it("reports missing credentials and a module that does not load as errors", function()
        local r = health("", "vim.g.vpcep_cpath = '/nonexistent/?.so'\npackage.cpath = '/nonexistent/?.so'\n")
        assert.matches("ERROR: the module does not load", r.text or "", 1, true)
        r = health("")
        assert.matches("ERROR: credentials: none", r.text or "", 1, true)
      end)
    end)
  end)
end)
