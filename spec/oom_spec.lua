-- Out of memory is Lua's own memory error (status LUA_ERRMEM), not a
-- runtime error, and vpcep.safe lets it through (as cjson.safe does) while
-- it turns every runtime error into nil, err. Nothing here can make malloc
-- fail on demand inside a client call, so spec/c/oom_test.c drives the
-- raising function and the safe wrapper directly, built against this Lua.
local helper = require "spec.helper"

describe("out of memory", function()
  local it_ = helper.can_build_c("") and it or pending
  it_("is raised as a memory error, and vpcep.safe does not swallow it (" .. helper.this_lua .. ")", function()
    local n, out = helper.run_c_checks("oom_test", "src/errors.c", "")
    assert.are.equal(6, n, out)
  end)
end)
