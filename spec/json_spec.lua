-- spec/json_spec.lua: vpcep reads and writes JSON through a private
-- lua-cjson instance, so what the host program does to the shared cjson
-- module never changes what vpcep sends or reads; and where cjson has no
-- new(), vpcep uses it as it is without touching its settings.
-- Each case runs in a child process of this Lua and build, so the shared
-- module of this suite stays as it is.
local helper = require "spec.helper"

local function child(code)
  local dir = helper.tmpdir()
  local file = dir .. "/child.lua"
  helper.write_file(file, "package.cpath = " .. string.format("%q", package.cpath) .. "\n" .. code)
  local ok, out = helper.run(helper.shell_quote(helper.interpreter()) .. " " .. helper.shell_quote(file))
  os.execute("rm -rf " .. helper.shell_quote(dir))
  return ok, out
end

-- a list answer nested four levels deep, with an exact big marker_id
local BODY = [[{"connections":[{"id":"a","status":"failed","marker_id":422321321312321321,]]
  .. [["error":[{"error_code":"E.1","error_message":"x"}]}],"total_count":1}]]

describe("JSON", function()
  it("is not changed by the host's settings on the shared cjson module", function()
    local ok, out = child([==[
      local cjson = require "cjson"
      cjson.decode_max_depth(2)              -- the host's own, stricter setting
      cjson.encode_number_precision(3)
      local vpcep = require "vpcep"
      local doc = vpcep.parse(200, ]==] .. string.format("%q", BODY) .. [==[)
      assert(doc.connections[1].error[1].error_code == "E.1")
      assert(tostring(doc.connections[1].marker_id):find("422321321312321321", 1, true))
      -- and the host's module still has its setting
      assert(not pcall(cjson.decode, '[[[1]]]'))
      print("ok")
    ]==])
    assert.is_true(ok, out)
    assert.matches("ok\n$", out)
  end)

  it("uses a cjson without new() as it is and leaves its settings alone", function()
    local ok, out = child([[
      local real = require "cjson"
      local touched = {}
      local fake = { decode = real.decode, encode = real.encode, null = real.null }
      for _, k in ipairs({ "decode_max_depth", "encode_max_depth", "decode_invalid_numbers" }) do
        fake[k] = function() touched[#touched + 1] = k end
      end
      package.loaded.cjson = fake
      local vpcep = require "vpcep"
      local doc = vpcep.parse(200, ]] .. string.format("%q", BODY) .. [[)
      assert(doc.connections[1].id == "a")
      assert(#touched == 0, "vpcep changed the shared module: " .. table.concat(touched, ", "))
      print("ok")
    ]])
    assert.is_true(ok, out)
    assert.matches("ok\n$", out)
  end)

  it("configures its private instance: NaN and deep nesting are refused", function()
    local ok, out = child([[
      local vpcep = require "vpcep"
      local function code(body)
        local ok, err = pcall(vpcep.parse, 200, body)
        return not ok and err.code
      end
      assert(code('{"connections":[],"total_count":NaN}') == "vpcep.bad_response")
      assert(code(('{"connections":[],"x":'):rep(1) .. ("["):rep(100) .. ("]"):rep(100) .. "}") == "vpcep.bad_response")
      print("ok")
    ]])
    assert.is_true(ok, out)
    assert.matches("ok\n$", out)
  end)
end)
