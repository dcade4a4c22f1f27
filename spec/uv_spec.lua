-- vpcep.uv on plain luv (lua-luv), against the mock: calls return at once
-- and their callbacks run later on the loop, the loop keeps turning while
-- they wait, results and errors are the blocking client's, connections
-- are kept across calls, a callback's error is reported once, and close()
-- cancels what is in flight and leaves no handle behind.
local helper = require "spec.helper"
local vpcep = require "vpcep"

-- the checkout's Lua part (vpcep.reconcile), whatever --lpath busted was given
package.path = helper.spec_dir .. "/../lua/?.lua;" .. package.path

local have_luv, uv = pcall(require, "luv")
local describe_uv = have_luv and describe or function(name) pending(name .. ": luv is not installed for this Lua") end

local SID = helper.defaults.service_id
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

-- Runs the loop until done() is true, one event at a time. A loop with
-- nothing left to run returns at once, so the bound is a count of turns,
-- never a time.
local function run_until(done)
  for _ = 1, 200000 do
    if done() then return true end
    uv.run("once")
  end
  return done()
end

-- Every handle the loop still has.
local function handles()
  local n = 0
  uv.walk(function(h) if not h:is_closing() then n = n + 1 end end)
  return n
end

-- The fields of an error object that both clients must give alike.
local function shape(err)
  local t = { code = err.code, status = err.status, endpoint = err.endpoint, retryable = err.retryable,
              failed = err.failed, tries = err.tries }
  if err.results then
    t.results = {}
    for i, r in ipairs(err.results) do
      t.results[i] = vpcep.is_error(r) and { code = r.code, endpoint = r.endpoint } or { id = r.id, status = r.status }
    end
  end
  return t
end

