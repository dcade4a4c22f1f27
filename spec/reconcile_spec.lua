-- spec/reconcile_spec.lua: client:reconcile(service_id, policy [, opts]):
-- both policy forms, the plan and the report, dry runs (nothing but list
-- reads), describe (each reason written, within the service's rules, before
-- the action), a policy that raises or answers nonsense failing that
-- connection alone, partial failures raising with err.report, and never
-- the same action twice on one connection. What the mock saw is compared
-- with what the plan said.
local helper = require "spec.helper"
local vpcep = require "vpcep"

-- the checkout's Lua part, whatever --lpath busted was given
package.path = helper.spec_dir .. "/../lua/?.lua;" .. package.path

local json = helper.json
local D = helper.defaults
local SID = D.service_id

-- Pending connections from dA (p1..p3), dB (p4, p5), dC (p6, p7); one
-- accepted of dA and one rejected of dB.
local function seed(mock)
  mock:service { endpoints = {
    { id = "p1", domain_id = "dA" }, { id = "p2", domain_id = "dA" }, { id = "p3", domain_id = "dA" },
    { id = "p4", domain_id = "dB" }, { id = "p5", domain_id = "dB" },
    { id = "p6", domain_id = "dC" }, { id = "p7", domain_id = "dC" },
    { id = "acc", domain_id = "dA", status = "accepted" }, { id = "rej", domain_id = "dB", status = "rejected" },
  } }
end

