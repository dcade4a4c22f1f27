-- spec/bulk_memory_spec.lua: the native state of a bulk call is bounded
-- by its concurrency, not by its number of ids. A try borrows its transfer
-- (URL, body, answer buffers, the request's headers) from the batch's
-- slots and gives it back when its answer is read, so 2,000 ids use no
-- more slots than 200; every slot is freed when the call ends. Counted by
-- vpcep._debug (only there with VPCEP_DEBUG set), in a child process
-- (spec/bulk_memory_child.lua): counts, never times.
local helper = require "spec.helper"

local q = helper.shell_quote

describe("bulk call memory", function()
  local mock
  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function() mock:reset() end)

  local function run(runs)
    local cmd = "VPCEP_DEBUG=1 LUA_PATH=" .. q(package.path) .. " LUA_CPATH=" .. q(package.cpath)
      .. " timeout 300 " .. q(helper.interpreter()) .. " spec/bulk_memory_child.lua " .. q(mock.url) .. " "
      .. q(helper.json.encode(runs))
    local exited_well, text = helper.run(cmd)
    local line = text:match("RESULT ([^\n]*)")
    assert(line, "the child printed no result:\n" .. text)
    assert(exited_well, "the child failed after its result:\n" .. text)
    return helper.json.decode(line)
  end

  -- what a run's counts must say: every result in order, some slots used,
  -- no more than `bound`, all of them freed
  local function bounded(r, n, bound)
    assert.are.equal(n, r.results)
    assert.is_true(r.in_order, "results out of input order")
    assert.are.equal(n, r.accepted)
    assert.is_true(r.peak - r.before >= 1, "no slot was counted: the counter does not count")
    assert.is_true(r.peak - r.before <= bound,
      string.format("%d slots live at once for %d ids (bound %d)", r.peak - r.before, n, bound))
    assert.are.equal(r.before, r.during_end, "slots still live when the call returned")
    assert.are.equal(r.before, r.after, "slots still live after the client was closed")
  end

  it("2,000 ids use no more transfer slots than 200 (blocking driver, concurrency 8)", function()
    mock:service{ count = 2000, prefix = "ep-" }
    local sent = mock:stats().requests
    local r = run{ { n = 200, concurrency = 8 }, { n = 2000, concurrency = 8 } }
    -- 8 out, and at most 8 more ended but not yet read
    bounded(r[1], 200, 16)
    bounded(r[2], 2000, 16)
    assert.is_true(r[2].peak - r[2].before <= r[1].peak - r[1].before + 8,
      "the slots grew with the number of ids")
    assert.are.equal(2200, mock:stats().requests - sent)
  end)

  it("stays bounded with tries retried and backed off", function()
    mock:service{ count = 1000, prefix = "ep-" }
    local rules = {}
    for i = 0, 990, 30 do
      rules[#rules + 1] = { match = { endpoint = string.format("ep-%04d", i) }, times = 1,
                            answer = { status = 503, json = { error_code = "SYS.503", error_msg = "busy" } } }
    end
    mock:faults(rules)
    local sent = mock:stats().requests
    local r = run{ { n = 1000, concurrency = 4, retries = 2 } }
    bounded(r[1], 1000, 8)
    assert.are.equal(1000 + #rules, mock:stats().requests - sent, "each faulted id tried once more")
  end)

  it("a plan lends each request handed out one slot, and takes it back when it is fed", function()
    mock:service{ count = 600, prefix = "ep-" }
    local r = run{ { n = 60, concurrency = 6, driver = "plan" }, { n = 600, concurrency = 6, driver = "plan" } }
    bounded(r[1], 60, 6)
    bounded(r[2], 600, 6)
    assert.are.equal(6, r[2].most_out, "the plan did not hand out `concurrency` requests at once")
  end)
end)
