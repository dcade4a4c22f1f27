-- Out of memory is Lua's own memory error (status LUA_ERRMEM), not a
-- runtime error, and vpcep.safe lets it through (as cjson.safe does) while
-- it turns every runtime error into nil, err. Nothing here can make malloc
-- fail on demand inside a client call, so spec/c/oom_test.c drives the
-- raising function and the safe wrapper directly, built against this Lua.
local helper = require "spec.helper"

describe("out of memory", function()
  local pkg = helper.this_lua
  local can = helper.have("cc") and helper.have("pkg-config")
      and helper.exec_ok("pkg-config --exists " .. pkg)

  local it_ = can and it or pending
  it_("is raised as a memory error, and vpcep.safe does not swallow it (" .. pkg .. ")", function()
    local dir = helper.tmpdir()
    local exe = dir .. "/oom_test"
    local ok, out = helper.run("cc -std=c99 -Wall -Wextra -Werror -pedantic -D_POSIX_C_SOURCE=200809L "
      .. "$(pkg-config --cflags " .. pkg .. ") -o " .. exe .. " spec/c/oom_test.c src/errors.c "
      .. "$(pkg-config --libs " .. pkg .. ") -lm")
    assert.is_true(ok, out)
    ok, out = helper.run(exe)
    os.execute("rm -rf '" .. dir .. "'")
    assert.is_true(ok, out)
    local n = 0
    for _ in out:gmatch("ok [^\n]*") do n = n + 1 end
    assert.are.equal(6, n, out)
    assert.is_nil(out:find("FAIL", 1, true), out)
  end)
end)
