-- spec/edges_spec.lua: long and odd runs: waits that must not outlast
-- themselves, long bulk calls with AK/SK, servers that page oddly, bulk
-- retries that must not spin, answers with oversized codes, and a client
-- finaliser handed the wrong object.
local helper = require "spec.helper"
local vpcep = require "vpcep"
local socket = require "socket"

local D = helper.defaults

local function conn(id) return { id = id, status = "accepted", marker_id = 7 } end

describe("edges", function()
  local mock

  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function() mock:reset() end)

  it("names every pending endpoint when a wait runs out, whatever the ids' lengths", function()
    local eps, ids = {}, {}
    for i = 1, 20 do
      local id = (i == 16) and ("b" .. ("x"):rep(32)) or (("%02d"):format(i) .. ("y"):rep(62))
      ids[i] = id
      eps[i] = { id = id }
    end
    mock:service { endpoints = eps }
    mock:config { transition_ms = 60000 }
    local c = helper.client(mock, { retries = 0 })
    local err = helper.raised(c.accept, c, D.service_id, ids, { wait = 0.3 })
    assert.are.equal("vpcep.timeout", err.code)
    assert.matches("20 endpoint(s) still pending", err.message, 1, true)
    for i = 1, 20 do assert.matches(ids[i], err.message, 1, true) end
    c:close()
  end)

  it("a poll that hangs ends with the wait, as still pending, not as the poll's own timeout", function()
    mock:seed(1)
    mock:config { transition_ms = 60000 }
    -- every list call hangs for longer than the wait
    mock:fault { match = { method = "GET" }, times = 0, hang_ms = 4000 }
    local c = helper.client(mock, { retries = 0, timeout = 30 })
    local err = helper.raised(c.accept, c, D.service_id, "ep-0000", { wait = 0.5 })
    assert.are.equal("vpcep.timeout", err.code)
    assert.matches("still pending after waiting", err.message, 1, true)
    assert.matches("ep-0000", err.message, 1, true)
    c:close()
  end)

  it("signs each request of a long AK/SK bulk call when it is sent, not when the call began", function()
    local ids = mock:seed(3)
    -- each answer takes 1.1 s and one goes at a time: the sends span 2+ s
    mock:config { delay_ms = 1100 }
    local c = vpcep.new(helper.aksk_opts(mock, { concurrency = 1, retries = 0 }))
    local res = c:accept(D.service_id, ids)
    assert.are.equal(3, #res)
    local dates = {}
    for _, e in ipairs(mock:log()) do
      if e.method == "POST" then dates[#dates + 1] = helper.log_header(e, "X-Sdk-Date") end
    end
    assert.are.equal(3, #dates)
    assert.are_not.equal(dates[1], dates[3])
    c:close()
  end)

  it("pages on while total_count says more, even when the server gives short pages", function()
    local function page(from, n)
      local cs = {}
      for i = from, from + n - 1 do cs[#cs + 1] = conn(("c%02d"):format(i)) end
      return { status = 200, json = { connections = cs, total_count = 5 } }
    end
    mock:faults {
      { match = { method = "GET", path_contains = "offset=0" }, times = 1, answer = page(1, 2) },
      { match = { method = "GET", path_contains = "offset=2" }, times = 1, answer = page(3, 2) },
      { match = { method = "GET", path_contains = "offset=4" }, times = 1, answer = page(5, 1) },
    }
    local c = helper.client(mock, { retries = 0 })
    local list, total = c:connections(D.service_id)
    assert.are.equal(5, total)
    assert.are.equal(5, #list)
    for i = 1, 5 do assert.are.equal(("c%02d"):format(i), list[i].id) end
    c:close()
  end)

  it("stops with vpcep.bad_response when a server ignores offset", function()
    mock:fault { match = { method = "GET" }, times = 0,
      answer = { status = 200, json = { connections = { conn("a"), conn("b") }, total_count = 10 } } }
    local c = helper.client(mock, { retries = 0 })
    local err = helper.raised(c.connections, c, D.service_id)
    assert.are.equal("vpcep.bad_response", err.code)
    assert.matches("already listed", err.message, 1, true)
    assert.are.equal(2, #mock:log())
    c:close()
  end)

  it("does not spin while a backed-off request waits for a busy slot", function()
    mock:service { endpoints = { { id = "e503" }, { id = "slow1" }, { id = "slow2" } } }
    mock:faults {
      { match = { endpoint = "e503" }, times = 1,
        answer = { status = 503, json = { error_code = "X", error_msg = "busy" } } },
      { match = { endpoint = "slow1" }, times = 1, delay_ms = 1500 },
      { match = { endpoint = "slow2" }, times = 1, delay_ms = 1500 },
    }
    local c = helper.client(mock, { concurrency = 2, retries = 1 })
    local wall0, cpu0 = socket.gettime(), os.clock()
    local res = c:accept(D.service_id, { "e503", "slow1", "slow2" })
    local wall, cpu = socket.gettime() - wall0, os.clock() - cpu0
    assert.are.equal(3, #res)
    -- a busy loop burns about as much CPU as time passes; waiting burns little
    assert.is_true(cpu < wall / 2, ("cpu %.2f s over %.2f s"):format(cpu, wall))
    c:close()
  end)

  it("caps an oversized error_code of a failed connection in the message", function()
    mock:service { endpoints = { { id = "f1", fail_with = { error_code = ("C"):rep(200000) .. "\r\nX",
      error_message = "no" } } } }
    local c = helper.client(mock, { retries = 0 })
    local err = helper.raised(c.accept, c, D.service_id, "f1")
    assert.are.equal("vpcep.connection_failed", err.code)
    assert.is_true(#err.message < 4096, "message of " .. #err.message .. " bytes")
    assert.is_nil(err.message:find("[\r\n]"))
    c:close()
  end)

  it("its finaliser ignores anything but a client", function()
    local c = helper.client(mock)
    local gc = getmetatable(c).__gc
    gc(io.stdout)
    gc(newproxy and newproxy(true) or io.stderr)
    assert.is_not_nil(io.stdout:write(""))
    gc(c)
    assert.are.equal("vpcep.client (closed)", tostring(c))
  end)
end)