describe_uv("vpcep.uv (luv)", function()
  local vuv = require "vpcep.uv"
  local mock, reported

  local function client(o)
    return vuv.new(helper.client_opts(mock, o), { loop = uv, on_error = function(m) reported[#reported + 1] = m end })
  end

  -- Starts method(client, ...) with a callback; runs the loop until it is
  -- called; returns its arguments (as a table with n) and whether the
  -- method returned before the callback ran.
  local function call(c, name, ...)
    local got
    local args = { ... }
    args[#args + 1] = function(...) got = { n = select("#", ...), ... } end
    c[name](c, unpack(args))
    local returned_first = got == nil
    assert.is_true(run_until(function() return got ~= nil end), name .. ": no callback")
    return got, returned_first
  end

  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function()
    mock:reset()
    reported = {}
  end)
  after_each(function()
    -- whatever a case left is closed by the loop's next turns
    uv.run("nowait")
    assert.are.equal(0, handles(), "a handle was left behind")
  end)

  it("accepts like the blocking client: same connections, same order; returns before the callback", function()
    local ids = mock:seed(12)
    mock:config { delay_ms = 100 } -- so that the requests overlap
    local c = client { concurrency = 5 }
    local most, sampler = 0, uv.new_timer()
    sampler:start(1, 1, function() most = math.max(most, c._carrier:in_flight()) end)
    local got, returned_first = call(c, "accept", SID, ids)
    sampler:close()
    assert.is_true(returned_first)
    assert.is_nil(got[2])
    local conns = got[1]
    assert.are.equal(12, #conns)
    for i, conn in ipairs(conns) do
      assert.are.equal(ids[i], conn.id)
      assert.are.equal("accepted", conn.status)
    end
    -- several at once, never more than concurrency
    assert.is_true(most > 1 and most <= 5, "most in flight: " .. most)
    mock:reset(); mock:seed(12)
    local blocking = helper.client(mock):accept(SID, ids)
    for i = 1, 12 do
      assert.are.same({ blocking[i].id, blocking[i].status }, { conns[i].id, conns[i].status })
    end
    c:close()
  end)

  it("rejects, lists every page with the total, and describes, as the blocking client does", function()
    local ids = mock:seed(25)
    local c = client()
    local b = helper.client(mock)
    local got = call(c, "reject", SID, { ids[1], ids[2] })
    assert.are.same({ "rejected", "rejected" }, { got[1][1].status, got[1][2].status })
    got = call(c, "connections", SID, { limit = 10, sort_key = "create_at", sort_dir = "asc" })
    local list, total = b:connections(SID, { limit = 10, sort_key = "create_at", sort_dir = "asc" })
    assert.are.equal(3, got.n)
    assert.is_nil(got[2])
    assert.are.equal(total, got[3])
    assert.are.equal(25, got[3])
    assert.are.equal(#list, #got[1])
    for i = 1, #list do assert.are.equal(list[i].id, got[1][i].id) end
    -- describe: the same request, and the same outcome (whatever the mock
    -- makes of it) as the blocking client's
    mock:clear_log()
    got = call(c, "describe", SID, { [ids[3]] = "from the loop" })
    local log = mock:log()
    assert.are.equal(1, #log)
    assert.are.equal("PUT", log[1].method)
    assert.matches("/connections/description$", log[1].path)
    local ok, res = pcall(b.describe, b, SID, { [ids[3]] = "from the loop" })
    if ok then
      assert.is_nil(got[2])
      assert.are.equal(res[1].id, got[1][1].id)
    else
      assert.are.same(shape(res), shape(got[2]))
    end
    c:close()
    b:close()
  end)

  it("gives a bulk call's error object as the blocking client raises it", function()
    mock:service{ endpoints = { { id = "e1" }, { id = "e2" } } }
    local c = client()
    local got = call(c, "accept", SID, { "e1", "nope", "e2" })
    assert.is_nil(got[1])
    local err = got[2]
    assert.is_true(vpcep.is_error(err))
    mock:reset(); mock:service{ endpoints = { { id = "e1" }, { id = "e2" } } }
    local b = helper.client(mock)
    local blocking = helper.raised(b.accept, b, SID, { "e1", "nope", "e2" })
    assert.are.same(shape(blocking), shape(err))
    assert.are.equal("EndPoint.0005", err.results[2].code)
    assert.are.equal(tostring(blocking):gsub("request_id=%x+", ""), tostring(err):gsub("request_id=%x+", ""))
    c:close()
  end)

  it("retries injected 503s on the loop's timer, honouring Retry-After, and the loop keeps turning", function()
    mock:service{ endpoints = { { id = "e1" } } }
    mock:fault { match = { endpoint = "e1" }, times = 2,
                 answer = { status = 503, json = { error_code = "APIGW.0503", error_msg = "busy" },
                            headers = { ["Retry-After"] = "1" } } }
    local c = client()
    local ticks, t = 0, uv.new_timer()
    t:start(20, 20, function() ticks = ticks + 1 end)
    local got = call(c, "accept", SID, "e1")
    t:close()
    assert.is_nil(got[2], tostring(got[2]))
    assert.are.equal("accepted", got[1][1].status)
    assert.are.equal(3, #mock:log())
    -- two waits of Retry-After: 1 s, spent on the loop, not asleep
    assert.is_true(ticks >= 20, "ticks: " .. ticks)
    c:close()
  end)

  it("gives up after the retries with the last error, tries counted", function()
    mock:service{ endpoints = { { id = "e1" } } }
    mock:fault { match = { endpoint = "e1" }, times = 0, answer = { status = 503, body = "" } }
    local c = client { retries = 2 }
    local got = call(c, "accept", SID, "e1")
    assert.are.equal("HTTP.503", got[2].code)
    assert.are.equal(3, got[2].tries)
    assert.is_true(got[2].retryable)
    assert.are.equal(3, #mock:log())
    c:close()
  end)

  it("times out a request the service holds, as vpcep.timeout", function()
    mock:service{ endpoints = { { id = "e1" } } }
    mock:fault { match = { endpoint = "e1" }, times = 0, hang_ms = 3000 }
    local c = client { timeout = 0.5, retries = 0 }
    local got = call(c, "accept", SID, "e1")
    assert.is_nil(got[1])
    assert.are.equal("vpcep.timeout", got[2].code)
    assert.are.equal("e1", got[2].endpoint)
    c:close()
  end)

  it("an authentication failure reaches the callback, without the token", function()
    mock:service{ endpoints = { { id = "e1" } } }
    local c = client { token = "not-the-mock-token-xyz" }
    local got = call(c, "accept", SID, "e1")
    assert.are.equal("APIGW.0301", got[2].code)
    assert.are.equal(401, got[2].status)
    assert.is_nil(tostring(got[2]):find("not-the-mock-token-xyz", 1, true))
    c:close()
  end)

  it("bad input reaches the callback as vpcep.invalid_argument, and nothing is sent", function()
    local c = client()
    local got, returned_first = call(c, "accept", SID, { "ok", "bad id" })
    assert.is_true(returned_first)
    assert.are.equal("vpcep.invalid_argument", got[2].code)
    got = call(c, "connections", SID, { limit = 5000 })
    assert.are.equal("vpcep.invalid_argument", got[2].code)
    assert.are.same({}, mock:log())
    c:close()
  end)

  it("a call without a callback raises vpcep.invalid_argument at once", function()
    local c = client()
    helper.einval(c.accept, c, SID, "e1")
    helper.einval(c.accept, c, SID, "e1", {}, "not a function")
    helper.einval(c.connections, c, SID)
    helper.einval(c.accept, {}, SID, "e1", function() end)
    helper.einval(vuv.new, helper.client_opts(mock), { loop = uv, bogus = 1 })
    helper.einval(vuv.new, helper.client_opts(mock), { loop = uv, schedule = "later" })
    helper.einval(vuv.new, { endpoint = mock.url })
    assert.are.same({}, mock:log())
    c:close()
  end)

  it("keeps its connection across 20 calls", function()
    local ids = mock:seed(20)
    local c = client()
    local before = mock:stats()
    for i = 1, 20 do
      local got = call(c, i % 2 == 0 and "accept" or "connections", SID, i % 2 == 0 and ids[i] or nil)
      assert.is_nil(got[2], tostring(got[2]))
    end
    local after = mock:stats()
    -- 10 accepts and 10 listings (one page each) over one connection,
    -- and one connection for the stats call
    assert.are.equal(20, after.requests - before.requests)
    assert.are.equal(2, after.connections_opened - before.connections_opened)
    c:close()
  end)

  it("uses connections of its own, never those of the share blocking calls use (src/share.c)", function()
    local ids = mock:seed(2)
    local function blocking(f, id)
      return f(helper.client_opts(mock, { service_id = SID, endpoints = { id }, retries = 0 }))[1]
    end
    -- leaves an idle connection in the state's share for these options
    assert.are.equal("accepted", blocking(vpcep.accept, ids[1]).status)
    local c = client()
    local before = mock:stats()
    local got = call(c, "accept", SID, ids[2])
    assert.is_nil(got[2], tostring(got[2]))
    local mid = mock:stats()
    assert.are.equal("rejected", blocking(vpcep.reject, ids[1]).status)
    local after = mock:stats()
    -- the socket-mode call opened one (and the stats call one) ...
    assert.are.equal(2, mid.connections_opened - before.connections_opened)
    -- ... while the blocking call found the share's connection still idle
    assert.are.equal(1, after.connections_opened - mid.connections_opened)
    c:close()
  end)

  it("waits (opts.wait) on the loop until the connections settle", function()
    mock:seed(3)
    mock:config { transition_ms = 600 }
    local c = client()
    local got = call(c, "accept", SID, helper.ids(3), { wait = 20 })
    assert.is_nil(got[2], tostring(got[2]))
    for _, conn in ipairs(got[1]) do assert.are.equal("accepted", conn.status) end
    -- the action, then at least one poll per connection
    assert.is_true(#mock:log() >= 6, "requests: " .. #mock:log())
    c:close()
  end)

  it("close() with calls in flight: each callback gets vpcep.cancelled once, no handle is left", function()
    local ids = mock:seed(6)
    mock:config { delay_ms = 2000 }
    local c = client { concurrency = 2 }
    local calls = {}
    for k = 1, 3 do
      c:accept(SID, { ids[2 * k - 1], ids[2 * k] }, function(conns, err)
        calls[k] = (calls[k] or 0) + 1
        assert.is_nil(conns)
        assert.are.equal("vpcep.cancelled", err.code)
        assert.is_true(vpcep.is_error(err))
      end)
    end
    -- until the requests are out
    assert.is_true(run_until(function() return #mock:log() >= 1 end))
    assert.is_true(c:pending() == 3)
    c:close()
    c:close()
    assert.are.equal(0, c._carrier:in_flight())
    assert.is_true(run_until(function() return calls[1] and calls[2] and calls[3] end))
    uv.run("nowait")
    assert.are.same({ 1, 1, 1 }, calls)
    assert.are.same({}, reported) -- the callbacks' own assertions held
    assert.are.equal(0, c:pending())
    assert.are.equal(0, handles())
    -- a closed client's calls fail (later, through the callback)
    local got = call(c, "accept", SID, ids[1])
    assert.are.equal("vpcep.invalid_argument", got[2].code)
  end)

  it("an error raised in a callback is reported once and the client goes on", function()
    local ids = mock:seed(2)
    local c = client()
    local ran = 0
    c:accept(SID, ids[1], function() ran = ran + 1; error("boom in the callback") end)
    assert.is_true(run_until(function() return ran == 1 end))
    uv.run("nowait")
    assert.are.equal(1, #reported)
    assert.matches("boom in the callback", reported[1])
    local got = call(c, "accept", SID, ids[2])
    assert.are.equal("accepted", got[1][1].status)
    assert.are.equal(1, ran)
    assert.are.equal(1, #reported)
    c:close()
  end)

  it("an idle client holds no handle of the loop, and one dropped without close() is collected", function()
    local ids = mock:seed(3)
    local gone = setmetatable({}, { __mode = "k" })
    do
      local c = client()
      local got = call(c, "accept", SID, ids)
      assert.is_nil(got[2])
      uv.run("nowait")
      assert.are.equal(0, handles())
      gone[c], gone[c._c] = true, true
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(gone))
  end)

  it("a client and carrier dropped with a transfer out are collected, the transfer cut off", function()
    mock:seed(1)
    mock:config { delay_ms = 300 }
    local gone = setmetatable({}, { __mode = "k" })
    do
      local c = helper.client(mock)
      local op = c:plan("accept", SID, "ep-0000")
      local _, x = op:next()
      local carrier = c:_carrier()
      carrier:start(op, x[1])
      assert.are.equal(1, carrier:in_flight())
      gone[c], gone[carrier], gone[op] = true, true, true
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(gone))
  end)

  describe("reconcile and each_connection (vpcep.reconcile in a coroutine)", function()
    local function seed() helper.seed_two_domains(mock) end

    local outcomes = helper.outcomes

    local function writes() return helper.writes(mock) end

    it("a table policy: returns before the callback, which gets the report; pending() counts it once", function()
      seed()
      mock:config { delay_ms = 50 }
      local c = client()
      local got
      c:reconcile(SID, { accept_domains = { "dA" }, otherwise = "reject" }, function(...)
        got = { n = select("#", ...), ... }
      end)
      assert.is_nil(got)
      assert.are.equal(1, c:pending())
      local saw_pending = {}
      assert.is_true(run_until(function()
        if got == nil then saw_pending[c:pending()] = true end
        return got ~= nil
      end))
      assert.are.same({ [1] = true }, saw_pending) -- never 0 before the end, never the inner calls counted
      assert.are.equal(0, c:pending())
      assert.is_nil(got[2])
      local r = got[1]
      assert.are.same({ 3, 2, 0, 0 }, { r.accepted, r.rejected, r.left, r.failed })
      assert.are.same({ a1 = "accepted", a2 = "accepted", a3 = "accepted", b1 = "rejected", b2 = "rejected" },
        outcomes(r))
      local w, n = writes()
      assert.are.same({ a1 = "receive", a2 = "receive", a3 = "receive", b1 = "reject", b2 = "reject" }, w)
      assert.are.equal(5, n)
      local state = mock:by_id()
      assert.are.equal("accepted", state.a3.status)
      assert.are.equal("rejected", state.b2.status)
      -- the blocking client plans the same
      seed()
      local b = helper.client(mock)
      local want = b:reconcile(SID, { accept_domains = { "dA" }, otherwise = "reject" }, { dry_run = true })
      b:close()
      for i, e in ipairs(want.plan) do
        assert.are.same({ e.id, e.action, e.reason }, { r.plan[i].id, r.plan[i].action, r.plan[i].reason })
      end
      c:close()
    end)

    it("a policy function with describe; a dry run sends only list reads", function()
      seed()
      local c = client()
      local got = call(c, "reconcile", SID, function(conn)
        if conn.id == "a2" then return "reject", "retired" end
        if conn.domain_id == "dA" then return "accept", "ours" end
      end, { describe = true })
      assert.is_nil(got[2], tostring(got[2]))
      assert.are.same({ a1 = "accepted", a2 = "rejected", a3 = "accepted", b1 = "left", b2 = "left" },
        outcomes(got[1]))
      assert.are.same({ a1 = "describe,receive", a2 = "describe,reject", a3 = "describe,receive" }, (writes()))
      assert.matches(": reject: retired$", mock:by_id().a2.description)
      mock:reset()
      seed()
      got = call(c, "reconcile", SID, { accept_domains = { "dA" }, otherwise = "reject" },
        { dry_run = true, describe = true })
      assert.is_nil(got[2])
      assert.are.same({ 3, 2 }, { got[1].accepted, got[1].rejected })
      local _, n = writes()
      assert.are.equal(0, n)
      assert.is_true(#mock:log() >= 1)
      c:close()
    end)

    it("failures: that connection alone, the callback gets (nil, err) with err.report; bad input too", function()
      seed()
      mock:fault { match = { method = "POST", endpoint = "a2" }, answer = { status = 404,
        json = { error_code = "EndPoint.0005", error_msg = "gone" } } }
      local c = client()
      local got = call(c, "reconcile", SID, function(conn)
        if conn.id == "b1" then error("cannot decide b1") end
        if conn.domain_id == "dA" then return "accept" end
      end)
      assert.is_nil(got[1])
      local err = got[2]
      assert.is_true(vpcep.is_error(err))
      assert.are.equal(2, err.failed)
      local r = err.report
      assert.are.same({ 2, 0, 1, 2 }, { r.accepted, r.rejected, r.left, r.failed })
      assert.are.same({ a1 = "accepted", a2 = "failed", a3 = "accepted", b1 = "failed", b2 = "left" }, outcomes(r))
      assert.are.equal("accepted", mock:by_id().a3.status)
      -- bad input reaches the callback, nothing sent; a missing callback raises at once
      mock:clear_log()
      got = call(c, "reconcile", SID, { otherwise = "accept" })
      assert.are.equal("vpcep.invalid_argument", got[2].code)
      got = call(c, "reconcile", SID, {}, { concurrency = 0 })
      assert.are.equal("vpcep.invalid_argument", got[2].code)
      got = call(c, "reconcile", "bad/id", {})
      assert.are.equal("vpcep.invalid_argument", got[2].code)
      assert.are.equal(0, #mock:log())
      helper.einval(c.reconcile, c, SID, {})
      helper.einval(c.each_connection, c, SID, function() end)
      helper.einval(c.reconcile, {}, SID, {}, function() end)
      c:close()
    end)

    it("each_connection: every connection once, in order, one page at a time; on_done(n, nil)", function()
      mock:seed(2500)
      local c = client()
      local seen, pages_at = {}, {}
      local done
      c:each_connection(SID, { limit = 1000 }, function(conn)
        seen[#seen + 1] = conn.id
        pages_at[#seen] = #mock:log() -- how many pages were asked when this one came
      end, function(...) done = { n = select("#", ...), ... } end)
      assert.is_true(run_until(function() return done ~= nil end))
      assert.are.same({ 2500, nil }, { done[1], done[2] })
      assert.are.same(helper.ids(2500), seen)
      -- lazily: the second page was asked only after the first page's connections
      assert.are.same({ 1, 1, 2, 2, 3 }, { pages_at[1], pages_at[1000], pages_at[1001], pages_at[2000],
        pages_at[2001] })
      local paths = helper.get_paths(mock:log())
      assert.are.equal(3, #paths)
      -- the query may be left out (pages of 1000)
      mock:clear_log()
      local count = 0
      done = nil
      c:each_connection(SID, function() count = count + 1 end, function(...) done = { ... } end)
      assert.is_true(run_until(function() return done ~= nil end))
      assert.are.same({ 2500, 2500 }, { done[1], count })
      assert.are.equal(3, #mock:log())
      c:close()
    end)

    it("each_connection: on_conn returning false stops; one raising, or a page failing, ends in on_done(nil, err)",
      function()
        mock:seed(1500)
        local c = client()
        local count, done = 0, nil
        c:each_connection(SID, { limit = 500 }, function()
          count = count + 1
          if count == 3 then return false end
        end, function(...) done = { ... } end)
        assert.is_true(run_until(function() return done ~= nil end))
        assert.are.same({ 3, 3 }, { count, done[1] })
        assert.are.equal(1, #mock:log()) -- no second page
        done = nil
        c:each_connection(SID, { limit = 500 }, function(conn)
          if conn.id == "ep-0007" then error("on_conn broke") end
        end, function(...) done = { n = select("#", ...), ... } end)
        assert.is_true(run_until(function() return done ~= nil end))
        assert.is_nil(done[1])
        assert.matches("on_conn broke", tostring(done[2]))
        mock:fault { match = { method = "GET", path_contains = "offset=500" }, answer = { status = 404,
          json = { error_code = "EndPoint.0005", error_msg = "gone" } } }
        count, done = 0, nil
        c:each_connection(SID, { limit = 500 }, function() count = count + 1 end, function(...) done = { ... } end)
        assert.is_true(run_until(function() return done ~= nil end))
        assert.are.equal(500, count)
        assert.is_nil(done[1])
        assert.are.equal("EndPoint.0005", done[2].code)
        mock:clear_log()
        done = nil
        c:each_connection(SID, { limit = 0 }, function() end, function(...) done = { ... } end)
        assert.is_true(run_until(function() return done ~= nil end))
        assert.are.equal("vpcep.invalid_argument", done[2].code)
        assert.are.equal(0, #mock:log())
        assert.are.same({}, reported)
        c:close()
      end)

    it("close() during a reconcile: its callback once, with the error of the call it was making", function()
      seed()
      mock:config { delay_ms = 2000 }
      local c = client()
      local calls, last = 0, nil
      c:reconcile(SID, { accept_domains = { "dA" } }, function(report, err)
        calls = calls + 1
        last = { report, err }
      end)
      assert.is_true(run_until(function() return #mock:log() >= 1 end))
      c:close()
      assert.is_true(run_until(function() return calls > 0 end))
      uv.run("nowait")
      assert.are.equal(1, calls)
      assert.is_nil(last[1])
      assert.are.equal("vpcep.cancelled", last[2].code)
      assert.are.equal(0, c:pending())
    end)

    it("opts.concurrency: at most that many out at once, in accept, describe and reconcile", function()
      local ids = mock:seed(10)
      mock:config { delay_ms = 150 }
      local c = client { concurrency = 8 }
      local texts = {}
      for _, id in ipairs(ids) do texts[id] = "t " .. id end
      local most = {}
      local runs = {
        { "accept", SID, ids, { concurrency = 2 } },
        { "describe", SID, texts, { concurrency = 3 } },
        { "reconcile", SID, { otherwise = "reject" }, { statuses = { "accepted" }, concurrency = 2 } },
        { "reconcile", SID, { accept_domains = { "d0" } }, { statuses = { "rejected" } } },
      }
      for k, args in ipairs(runs) do
        mock:clear_stats()
        local got = call(c, unpack(args))
        assert.is_nil(got[2], tostring(got[2]))
        most[k] = mock:stats().max_in_flight
      end
      assert.are.same({ 2, 3, 2 }, { most[1], most[2], most[3] })
      assert.is_true(most[4] > 3, "the client's concurrency gave only " .. most[4])
      c:close()
    end)
  end)

  it("vpcep._error makes error objects like the client's own", function()
    local err = vpcep._error("vpcep.cancelled", "gone")
    assert.is_true(vpcep.is_error(err))
    assert.are.same({ "vpcep.cancelled", "gone", false }, { err.code, err.message, err.retryable })
    assert.are.equal("vpcep: vpcep.cancelled: gone", tostring(err))
    helper.einval(vpcep._error, "vpcep.cancelled")
    helper.einval(vpcep._error, 1, "x")
  end)

  it("a plan cannot be fed while the client carries it", function()
    mock:seed(1)
    mock:config { delay_ms = 300 }
    local c = helper.client(mock)
    local carrier = c:_carrier()
    assert.are.equal(carrier, c:_carrier())
    local op = c:plan("accept", SID, "ep-0000")
    local what, x = op:next()
    assert.are.equal("send", what)
    local other = helper.client(mock)
    helper.einval(other:_carrier().start, other:_carrier(), op, x[1])
    carrier:start(op, x[1])
    helper.einval(op.feed, op, x[1], 200, "{}")
    helper.einval(carrier.start, carrier, op, x[1])
    carrier:cancel(op)
    assert.are.equal(0, carrier:in_flight())
    c:close()
    other:close()
    -- a closed client's carrier does nothing, and its plans are cancelled
    assert.are.same({}, { carrier:timeout() })
    assert.are.equal("vpcep.cancelled", helper.raised(op.next, op).code)
  end)
end)
