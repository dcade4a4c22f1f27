-- spec/concurrency_spec.lua: opts.concurrency per call, for accept, reject,
-- describe and reconcile: at most that many requests out at once, whatever
-- the client's own concurrency (the mock counts how many it was answering
-- at once, each answer held back by delay_ms); a bad value refused before
-- anything is sent; and the same limit in the plans the non-blocking hosts
-- drive (client:plan), where the first step hands out that many requests.
local helper = require "spec.helper"

-- the checkout's Lua part (reconcile), whatever --lpath busted was given
package.path = helper.spec_dir .. "/../lua/?.lua;" .. package.path

local D = helper.defaults
local SID = D.service_id

local function descriptions(ids)
  local t = {}
  for _, id in ipairs(ids) do t[id] = "text of " .. id end
  return t
end

describe("opts.concurrency", function()
  local mock, c
  -- the client's own concurrency is 8: a call that asks for 2 must stay below it
  local hooks = helper.mock_and_client({ retries = 0, concurrency = 8 }, function(m, client) mock, c = m, client end)
  setup(hooks.setup)
  teardown(hooks.teardown)
  before_each(hooks.before_each)

  -- The most requests the mock was answering at once during f().
  local function most_at_once(f)
    mock:clear_stats()
    f()
    return mock:stats().max_in_flight
  end

  local calls = {
    accept = function(ids, opts) return c:accept(SID, ids, opts) end,
    reject = function(ids, opts) return c:reject(SID, ids, opts) end,
    describe = function(ids, opts) return c:describe(SID, descriptions(ids), opts) end,
  }

  for _, name in ipairs({ "accept", "reject", "describe" }) do
    it(name .. ": concurrency = 2 has at most 2 out; without it, the client's 8", function()
      local ids = mock:seed(12)
      mock:config { delay_ms = 150 }
      local res
      local two = most_at_once(function() res = calls[name](ids, { concurrency = 2 }) end)
      assert.equal(12, #res)
      assert.equal(2, two)
      local one = most_at_once(function() res = calls[name](ids, { concurrency = 1 }) end)
      assert.equal(12, #res)
      assert.equal(1, one)
      local default = most_at_once(function() res = calls[name](ids) end)
      assert.equal(12, #res)
      assert.is_true(default > 2, "the client's concurrency gave only " .. default .. " at once")
      -- every request went: 3 rounds of 12
      assert.equal(36, #mock:log())
    end)
  end

  it("accept with wait: the polls keep to the call's concurrency too", function()
    local ids = mock:seed(6)
    mock:config { delay_ms = 100, transition_ms = 300 }
    local res
    local n = most_at_once(function() res = c:accept(SID, ids, { concurrency = 2, wait = 30 }) end)
    for i = 1, 6 do assert.equal("accepted", res[i].status) end
    assert.equal(2, n)
    local polls = 0
    for _, e in ipairs(mock:log()) do
      if e.method == "GET" then polls = polls + 1 end
    end
    assert.is_true(polls >= 2, "no polling happened (" .. polls .. " GETs)")
  end)

  it("reconcile passes it to its describe, accept and reject calls", function()
    local eps = {}
    for i = 1, 8 do eps[i] = { id = "a" .. i, domain_id = "dA" } end
    for i = 1, 8 do eps[8 + i] = { id = "b" .. i, domain_id = "dB" } end
    mock:service { endpoints = eps }
    mock:config { delay_ms = 150 }
    local report
    local n = most_at_once(function()
      report = c:reconcile(SID, { accept_domains = { "dA" }, otherwise = "reject" },
        { concurrency = 2, describe = true })
    end)
    assert.equal(8, report.accepted)
    assert.equal(8, report.rejected)
    assert.equal(2, n)
    local puts, posts = 0, 0
    for _, e in ipairs(mock:log()) do
      if e.method == "PUT" then puts = puts + 1 elseif e.method == "POST" then posts = posts + 1 end
    end
    assert.equal(16, puts)
    assert.equal(16, posts)
  end)

  it("reconcile without it: the client's concurrency", function()
    local eps = {}
    for i = 1, 12 do eps[i] = { id = "a" .. i, domain_id = "dA" } end
    mock:service { endpoints = eps }
    mock:config { delay_ms = 150 }
    local report
    local n = most_at_once(function() report = c:reconcile(SID, { accept_domains = { "dA" } }) end)
    assert.equal(12, report.accepted)
    assert.is_true(n > 2, "only " .. n .. " at once")
  end)

  describe("refuses a bad value before anything is sent", function()
    local bad = { 0, 65, 1.5, -1, "x", "2", true, 0 / 0, math.huge }
    for _, v in ipairs(bad) do
      it(string.format("%s (%s)", tostring(v), type(v)), function()
        mock:seed(2)
        local o = { concurrency = v }
        helper.einval(c.accept, c, SID, { "ep-0000", "ep-0001" }, o)
        helper.einval(c.reject, c, SID, { "ep-0000", "ep-0001" }, o)
        helper.einval(c.describe, c, SID, { ["ep-0000"] = "x" }, o)
        helper.einval(c.reconcile, c, SID, { accept_domains = { "d0" } }, o)
        helper.einval(c.plan, c, "accept", SID, { "ep-0000" }, o)
        assert.equal(0, #mock:log())
      end)
    end

    it("describe takes no other option", function()
      mock:seed(1)
      helper.einval(c.describe, c, SID, { ["ep-0000"] = "x" }, { wait = 1 })
      helper.einval(c.describe, c, SID, { ["ep-0000"] = "x" }, "fast")
      assert.equal(0, #mock:log())
    end)

    it("takes 1 and 64, the ends of the range", function()
      local ids = mock:seed(3)
      assert.equal(3, #c:accept(SID, ids, { concurrency = 1 }))
      assert.equal(3, #c:reject(SID, ids, { concurrency = 64 }))
      assert.equal(6, #mock:log())
    end)
  end)

  describe("in client:plan (the non-blocking hosts' driver)", function()
    -- The numbers of the requests the first step hands out.
    local function first_step(method, arg, opts)
      local op = c:plan(method, SID, arg, opts)
      local what, x = op:next()
      assert.equal("send", what)
      -- nothing answered yet: no more may go out
      local again = op:next()
      assert.equal("wait", again)
      return #x
    end

    it("hands out at most opts.concurrency requests, else the client's", function()
      local ids = {}
      for i = 1, 20 do ids[i] = "ep-" .. i end
      assert.equal(3, first_step("accept", ids, { concurrency = 3 }))
      assert.equal(8, first_step("accept", ids))
      assert.equal(1, first_step("reject", ids, { concurrency = 1 }))
      assert.equal(5, first_step("describe", descriptions(ids), { concurrency = 5 }))
      assert.equal(8, first_step("describe", descriptions(ids)))
      assert.equal(0, #mock:log())
    end)
  end)
end)