-- What the mock was asked to change: { [id] = {"receive"|"reject"|"describe", ...} } and the order.
local function writes(mock)
  local by_id, order = {}, {}
  for _, e in ipairs(mock:log()) do
    local what, id
    if e.method == "POST" then
      local doc = json.decode(e.body)
      what, id = doc.action, doc.endpoints[1]
    elseif e.method == "PUT" then
      what, id = "describe", json.decode(e.body).connections[1].id
    end
    if what then
      by_id[id] = by_id[id] or {}
      table.insert(by_id[id], what)
      order[#order + 1] = what
    end
  end
  return by_id, order
end

local function by_plan_id(report)
  local m = {}
  for i, e in ipairs(report.plan) do m[e.id] = { entry = e, result = report.results[i] } end
  return m
end

-- The server's state agrees with the plan: accepted, rejected, or as listed.
local function assert_state_follows(mock, report)
  local s = mock:by_id()
  for _, e in ipairs(report.plan) do
    if e.outcome == "accepted" then assert.equal("accepted", s[e.id].status, e.id)
    elseif e.outcome == "rejected" then assert.equal("rejected", s[e.id].status, e.id)
    elseif e.outcome == "left" or e.outcome == "planned" then assert.equal(e.status, s[e.id].status, e.id) end
  end
end

describe("client:reconcile", function()
  local mock, c

  setup(function()
    mock = helper.start()
    c = helper.client(mock, { retries = 0 })
  end)
  teardown(function()
    c:close()
    mock:stop()
  end)
  before_each(function()
    mock:reset()
    seed(mock)
  end)

  describe("a policy table", function()
    it("accepts accept_domains, rejects reject_domains, leaves the rest, each with one request", function()
      local report = c:reconcile(SID, { accept_domains = { "dA" }, reject_domains = { "dB" } })
      assert.equal(3, report.accepted)
      assert.equal(2, report.rejected)
      assert.equal(2, report.left)
      assert.equal(0, report.failed)
      assert.equal(7, #report.plan)          -- the pending ones only (default statuses)
      assert.equal(7, #report.results)
      local m = by_plan_id(report)
      assert.same({ "p1", "p2", "p3", "p4", "p5", "p6", "p7" }, (function()
        local t = {}
        for i, e in ipairs(report.plan) do t[i] = e.id end
        return t
      end)())
      assert.equal("accept", m.p1.entry.action)
      assert.equal("dA", m.p1.entry.domain_id)
      assert.equal("domain dA is in accept_domains", m.p1.entry.reason)
      assert.equal("accepted", m.p1.result.status)
      assert.equal("reject", m.p4.entry.action)
      assert.equal("domain dB is in reject_domains", m.p4.entry.reason)
      assert.equal("rejected", m.p4.result.status)
      assert.equal("leave", m.p6.entry.action)
      assert.equal("domain dC is in no list", m.p6.entry.reason)
      assert.equal("p6", m.p6.result.id)      -- as listed
      assert_state_follows(mock, report)
      local w = writes(mock)
      assert.same({ p1 = { "receive" }, p2 = { "receive" }, p3 = { "receive" }, p4 = { "reject" },
        p5 = { "reject" } }, w)
      local s = mock:by_id()
      assert.equal("2024-01-01T00:00:07Z", s.acc.updated_at)   -- not pending: not looked at
    end)

    it("otherwise = \"reject\" rejects every other domain", function()
      local report = c:reconcile(SID, { accept_domains = { "dA" }, otherwise = "reject" })
      assert.equal(3, report.accepted)
      assert.equal(4, report.rejected)
      assert.equal(0, report.left)
      local m = by_plan_id(report)
      assert.equal("domain dC is in no list (otherwise = reject)", m.p7.entry.reason)
      assert.equal("rejected", mock:by_id().p7.status)
    end)

    it("an empty table leaves everything and sends only the list read", function()
      local report = c:reconcile(SID, {})
      assert.equal(7, report.left)
      assert.same({}, writes(mock))
      assert.equal(1, #mock:log())
    end)
  end)

  describe("a policy function", function()
    it("decides each connection once, with its reason; nil and \"leave\" leave it", function()
      local seen = {}
      local report = c:reconcile(SID, function(conn)
        seen[#seen + 1] = conn.id
        assert(conn.status == "pendingAcceptance" and conn.marker_id and conn.domain_id)
        if conn.id == "p1" or conn.id == "p6" then return "accept", "picked " .. conn.id end
        if conn.id == "p2" then return "reject" end
        if conn.id == "p3" then return "leave", "not now" end
        return nil
      end)
      assert.same({ "p1", "p2", "p3", "p4", "p5", "p6", "p7" }, seen)
      local m = by_plan_id(report)
      assert.equal("picked p6", m.p6.entry.reason)
      assert.equal("the policy said reject", m.p2.entry.reason)
      assert.equal("not now", m.p3.entry.reason)
      assert.equal("leave", m.p4.entry.action)
      assert.equal("the policy said leave", m.p4.entry.reason)
      assert.same({ 2, 1, 4, 0 }, { report.accepted, report.rejected, report.left, report.failed })
      assert.same({ p1 = { "receive" }, p6 = { "receive" }, p2 = { "reject" } }, writes(mock))
      assert_state_follows(mock, report)
    end)

    it("a policy that raises, or answers anything else, fails that connection alone", function()
      local err = helper.raised(c.reconcile, c, SID, function(conn)
        if conn.id == "p1" then error("boom in the policy") end
        if conn.id == "p2" then error({ odd = true }) end
        if conn.id == "p3" then return "maybe" end
        if conn.id == "p4" then return 42 end
        if conn.id == "p5" then return "accept", { "a", "table" } end
        if conn.id == "p6" then error(vpcep._error("my.code", "an error object")) end
        return "accept", "fine"
      end)
      local report = err.report
      assert.is_table(report)
      assert.equal(6, report.failed)
      assert.equal(1, report.accepted)
      assert.equal(6, err.failed)
      assert.equal("vpcep.policy", err.code)
      assert.equal("p1", err.endpoint)
      assert.matches("6 of 7", err.message)
      assert.matches("boom in the policy", err.message, 1, true)
      local m = by_plan_id(report)
      for _, id in ipairs({ "p1", "p2", "p3", "p4", "p5", "p6" }) do
        local e = m[id].entry
        assert.equal("error", e.action, id)
        assert.equal("failed", e.outcome, id)
        assert.is_true(vpcep.is_error(e.error), id)
        assert.equal("vpcep.policy", e.error.code, id)
        assert.equal(id, e.error.endpoint)
        assert.equal(e.error, m[id].result)
      end
      assert.matches('"maybe"', m.p3.entry.error.message, 1, true)
      assert.matches("a number", m.p4.entry.error.message, 1, true)
      assert.matches("reason must be a string", m.p5.entry.error.message, 1, true)
      assert.equal("my.code", m.p6.entry.error.cause.code)
      assert.equal("accepted", m.p7.result.status)
      assert.same({ p7 = { "receive" } }, writes(mock))
      assert.equal(err.results, report.results)
    end)
  end)

  describe("opts.dry_run", function()
    it("decides and returns the plan, sending nothing but the list reads", function()
      local report = c:reconcile(SID, { accept_domains = { "dA" }, reject_domains = { "dB" } },
        { dry_run = true, describe = true, statuses = { "pendingAcceptance", "accepted", "rejected" } })
      assert.is_true(report.dry_run)
      assert.equal(9, #report.plan)
      for _, e in ipairs(mock:log()) do assert.equal("GET", e.method) end
      assert.equal(3, #mock:log())   -- one list per status
      local m = by_plan_id(report)
      assert.equal("planned", m.p1.entry.outcome)
      assert.equal("accept", m.p1.entry.action)
      assert.equal("planned", m.p4.entry.outcome)
      assert.equal("left", m.p6.entry.outcome)
      -- already where the action would put them: nothing to do
      assert.equal("leave", m.acc.entry.action)
      assert.equal("already accepted (domain dA is in accept_domains)", m.acc.entry.reason)
      assert.equal("leave", m.rej.entry.action)
      -- the counts say what would be done
      assert.same({ 3, 2, 4, 0 }, { report.accepted, report.rejected, report.left, report.failed })
      assert_state_follows(mock, report)
      assert.equal("", mock:by_id().p1.description)
    end)

    it("still fails a connection whose policy raised, and raises with the report", function()
      local err = helper.raised(c.reconcile, c, SID, function(conn)
        if conn.id == "p2" then error("no") end
      end, { dry_run = true })
      assert.equal(1, err.report.failed)
      assert.equal(6, err.report.left)
      for _, e in ipairs(mock:log()) do assert.equal("GET", e.method) end
    end)
  end)

  describe("opts.describe", function()
    it("writes each acted-on connection's reason with a timestamp, before its action", function()
      local report = c:reconcile(SID, { accept_domains = { "dA" }, reject_domains = { "dB" } }, { describe = true })
      local s = mock:by_id()
      for _, id in ipairs({ "p1", "p2", "p3" }) do
        assert.matches("^vpcep reconcile %d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ: accept: domain dA is in accept_domains$",
          s[id].description)
      end
      assert.matches("^vpcep reconcile %S+: reject: domain dB is in reject_domains$", s.p4.description)
      assert.equal("", s.p6.description)      -- left: not written
      local w, order = writes(mock)
      assert.same({ "describe", "receive" }, w.p1)
      assert.same({ "describe", "reject" }, w.p5)
      assert.is_nil(w.p6)
      -- every description went out before any action
      local last_describe, first_action = 0, math.huge
      for i, what in ipairs(order) do
        if what == "describe" then last_describe = i elseif i < first_action then first_action = i end
      end
      assert.is_true(last_describe < first_action)
      local m = by_plan_id(report)
      assert.is_true(m.p1.entry.described)
      assert.equal(s.p1.description, m.p1.entry.description)
    end)

    it("keeps a description within the service's rules: no '<' or '>', no control character, 512 bytes", function()
      local long = string.rep("\226\130\172", 200)   -- 600 bytes of euro signs
      c:reconcile(SID, function(conn)
        if conn.id == "p1" then return "accept", "<script>alert(1)</script>\nnext\tline \255 bad byte" end
        if conn.id == "p2" then return "accept", long end
      end, { describe = true })
      local s = mock:by_id()
      assert.matches(": accept: %(script%)alert%(1%)%(/script%) next line %? bad byte$", s.p1.description)
      assert.is_nil(s.p1.description:find("[<>%c]"))
      assert.is_true(#s.p2.description <= 512)
      assert.is_true(#s.p2.description > 500)
      -- cut between characters: still UTF-8 (the mock would not have taken it otherwise; check it too)
      assert.matches("\226\130\172$", s.p2.description)
      assert.equal("accepted", s.p2.status)
    end)

    it("a description that fails fails its connection, whose action is then not sent", function()
      local one = helper.client(mock, { retries = 0, concurrency = 1 })
      -- the first description request (ids go in byte order: p1 first) fails
      mock:fault { match = { method = "PUT" }, answer = { status = 500,
        json = { error_code = "EndPoint.0500", error_msg = "down" } } }
      local err = helper.raised(one.reconcile, one, SID, { accept_domains = { "dA" } }, { describe = true })
      one:close()
      assert.equal("EndPoint.0500", err.code)
      assert.equal("p1", err.endpoint)
      local m = by_plan_id(err.report)
      assert.equal("failed", m.p1.entry.outcome)
      assert.is_false(m.p1.entry.described)
      assert.equal("accepted", m.p2.entry.outcome)
      local w = writes(mock)
      assert.same({ "describe" }, w.p1)              -- no receive for p1
      assert.same({ "describe", "receive" }, w.p2)
      assert.equal("pendingAcceptance", mock:by_id().p1.status)
    end)

    it("writes 1200 descriptions in two describe calls and accepts 1200 in one bulk call", function()
      mock:service { count = 1200, prefix = "ep-", domain_id = "dA" }
      local report = c:reconcile(SID, { accept_domains = { "dA" } }, { describe = true })
      assert.equal(1200, report.accepted)
      local w = writes(mock)
      local n = 0
      for _, list in pairs(w) do
        n = n + 1
        assert.same({ "describe", "receive" }, list)
      end
      assert.equal(1200, n)
    end)
  end)

  describe("failures", function()
    it("partial failures: the others done, the call raises with err.report", function()
      mock:service { endpoints = {
        { id = "p1", domain_id = "dA" },
        { id = "p2", domain_id = "dA", fail_with = { error_code = "EndPoint.2000", error_message = "no quota" } },
        { id = "p3", domain_id = "dA" }, { id = "p4", domain_id = "dB" }, { id = "p5", domain_id = "dB" },
      } }
      mock:fault { match = { method = "POST", endpoint = "p5" }, answer = { status = 404,
        json = { error_code = "EndPoint.0005", error_msg = "The requested resource does not exist." } } }
      local err = helper.raised(c.reconcile, c, SID, { accept_domains = { "dA" }, reject_domains = { "dB" } })
      local r = err.report
      assert.same({ 2, 1, 0, 2 }, { r.accepted, r.rejected, r.left, r.failed })
      assert.equal("vpcep.connection_failed", err.code)   -- the first failure's
      assert.equal("p2", err.endpoint)
      local m = by_plan_id(r)
      assert.equal("failed", m.p2.entry.outcome)
      assert.equal("EndPoint.2000", m.p2.entry.error.connection.error[1].error_code)
      assert.equal("EndPoint.0005", m.p5.entry.error.code)
      assert.equal(404, m.p5.entry.error.status)
      assert.matches("^%x+$", m.p5.entry.error.request_id)
      assert.equal("accepted", m.p1.result.status)
      assert.equal("rejected", m.p4.result.status)
      assert.is_true(vpcep.is_error(m.p5.result))
      assert_state_follows(mock, r)
    end)

    it("a listing that fails raises its error, and nothing is acted on", function()
      mock:fault { match = { method = "GET" }, answer = { status = 503, body = "busy" } }
      local err = helper.raised(c.reconcile, c, SID, { accept_domains = { "dA" } })
      assert.equal(503, err.status)
      assert.is_nil(err.report)
      assert.same({}, writes(mock))
    end)

    it("a client without an answer: every action failed, with its transport error", function()
      local gone = helper.client(mock, { retries = 0 })
      mock:fault { match = { method = "POST" }, times = 0, reset = true }
      local err = helper.raised(gone.reconcile, gone, SID, { accept_domains = { "dA" } })
      gone:close()
      assert.equal(3, err.report.failed)
      assert.equal(4, err.report.left)
      for _, e in ipairs(err.report.plan) do
        if e.action == "accept" then assert.equal("vpcep.transport", e.error.code) end
      end
    end)

    it("a safe client returns nil, err (with err.report)", function()
      local safe = vpcep.safe.new(helper.client_opts(mock, { retries = 0 }))
      local report, err = safe:reconcile(SID, function(conn) if conn.id == "p1" then error("x") end end)
      assert.is_nil(report)
      assert.equal(1, err.report.failed)
      report, err = safe:reconcile(SID, "not a policy")
      assert.is_nil(report)
      assert.equal("vpcep.invalid_argument", err.code)
      report = safe:reconcile(SID, {})
      assert.equal(7, report.left)
      safe:close()
    end)
  end)

  describe("opts.statuses and opts.wait", function()
    it("looks at the statuses asked for: an accepted connection of a domain no longer wanted is rejected", function()
      local report = c:reconcile(SID, { accept_domains = { "dA" }, reject_domains = { "dB" } },
        { statuses = { "accepted", "rejected" } })
      local m = by_plan_id(report)
      assert.equal(2, #report.plan)
      assert.equal("leave", m.acc.entry.action)   -- already accepted
      assert.equal("leave", m.rej.entry.action)
      report = c:reconcile(SID, { reject_domains = { "dA" } }, { statuses = { "accepted" } })
      assert.equal(1, report.rejected)
      assert.equal("rejected", mock:by_id().acc.status)
    end)

    it("describes and rejects a failed connection (opts.describe with statuses = { \"failed\" })", function()
      mock:service { endpoints = { { id = "f1", domain_id = "dB", status = "failed" } } }
      local report = c:reconcile(SID, { reject_domains = { "dB" } }, { statuses = { "failed" }, describe = true })
      assert.equal(1, report.rejected)
      assert.equal(0, report.failed)
      assert.is_true(report.plan[1].described)
      assert.same({ "describe", "reject" }, writes(mock).f1)
      local s = mock:by_id().f1
      assert.equal("rejected", s.status)
      assert.matches(": reject: domain dB is in reject_domains$", s.description)
    end)

    it("never acts twice on one connection, though it is listed twice", function()
      -- the creating listing names p1 again (it moved while we listed)
      mock:fault { match = { method = "GET", path_contains = "status=creating" }, answer = { status = 200,
        json = { connections = { { id = "p1", status = "creating", domain_id = "dA" } }, total_count = 1 } } }
      local calls = 0
      local report = c:reconcile(SID, function(conn)
        if conn.id == "p1" then calls = calls + 1 end
        return conn.domain_id == "dA" and "accept" or nil
      end, { statuses = { "pendingAcceptance", "creating" } })
      assert.equal(1, calls)
      assert.equal(3, report.accepted)
      assert.same({ "receive" }, writes(mock).p1)
    end)

    it("opts.wait waits until each accepted connection has left creating", function()
      mock:config { transition_ms = 200 }
      local report = c:reconcile(SID, { accept_domains = { "dA" } }, { wait = 30 })
      local m = by_plan_id(report)
      assert.equal("accepted", m.p1.result.status)
      local polled = 0
      for _, e in ipairs(mock:log()) do
        if e.method == "GET" and e.path:find("id=p1", 1, true) then polled = polled + 1 end
      end
      assert.is_true(polled >= 1)
    end)
  end)

  it("examples/policy.lua decides as it says", function()
    mock:service { endpoints = { { id = "ours", domain_id = "0a1b2c3d4e5f60718293a4b5c6d7e8f9" },
      { id = "closed", domain_id = "ffeeddccbbaa99887766554433221100" }, { id = "other", domain_id = "d9" } } }
    local policy = dofile(helper.spec_dir .. "/../examples/policy.lua")
    local report = c:reconcile(SID, policy)
    local m = by_plan_id(report)
    assert.equal("accepted", m.ours.entry.outcome)
    assert.equal("rejected", m.closed.entry.outcome)
    assert.equal("left", m.other.entry.outcome)
    assert.equal("account d9 is unknown: left for review", m.other.entry.reason)
  end)

  describe("refuses bad input before anything is sent", function()
    local cases = {
      { "no policy", nil },
      { "a string policy", "accept" },
      { "an unknown policy key", { accept_domain = { "dA" } } },
      { "accept_domains that is no array", { accept_domains = "dA" } },
      { "accept_domains with a hole", { accept_domains = { "dA", [3] = "dB" } } },
      { "a domain that is no string", { reject_domains = { 5 } } },
      { "an empty domain", { accept_domains = { "" } } },
      { "a domain in both lists", { accept_domains = { "dA" }, reject_domains = { "dA" } } },
      { "otherwise = accept", { otherwise = "accept" } },
      { "opts that is no table", {}, "dry" },
      { "an unknown option", {}, { dryrun = true } },
      { "statuses empty", {}, { statuses = {} } },
      { "an unknown status", {}, { statuses = { "sleeping" } } },
      { "a status twice", {}, { statuses = { "accepted", "accepted" } } },
      { "dry_run that is no boolean", {}, { dry_run = 1 } },
      { "describe that is no boolean", {}, { describe = "yes" } },
      { "a negative wait", {}, { wait = -1 } },
      { "concurrency 0", {}, { concurrency = 0 } },
      { "concurrency 65", {}, { concurrency = 65 } },
      { "concurrency 1.5", {}, { concurrency = 1.5 } },
      { "concurrency that is no number", {}, { concurrency = "x" } },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        helper.einval(c.reconcile, c, SID, case[2], case[3])
        assert.equal(0, #mock:log())
      end)
    end

    it("a bad service id, a closed client", function()
      helper.einval(c.reconcile, c, "bad/id", {})
      local closed = helper.client(mock)
      closed:close()
      helper.einval(closed.reconcile, closed, SID, {})
      assert.equal(0, #mock:log())
    end)
  end)
end)
