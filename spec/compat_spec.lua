-- spec/compat_spec.lua: one source on Lua 5.1, 5.3, 5.4 and LuaJIT.
--
-- In the interpreter running the suite: marker_id as the contract says
-- (a Lua integer on 5.3+; on 5.1/LuaJIT a number at or below 2^53, else its
-- decimal string), through vpcep.parse and through a real call to the mock;
-- _VERSION; the module was loaded from the build of this very interpreter.
-- Across interpreters: each installed Lua loads its own build in a child
-- process, and the shared object exports luaopen_vpcep and no Lua API name
-- (so nothing clashes with LuaJIT's own 5.2-style functions).
local vpcep = require "vpcep"
local helper = require "spec.helper"

local q = helper.shell_quote
local HAS_INTEGERS = math.type ~= nil
local THIS_LUA = helper.this_lua
local LUAS = { "lua5.1", "lua5.3", "lua5.4", "luajit" }

local run = helper.run

-- The package.cpath entry vpcep.so was found through, e.g. "build/lua5.4/?.so".
local function vpcep_template() return helper.cmodule_template("vpcep") end

local function marker_of(literal)
  local doc = vpcep.parse(200, '{"connections":[{"id":"e","status":"accepted","marker_id":' .. literal .. '}]}')
  return doc.connections[1].marker_id
end

describe("compat", function()
  it("_VERSION is 'vpcep x.y.z'", function()
    assert.is_string(vpcep._VERSION)
    assert.matches("^vpcep %d+%.%d+%.%d+$", vpcep._VERSION)
  end)

  it("was loaded from the build of this interpreter (" .. THIS_LUA .. ")", function()
    local template = assert(vpcep_template(), "vpcep.so not found on package.cpath")
    assert.matches("/" .. THIS_LUA:gsub("%.", "%%.") .. "/%?%.so$", template)
  end)

  describe("marker_id", function()
    if HAS_INTEGERS then
      it("is a Lua integer, exact, on " .. _VERSION, function()
        for _, lit in ipairs({ "0", "1", "100000000001", "9007199254740992", "9007199254740993",
                               "422321321312321321", "9223372036854775807", "-9007199254740993" }) do
          local m = marker_of(lit)
          assert.are.equal("integer", math.type(m), lit)
          assert.are.equal(lit, string.format("%d", m))
        end
        -- 2^53 + 1 is not representable as a double: an integer keeps it
        assert.are.equal(9007199254740993, marker_of("9007199254740993"))
        assert.are_not.equal(marker_of("9007199254740992"), marker_of("9007199254740993"))
      end)
    else
      it("is a number at or below 2^53 on " .. _VERSION, function()
        for _, lit in ipairs({ "0", "1", "100000000001", "9007199254740991", "9007199254740992",
                               "-9007199254740992" }) do
          local m = marker_of(lit)
          assert.are.equal("number", type(m), lit)
          assert.are.equal(tonumber(lit), m)
          assert.are.equal(lit, string.format("%.0f", m))
        end
      end)

      it("is its decimal string above 2^53 on " .. _VERSION, function()
        for _, lit in ipairs({ "9007199254740993", "422321321312321321", "9223372036854775807",
                               "-9007199254740993" }) do
          local m = marker_of(lit)
          assert.are.equal("string", type(m), lit)
          assert.are.equal(lit, m)
        end
        -- two neighbours a double would merge stay apart
        assert.are_not.equal(marker_of("9007199254740992"), marker_of("9007199254740993"))
      end)
    end

    describe("from the mock", function()
      local mock
      setup(function() mock = helper.start() end)
      teardown(function() if mock then mock:stop() end end)

      it("comes back exact from accept and from connections", function()
        mock:reset()
        -- pre-encoded JSON keeps the 64-bit ids exact on the way in
        mock:service(string.format('{"project_id":"%s","service_id":"%s","endpoints":['
          .. '{"id":"big","marker_id":422321321312321321},{"id":"small","marker_id":9007199254740992}]}',
          helper.defaults.project_id, helper.defaults.service_id))
        local c = helper.client(mock)
        local big = c:accept(helper.defaults.service_id, "big")[1].marker_id
        local list = c:connections(helper.defaults.service_id)
        c:close()
        local by = {}
        for _, conn in ipairs(list) do by[conn.id] = conn.marker_id end
        if HAS_INTEGERS then
          assert.are.equal("integer", math.type(big))
          assert.are.equal(422321321312321321, big)
          assert.are.equal("integer", math.type(by.small))
          assert.are.equal(9007199254740992, by.small)
        else
          assert.are.equal("422321321312321321", big)
          assert.are.equal("number", type(by.small))
          assert.are.equal(9007199254740992, by.small)
        end
        assert.are.equal(big, by.big)
      end)
    end)
  end)

  describe("every installed Lua", function()
    local template = vpcep_template()
    local root = template and template:match("^(.*)/" .. THIS_LUA:gsub("%.", "%%.") .. "/%?%.so$")

    for _, lua in ipairs(LUAS) do
      local installed = helper.exec_ok("command -v " .. lua .. " >/dev/null 2>&1")
        and helper.exec_ok("pkg-config --exists " .. lua .. " 2>/dev/null")
      if not installed then
        pending(lua .. " (interpreter or headers not installed)")
      else
        it(lua .. " builds and loads its own build, with the contract's marker_id", function()
          assert.is_string(root, "cannot tell the build root from package.cpath")
          -- the same make target the suite runner uses; up to date is a no-op
          local ok, text = run("make -s LUA=" .. lua .. " O=" .. q(root) .. " lib")
          assert.is_true(ok, text)
          local so = root .. "/" .. lua .. "/vpcep.so"
          local script = "package.cpath = " .. string.format("%q", root .. "/" .. lua .. "/?.so;")
            .. " .. package.cpath\n"
            .. [[
local v = require "vpcep"
local function m(lit)
  return v.parse(200, '{"connections":[{"id":"e","marker_id":' .. lit .. '}]}').connections[1].marker_id
end
local big, small = m("422321321312321321"), m("9007199254740992")
io.write(_VERSION, "|", v._VERSION, "|", type(big), "|", tostring(big), "|",
  math.type and math.type(small) or type(small), "|", jit and "jit" or "nojit")
]]
          local sfile = os.tmpname()
          local f = assert(io.open(sfile, "w"))
          f:write(script)
          f:close()
          local out
          ok, out = run(lua .. " " .. q(sfile))
          os.remove(sfile)
          assert.is_true(ok, out)
          local lv, mv, bigtype, bigtext, smalltype, isjit =
            out:match("^(Lua [%d.]+)|([^|]+)|(%a+)|([^|]+)|(%a+)|(%a+)$")
          assert.is_string(lv, out)
          assert.are.equal(vpcep._VERSION, mv)
          assert.are.equal("422321321312321321", bigtext)
          if lua == "luajit" then
            assert.are.equal("Lua 5.1", lv)
            assert.are.equal("jit", isjit)
          else
            assert.are.equal("Lua " .. lua:match("%d%.%d"), lv)
            assert.are.equal("nojit", isjit)
          end
          if lua == "lua5.3" or lua == "lua5.4" then
            assert.are.equal("number", bigtype)
            assert.are.equal("integer", smalltype)
          else
            assert.are.equal("string", bigtype)
            assert.are.equal("number", smalltype)
          end

          -- exports: luaopen_vpcep and no Lua API name of its own
          local syms
          ok, syms = run("nm -D --defined-only " .. q(so))
          assert.is_true(ok, syms)
          assert.matches("%sT%sluaopen_vpcep\n", syms)
          for name in syms:gmatch("%s[TtDdBbRrWw]%s([%w_]+)") do
            if name ~= "luaopen_vpcep" then
              assert.is_nil(name:match("^lua_") or name:match("^luaL_") or name:match("^luaopen_"), name)
              -- nor any of the module's own internals
              assert.is_nil(name:match("^vp_"), name)
            end
          end
        end)
      end
    end
  end)
end)
