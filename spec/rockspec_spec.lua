-- spec/rockspec_spec.lua: rockspec/vpcep-scm-1.rockspec passes `luarocks lint`,
-- names every src/*.c, and `luarocks make` builds and installs it into a
-- temporary tree for the Lua that runs this suite (luajit: the 5.1 build);
-- a child process of that interpreter then requires the installed module
-- from the tree and accepts a connection on the mock server, and the
-- installed `vpcep` command (vpcep.cli from the tree) lists and accepts.
--
-- The copy: luarocks' builtin backend writes its objects beside the sources,
-- so the build runs in a copy of src/ and rockspec/ under /tmp, never in the
-- work tree (other builds may be running there).
--
-- Debian's lua-cjson and lua-argparse are installed by apt, not by LuaRocks,
-- so LuaRocks does not see them and would try to download them. The build is
-- given a LuaRocks config with rocks_provided = { ["lua-cjson"] = ...,
-- argparse = ... } (the documented way to say "the system has it"), so the
-- dependencies are checked but not fetched.
local helper = require "spec.helper"

local q = helper.shell_quote
local ROCKSPEC = "rockspec/vpcep-scm-1.rockspec"

local have = helper.have

-- The interpreter running this suite, and the LuaRocks --lua-version for it.
local LUA_BIN = helper.this_lua
local LUA_VERSION = jit and "5.1" or _VERSION:match("%d+%.%d+")

local read, run = helper.read_file, helper.run

-- The directory (on `path`) that holds the C module `name`, for the child.
local function dir_of_cmodule(name, path) return helper.cmodule_template(name, path) end

local tmpdir = helper.tmpdir

local luarocks = have("luarocks")
local describe_rocks = luarocks and describe or function(name, _) pending(name .. ": luarocks is not installed") end

describe_rocks("rockspec", function()
  it("passes luarocks lint", function()
    local ok, text = run("luarocks lint " .. q(ROCKSPEC))
    assert.is_true(ok, text)
  end)

  it("lists every C source of src/ and nothing else", function()
    local text = assert(read(ROCKSPEC))
    local listed = {}
    for f in text:gmatch('"(src/[%w_]+%.c)"') do listed[#listed + 1] = f end
    table.sort(listed)
    local p = assert(io.popen("ls src/*.c"))
    local actual = {}
    for line in p:lines() do actual[#actual + 1] = line end
    p:close()
    table.sort(actual)
    assert.is_true(#actual > 0)
    assert.are.same(actual, listed)
  end)

  it("declares lua-cjson, argparse and the two C libraries", function()
    local text = assert(read(ROCKSPEC))
    assert.matches('"lua%-cjson', text)
    assert.matches('"argparse >= 0%.7"', text)
    assert.matches('CURL%s*=%s*{%s*library%s*=%s*"curl"', text)
    assert.matches('OPENSSL%s*=%s*{%s*library%s*=%s*"crypto"', text)
    assert.matches('_POSIX_C_SOURCE=200809L', text, 1, true)
  end)

  it("installs the command and the Lua part of the module: vpcep.cli, vpcep.reconcile and bin/vpcep", function()
    local text = assert(read(ROCKSPEC))
    assert.matches('%["vpcep%.cli"%]%s*=%s*"lua/vpcep/cli%.lua"', text)
    assert.matches('%["vpcep%.reconcile"%]%s*=%s*"lua/vpcep/reconcile%.lua"', text)
    assert.matches('install%s*=%s*{%s*bin%s*=%s*{%s*vpcep%s*=%s*"bin/vpcep"%s*}', text)
  end)

  describe("luarocks --lua-version=" .. LUA_VERSION .. " make into a temporary tree", function()
    local mock, work, tree

    setup(function()
      mock = helper.start()
      work = tmpdir()
      tree = work .. "/tree"
      assert(helper.exec_ok("cp -R src rockspec bin lua " .. q(work) .. "/"))
      local f = assert(io.open(work .. "/config.lua", "w"))
      f:write('rocks_provided = { ["lua-cjson"] = "2.1.0-1", argparse = "0.7.1-1" }\n')
      f:close()
    end)

    teardown(function()
      if mock then mock:stop() end
      if work then os.execute("rm -rf " .. q(work)) end
      -- the tree is gone with work
      assert.is_false(helper.exec_ok("test -e " .. q(tree)))
    end)

    it("builds with -std=c99 -pedantic -Werror, installs, and the installed module works", function()
      -- CFLAGS as LuaRocks passes them (-O2 -fPIC) plus the project's strictness:
      -- the builtin backend takes CFLAGS from the command line or config only.
      local cmd = "cd " .. q(work) .. " && LUAROCKS_CONFIG=" .. q(work .. "/config.lua")
        .. " luarocks --lua-version=" .. LUA_VERSION .. " --tree " .. q(tree)
        .. " make " .. q(ROCKSPEC)
        .. " CFLAGS='-O2 -fPIC -std=c99 -pedantic -Wall -Wextra -Werror'"
      local ok, text = run(cmd)
      assert.is_true(ok, text)
      assert.matches("-std=c99", text, 1, true)
      assert.matches("-D_POSIX_C_SOURCE=200809L", text, 1, true)
      assert.matches("-lcurl", text, 1, true)
      assert.matches("-lcrypto", text, 1, true)
      local so = tree .. "/lib/lua/" .. LUA_VERSION .. "/vpcep.so"
      assert.is_true(helper.exec_ok("test -f " .. q(so)), so .. " missing:\n" .. text)
      -- the LuaRocks build hides the internals too (no -fvisibility flag there)
      local syms
      ok, syms = run("nm -D --defined-only " .. q(so))
      assert.is_true(ok, syms)
      assert.matches("%sT%sluaopen_vpcep\n", syms)
      assert.is_nil(syms:match("%s[Tt]%svp_[%w_]+"))
      local listed
      ok, listed = run("luarocks --lua-version=" .. LUA_VERSION .. " --tree " .. q(tree) .. " list --porcelain")
      assert.is_true(ok, listed)
      assert.matches("^vpcep%s+scm%-1%s+installed", listed)
      -- vpcep.resty, for OpenResty, installed beside it as Lua modules
      for _, m in ipairs({ "resty.lua", "resty/http.lua" }) do
        local file = tree .. "/share/lua/" .. LUA_VERSION .. "/vpcep/" .. m
        assert.is_true(helper.exec_ok("test -f " .. q(file)), file .. " missing")
      end

      -- the child sees only the tree and the directory holding cjson
      local cjson_dir = assert(dir_of_cmodule("cjson", package.cpath), "cjson not found on package.cpath")
      mock:reset()
      mock:service { endpoints = { { id = "ep-rock" } } }
      local d = helper.defaults
      local script = table.concat({
        "package.cpath = " .. string.format("%q", tree .. "/lib/lua/" .. LUA_VERSION .. "/?.so;" .. cjson_dir),
        "package.path = ''",
        "local vpcep = require 'vpcep'",
        "local c = vpcep.new { endpoint = " .. string.format("%q", mock.url)
          .. ", project_id = " .. string.format("%q", d.project_id)
          .. ", token = " .. string.format("%q", d.token) .. " }",
        "local conns = c:accept(" .. string.format("%q", d.service_id) .. ", 'ep-rock')",
        "io.write(vpcep._VERSION, '|', conns[1].id, '|', conns[1].status)",
      }, "\n")
      local sfile = work .. "/child.lua"
      local f = assert(io.open(sfile, "w"))
      f:write(script)
      f:close()
      local out
      ok, out = run(LUA_BIN .. " " .. q(sfile))
      assert.is_true(ok, out)
      local version, id, status = out:match("^(vpcep %d+%.%d+%.%d+)|([^|]*)|(%a+)$")
      assert.is_string(version, out)
      assert.are.equal("ep-rock", id)
      assert.are.equal("accepted", status)
      assert.are.equal("accepted", mock:by_id()["ep-rock"].status)
    end)

    -- After the build above. The tree's bin/vpcep is LuaRocks' wrapper: it
    -- puts the tree on the paths and runs the installed launcher, which finds
    -- no checkout beside itself; nothing of this run's paths is passed on.
    it("the installed vpcep command works from the tree", function()
      local cli = tree .. "/share/lua/" .. LUA_VERSION .. "/vpcep/cli.lua"
      assert.is_true(helper.exec_ok("test -f " .. q(cli)), cli .. " missing")
      local token = work .. "/token"
      helper.write_file(token, helper.defaults.token .. "\n")
      mock:reset()
      mock:service { endpoints = { { id = "ep-cli" }, { id = "ep-other" } } }
      local env = "cd " .. q(work) .. " && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_2 -u LUA_PATH_5_3 "
        .. "-u LUA_PATH_5_4 -u LUA_CPATH_5_2 -u LUA_CPATH_5_3 -u LUA_CPATH_5_4 -u VPCEP_REGION "
        .. "VPCEP_ENDPOINT=" .. q(mock.url) .. " HUAWEICLOUD_SDK_PROJECT_ID=" .. q(helper.defaults.project_id)
        .. " VPCEP_TOKEN_FILE=" .. q(token) .. " " .. q(tree .. "/bin/vpcep") .. " "
      local ok, out = run(env .. "--version")
      assert.is_true(ok, out)
      assert.matches("^vpcep %d+%.%d+%.%d+\n$", out)
      ok, out = run(env .. "accept --service " .. q(helper.defaults.service_id) .. " ep-cli")
      assert.is_true(ok, out)
      assert.matches("^ep%-cli%s+accepted\naccept: 1 endpoint%(s%): 1 accepted", out)
      ok, out = run(env .. "list --json --service " .. q(helper.defaults.service_id))
      assert.is_true(ok, out)
      assert.are.equal(2, helper.json.decode(out).total_count)
      assert.are.equal("accepted", mock:by_id()["ep-cli"].status)
      assert.are.equal("pendingAcceptance", mock:by_id()["ep-other"].status)
      -- client:reconcile finds the installed vpcep.reconcile
      ok, out = run(env .. "reconcile --service " .. q(helper.defaults.service_id) .. " --reject-others")
      assert.is_true(ok, out)
      assert.matches("^ep%-other%s+d0%s+reject%s+rejected%s", out)
      assert.are.equal("rejected", mock:by_id()["ep-other"].status)
    end)

    it("the child fails when the tree is not on its path (the test can tell)", function()
      local script = work .. "/child2.lua"
      local f = assert(io.open(script, "w"))
      f:write("package.cpath = " .. string.format("%q", work .. "/nowhere/?.so")
        .. "\npackage.path = ''\nrequire 'vpcep'\n")
      f:close()
      local ok, out = run(LUA_BIN .. " " .. q(script))
      assert.is_false(ok)
      assert.matches("vpcep", out)
    end)
  end)
end)
