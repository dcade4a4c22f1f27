-- spec/share_spec.lua: one-shot calls and short-lived clients reuse the
-- connections (and TLS sessions) earlier ones left, through the Lua
-- state's shares (src/share.c), keyed by verify, cafile and proxy: N calls
-- open one connection, different keys never share one, a verify = false
-- connection never serves a verify = true call, close() and GC of one
-- client never take the share from another, and many keys stay bounded.
-- Connections are counted at the mock (stats().connections_opened, which
-- counts the stats call's own connection too: hence the "- 1"s).
local helper = require "spec.helper"
local vpcep = require "vpcep"
local socket = require "socket"
local D = helper.defaults

-- How many shares a state keeps (VP_SHARE_KEEP, src/share.h).
local KEEP = 4

-- A cafile path no earlier call used, naming the same file: a key of its
-- own (libcurl ignores cafile for http:// URLs, the key does not).
local fresh_n = 0
local function fresh_cafile(path)
  fresh_n = fresh_n + 1
  local dir, base = path:match("^(.*)/([^/]+)$")
  return dir .. string.rep("/.", fresh_n) .. "/" .. base
end

-- Connections the mock accepted while f ran (the stats calls' own not counted).
local function opened_by(mock, f)
  local before = mock:stats().connections_opened
  f()
  return mock:stats().connections_opened - before - 1
end

local function oneshot(mock, o)
  local conns = vpcep.accept(helper.client_opts(mock, { service_id = D.service_id, endpoints = { "e1" },
                                                        retries = 0, timeout = 10 }, o))
  assert.equal("accepted", conns[1].status)
end

describe("shares over HTTP", function()
  local mock, anyfile
  setup(function()
    mock = helper.start()
    anyfile = os.tmpname()
  end)
  teardown(function()
    mock:stop()
    os.remove(anyfile)
  end)
  before_each(function()
    mock:reset()
    mock:service{ endpoints = { { id = "e1" }, { id = "e2" } } }
  end)

  it("N one-shot calls open one connection between them", function()
    local o = { cafile = fresh_cafile(anyfile) }
    assert.equal(1, opened_by(mock, function()
      for _ = 1, 10 do oneshot(mock, o) end
    end))
    assert.equal(10, #mock:log())
  end)

  it("N short-lived clients (new, one call, close) open one connection between them", function()
    local o = helper.client_opts(mock, { cafile = fresh_cafile(anyfile), retries = 0 })
    assert.equal(1, opened_by(mock, function()
      for i = 1, 10 do
        local c = vpcep.new(o)
        assert.equal("e" .. (i % 2 + 1), c:accept(D.service_id, "e" .. (i % 2 + 1))[1].id)
        c:close()
      end
    end))
    assert.equal(10, #mock:log())
  end)

  it("different verify, cafile or proxy settings never share a connection; the same ones do", function()
    local a, b = fresh_cafile(anyfile), fresh_cafile(anyfile)
    -- the mock also takes absolute-form targets, so it serves as its own proxy
    local keys = { { cafile = a }, { cafile = a, verify = false }, { cafile = a, proxy = mock.url }, { cafile = b } }
    for i, o in ipairs(keys) do
      assert.equal(1, opened_by(mock, function() oneshot(mock, o) end), "key " .. i)
    end
    for i, o in ipairs(keys) do
      assert.equal(0, opened_by(mock, function()
        oneshot(mock, o)
        oneshot(mock, o)
      end), "key " .. i .. " again")
    end
    -- the proxied calls went to the proxy (absolute-form), the others not
    local proxied = 0
    for _, e in ipairs(mock:log()) do
      if e.path:match("^http://") then proxied = proxied + 1 end
    end
    assert.equal(3, proxied)
    assert.equal(12, #mock:log())
  end)

  it("close() of one client leaves the share to another that uses it", function()
    local o = helper.client_opts(mock, { cafile = fresh_cafile(anyfile), retries = 0 })
    local a, b = vpcep.new(o), vpcep.new(o)
    assert.equal(1, opened_by(mock, function()
      a:accept(D.service_id, "e1")
      b:accept(D.service_id, "e2")
      a:close()
      b:reject(D.service_id, "e2")
      b:accept(D.service_id, "e2")
    end))
    helper.einval(a.accept, a, D.service_id, "e1") -- a is closed
    -- and a new client still finds the connection
    assert.equal(0, opened_by(mock, function() oneshot(mock, { cafile = o.cafile }) end))
    b:close()
    assert.equal(0, opened_by(mock, function() oneshot(mock, { cafile = o.cafile }) end))
    assert.equal(6, #mock:log())
  end)

  it("collected clients leave the share to the living ones", function()
    local o = helper.client_opts(mock, { cafile = fresh_cafile(anyfile), retries = 0 })
    local keep = vpcep.new(o)
    assert.equal(1, opened_by(mock, function()
      for _ = 1, 20 do
        vpcep.new(o):accept(D.service_id, "e1") -- dropped at once
      end
      collectgarbage()
      collectgarbage()
      keep:accept(D.service_id, "e2")
      oneshot(mock, { cafile = o.cafile })
    end))
    keep:close()
    assert.equal(22, #mock:log())
  end)

  it("requiring the module again keeps the state's shares", function()
    local o = { cafile = fresh_cafile(anyfile) }
    oneshot(mock, o)
    package.loaded.vpcep = nil
    local again = require "vpcep"
    package.loaded.vpcep = vpcep
    assert.are_not.equal(vpcep, again)
    assert.equal(0, opened_by(mock, function()
      assert.equal("accepted", again.accept(helper.client_opts(mock, { service_id = D.service_id,
        endpoints = { "e1" }, cafile = o.cafile }))[1].status)
    end))
  end)

  it("keeps only the " .. KEEP .. " most recently used shares: many keys stay bounded", function()
    local files = {}
    for i = 1, 20 do files[i] = fresh_cafile(anyfile) end
    assert.equal(20, opened_by(mock, function()
      for i = 1, 20 do oneshot(mock, { cafile = files[i] }) end
    end))
    -- the shares let go of are freed, their connections closed: the mock
    -- sees them end (polled a bounded number of times: it learns of a
    -- close some time after it happened)
    local open
    for _ = 1, 200 do
      open = mock:stats().connections_open - 1
      if open <= KEEP then break end
      socket.sleep(0.02)
    end
    assert.is_true(open <= KEEP, "connections still open: " .. open)
    -- the last KEEP keys still have theirs; the first ones were let go
    assert.equal(0, opened_by(mock, function()
      for i = 20, 20 - KEEP + 1, -1 do oneshot(mock, { cafile = files[i] }) end
    end))
    assert.equal(1, opened_by(mock, function() oneshot(mock, { cafile = files[1] }) end))
    assert.equal(20 + KEEP + 1, #mock:log())
  end)

  it("a share in use by a client outlives its eviction from the pool", function()
    local o = helper.client_opts(mock, { cafile = fresh_cafile(anyfile), retries = 0 })
    local c = vpcep.new(o)
    c:accept(D.service_id, "e1")
    -- more keys than the pool keeps: c's share is evicted from it, not freed
    for _ = 1, KEEP + 2 do oneshot(mock, { cafile = fresh_cafile(anyfile) }) end
    assert.equal(0, opened_by(mock, function() c:accept(D.service_id, "e2") end))
    c:close()
  end)
end)

describe("shares over HTTPS", function()
  local mock
  setup(function() mock = helper.start{ tls = true } end)
  teardown(function() mock:stop() end)
  before_each(function()
    mock:reset()
    mock:service{ endpoints = { { id = "e1" } } }
  end)

  it("N one-shot calls with cafile open one connection (one TLS handshake) between them", function()
    local o = { cafile = fresh_cafile(mock.cafile) }
    assert.equal(1, opened_by(mock, function()
      for _ = 1, 10 do oneshot(mock, o) end
    end))
    assert.equal(10, #mock:log())
  end)

  it("a verify = false connection never serves a verify = true call: that one still fails with vpcep.tls", function()
    oneshot(mock, { verify = false })
    oneshot(mock, { verify = false })
    local err = helper.raised(vpcep.accept, helper.client_opts(mock, { service_id = D.service_id,
      endpoints = { "e1" }, retries = 0, timeout = 10 }))
    assert.equal("vpcep.tls", err.code)
    -- and with the same cafile spelling, refused when verify is on and the CA is another
    local other = helper.make_cert(os.tmpname() .. ".other")
    oneshot(mock, { verify = false, cafile = other })
    err = helper.raised(vpcep.accept, helper.client_opts(mock, { service_id = D.service_id,
      endpoints = { "e1" }, retries = 0, timeout = 10, cafile = other }))
    os.execute("rm -rf " .. helper.shell_quote(other:match("^(.*)/")))
    assert.equal("vpcep.tls", err.code)
    -- a kept verify = true client too, after verify = false calls
    local c = vpcep.new(helper.client_opts(mock, { retries = 0, timeout = 10 }))
    err = helper.raised(c.accept, c, D.service_id, "e1")
    assert.equal("vpcep.tls", err.code)
    c:close()
    assert.equal(3, #mock:log()) -- only the verify = false calls got through
  end)

  it("verify = true with the right cafile does not reuse a verify = false connection", function()
    local cafile = fresh_cafile(mock.cafile)
    oneshot(mock, { verify = false, cafile = cafile })
    assert.equal(1, opened_by(mock, function() oneshot(mock, { cafile = cafile }) end))
    assert.equal(0, opened_by(mock, function() oneshot(mock, { cafile = cafile }) end))
  end)
end)
