-- A kept handle is given each URL parsed (CURLOPT_CURLU), parsed again only
-- when it changes. Every URL a client builds has a scheme, so what a URL
-- without one does, or a URL libcurl refuses in the middle of others, is
-- out of the Lua API's reach: spec/c/url_test.c drives the transport
-- directly against a server of its own on 127.0.0.1 and checks the request
-- target of each request.
local helper = require "spec.helper"

describe("the transport's parsed URL", function()
  local pkg = helper.this_lua
  local can = helper.have("cc") and helper.have("pkg-config")
      and helper.exec_ok("pkg-config --exists " .. pkg .. " libcurl libcrypto")

  local it_ = can and it or pending
  it_("follows each URL a kept handle is given (" .. pkg .. ")", function()
    local dir = helper.tmpdir()
    local exe = dir .. "/url_test"
    local ok, out = helper.run("cc -std=c99 -Wall -Wextra -Werror -pedantic -D_POSIX_C_SOURCE=200809L "
      .. "$(pkg-config --cflags " .. pkg .. " libcurl) -o " .. exe .. " spec/c/url_test.c "
      .. "src/transport.c src/share.c src/sockets.c src/pollset.c src/buf.c "
      .. "$(pkg-config --libs " .. pkg .. " libcurl libcrypto) -lm")
    assert.is_true(ok, out)
    ok, out = helper.run(exe)
    os.execute("rm -rf '" .. dir .. "'")
    assert.is_true(ok, out)
    local n = 0
    for _ in out:gmatch("ok [^\n]*") do n = n + 1 end
    assert.are.equal(8, n, out)
    assert.is_nil(out:find("FAIL", 1, true), out)
  end)
end)
