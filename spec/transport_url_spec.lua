-- A kept handle is given each URL parsed (CURLOPT_CURLU), parsed again only
-- when it changes. Every URL a client builds has a scheme, so what a URL
-- without one does, or a URL libcurl refuses in the middle of others, is
-- out of the Lua API's reach: spec/c/url_test.c drives the transport
-- directly against a server of its own on 127.0.0.1 and checks the request
-- target of each request.
local helper = require "spec.helper"

describe("the transport's parsed URL", function()
  local it_ = helper.can_build_c("libcurl libcrypto") and it or pending
  it_("follows each URL a kept handle is given (" .. helper.this_lua .. ")", function()
    local n, out = helper.run_c_checks("url_test",
      "src/transport.c src/share.c src/sockets.c src/pollset.c src/buf.c", "libcurl libcrypto")
    assert.are.equal(8, n, out)
  end)
end)
