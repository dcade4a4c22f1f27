-- spec/reconcile_acceptance_spec.lua: reconcile as it will be checked. One
-- service with 3,000 connections from five accounts in every status; our
-- policies, as a table and as a function, run as client:reconcile and as
-- the `vpcep reconcile` command (a child process), dry and for real, with
-- faults between rounds. Each time, what the mock saw (its log and its
-- state) is compared with what the plan said, and the plan with what the
-- policy, applied here by the spec itself, says it should be.
local helper = require "spec.helper"
local vpcep = require "vpcep"

-- the checkout's Lua part, whatever --lpath busted was given
local ROOT = helper.spec_dir .. "/.."
package.path = ROOT .. "/lua/?.lua;" .. package.path
local flow = require "vpcep.reconcile"

local json = helper.json
local q = helper.shell_quote
local unpack = table.unpack or unpack
local function pack(...) return { n = select("#", ...), ... } end
local D = helper.defaults
local SID = D.service_id

----------------------------------------------------------------------------
-- The service: 3,000 connections, five accounts, every status

local N = 3000
local OURS1, OURS2, PARTNER, BANNED, STRANGER = "dom-ours-1", "dom-ours-2", "dom-partner", "dom-banned",
  "dom-stranger"
local DOMAINS = { OURS1, OURS2, PARTNER, BANNED, STRANGER }
-- per 100: 55 pending, 15 accepted, 10 rejected, 8 failed, 6 creating, 6 deleting
local MIX = { { "pendingAcceptance", 55 }, { "accepted", 15 }, { "rejected", 10 }, { "failed", 8 },
  { "creating", 6 }, { "deleting", 6 } }

-- Park-Miller: the same numbers on every Lua (the products stay below 2^53)
local function lcg(seed)
  local x = seed
  return function(n)
    x = (x * 16807) % 2147483647
    return x % n
  end
end

local function make_endpoints()
  local rnd = lcg(20261202)
  local eps = {}
  for i = 1, N do
    local r, status = rnd(100), nil
    for _, m in ipairs(MIX) do
      if r < m[2] then status = m[1] break end
      r = r - m[2]
    end
    eps[i] = { id = string.format("conn-%04d", i), domain_id = DOMAINS[rnd(#DOMAINS) + 1], status = status }
  end
  return eps
end
local ENDPOINTS = make_endpoints()

local function seed(mock, eps)
  mock:service { endpoints = eps or ENDPOINTS }
end

-- The seeded connections in the statuses asked for (default pending), in
-- the mock's listing order: for each status in turn, in seed order.
local function listed(statuses, eps)
  local t = {}
  for _, s in ipairs(statuses or { "pendingAcceptance" }) do
    for _, e in ipairs(eps or ENDPOINTS) do
      if e.status == s then t[#t + 1] = e end
    end
  end
  return t
end

local function pages(n) return math.max(1, math.ceil(n / 1000)) end

----------------------------------------------------------------------------
-- Our policies, and what they mean, written again here as the oracle

local TABLE_POLICY = { accept_domains = { OURS1, OURS2 }, reject_domains = { BANNED }, otherwise = "leave" }
local function table_oracle(conn)
  if conn.domain_id == OURS1 or conn.domain_id == OURS2 then return "accept" end
  if conn.domain_id == BANNED then return "reject" end
  return "leave"
end

local function number_of(id) return tonumber(id:match("(%d+)$")) end

-- a function: ours accepted, the banned rejected, a failed one cleaned up,
-- the partner's even-numbered ones accepted, the rest left with a reason
local function function_policy(conn)
  if conn.status == "failed" then return "reject", "failed connection of " .. conn.domain_id .. ": clean up" end
  if conn.domain_id == OURS1 or conn.domain_id == OURS2 then return "accept", "our account " .. conn.domain_id end
  if conn.domain_id == BANNED then return "reject", "account <" .. conn.domain_id .. "> is banned" end
  if conn.domain_id == PARTNER and number_of(conn.id) % 2 == 0 then return "accept", "partner, even: " .. conn.id end
  return nil, "no rule for " .. conn.domain_id
end
local function function_oracle(conn)
  local action = function_policy(conn) or "leave"
  -- what is so already is left
  if (action == "accept" and conn.status == "accepted") or (action == "reject" and conn.status == "rejected") then
    return "leave"
  end
  return action
end

----------------------------------------------------------------------------
-- What the mock saw

-- The mock's log: its list reads, and its writes as { method, action, id, request_id, description }.
local function seen(mock)
  local reads, writes = {}, {}
  for _, e in ipairs(mock:log()) do
    if e.method == "GET" then
      reads[#reads + 1] = e
    else
      local doc = json.decode(e.body)
      local w = { method = e.method, request_id = e.request_id }
      if e.method == "POST" then
        w.action, w.id = doc.action == "receive" and "accept" or doc.action, doc.endpoints[1]
      else
        assert.are.equal("PUT", e.method)
        assert.are.equal(1, #doc.connections)
        w.action, w.id, w.description = "describe", doc.connections[1].id, doc.connections[1].description
      end
      writes[#writes + 1] = w
    end
  end
  return reads, writes
end

-- Every read is a list read of the service, by status.
local function assert_list_reads(reads, n)
  assert.are.equal(n, #reads)
  for _, r in ipairs(reads) do
    assert.are.equal("GET", r.method)
    local prefix = "/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. SID .. "/connections?status="
    assert.are.equal(prefix, r.path:sub(1, #prefix))
    assert.matches("^%a+&limit=1000&offset=%d+$", r.path:sub(#prefix + 1))
  end
end

-- The writes by id: { [id] = { action = w, ... } }, each (id, action) seen once.
local function writes_by_id(writes)
  local m = {}
  for _, w in ipairs(writes) do
    m[w.id] = m[w.id] or {}
    assert.is_nil(m[w.id][w.action], "the mock saw " .. w.action .. " twice for " .. w.id)
    m[w.id][w.action] = w
  end
  return m
end

-- The plan is the oracle's: every listed connection once, in listing order,
-- with the oracle's action; the counts add up.
local function assert_plan(report, expect_list, oracle)
  assert.are.equal(#expect_list, #report.plan)
  local n = { accept = 0, reject = 0, leave = 0 }
  for i, e in ipairs(report.plan) do
    local conn = expect_list[i]
    assert.are.equal(conn.id, e.id)
    assert.are.equal(conn.domain_id, e.domain_id)
    assert.are.equal(oracle(conn), e.action, e.id)
    assert.is_string(e.reason)
    n[e.action] = n[e.action] + 1
  end
  assert.are.same({ n.accept, n.reject, n.leave, 0 }, { report.accepted, report.rejected, report.left, report.failed })
  assert.are.equal(#report.plan, report.accepted + report.rejected + report.left + report.failed)
  return n
end

-- The writes are the plan's: one accept or reject for each entry that says
-- so (and one describe before it when describe), none for the others.
local function assert_writes_follow(writes, plan, describe)
  local by = writes_by_id(writes)
  local acted = 0
  for _, e in ipairs(plan) do
    local w = by[e.id] or {}
    if e.action == "accept" or e.action == "reject" then
      acted = acted + 1
      assert.is_table(w[e.action], e.id .. " " .. e.action)
      local other = e.action == "accept" and "reject" or "accept"
      assert.is_nil(w[other], e.id)
      if describe then assert.is_table(w.describe, e.id) else assert.is_nil(w.describe, e.id) end
    else
      assert.is_nil(next(w), "the mock saw a write for " .. e.id .. ", planned " .. e.action)
    end
    by[e.id] = nil
  end
  assert.is_nil(next(by), "the mock saw a write for a connection of no plan entry")
  assert.are.equal(acted * (describe and 2 or 1), #writes)
end

-- The server's state is the plan's.
local function assert_state_follows(mock, plan, eps)
  local s = mock:by_id()
  local planned = {}
  for _, e in ipairs(plan) do
    planned[e.id] = true
    local want = ({ accept = "accepted", reject = "rejected" })[e.action] or e.status
    assert.are.equal(want, s[e.id].status, e.id)
  end
  for _, e in ipairs(eps or ENDPOINTS) do
    if not planned[e.id] then assert.are.equal(e.status, s[e.id].status, e.id) end
  end
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function json_lines(s)
  local t = {}
  for _, l in ipairs(lines(s)) do t[#t + 1] = json.decode(l) end
  return t
end

----------------------------------------------------------------------------
-- The command as a child process (as spec/cli_spec.lua runs it)

local LUA = helper.interpreter()
if LUA:find("/", 1, true) and LUA:sub(1, 1) ~= "/" then LUA = (os.getenv("PWD") or ".") .. "/" .. LUA end
local BIN = ROOT .. "/bin/vpcep"
local TOKEN_FILE = helper.tmpname()
helper.write_file(TOKEN_FILE, D.token .. "\n")
local ENV_NAMES = { "VPCEP_REGION", "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN",
  "VPCEP_IAM_USER", "VPCEP_IAM_DOMAIN", "VPCEP_IAM_PASSWORD", "VPCEP_METADATA", "VPCEP_METADATA_ENDPOINT",
  "HUAWEICLOUD_SDK_IAM_ENDPOINT", "HUAWEICLOUD_SDK_IDP_ID", "HUAWEICLOUD_SDK_ID_TOKEN_FILE",
  "HUAWEICLOUD_SDK_CREDENTIALS_FILE", "LUA_CPATH_5_2", "LUA_CPATH_5_3", "LUA_CPATH_5_4", "LUA_PATH_5_2",
  "LUA_PATH_5_3", "LUA_PATH_5_4" }

-- Runs bin/vpcep with args: exit code, stdout, stderr.
local function vpcep_command(mock, args, command)
  local parts = { "env" }
  for _, n in ipairs(ENV_NAMES) do parts[#parts + 1] = "-u " .. n end
  parts[#parts + 1] = "LUA_CPATH=" .. q(package.cpath)
  parts[#parts + 1] = "LUA_PATH=" .. q(ROOT .. "/lua/?.lua;;")
  parts[#parts + 1] = "VPCEP_ENDPOINT=" .. q(mock.url)
  parts[#parts + 1] = "HUAWEICLOUD_SDK_PROJECT_ID=" .. q(D.project_id)
  parts[#parts + 1] = "VPCEP_TOKEN_FILE=" .. q(TOKEN_FILE)
  parts[#parts + 1] = q(LUA) .. " " .. q(BIN) .. " " .. (command or "reconcile") .. " --service " .. q(SID)
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local out, err, rc = helper.tmpname(), helper.tmpname(), helper.tmpname()
  os.execute("( " .. table.concat(parts, " ") .. " ) </dev/null >" .. q(out) .. " 2>" .. q(err)
    .. "; echo $? >" .. q(rc))
  local code = tonumber(helper.read_file(rc))
  local o, e = helper.read_file(out), helper.read_file(err)
  os.remove(out) os.remove(err) os.remove(rc)
  return code, o, e
end

local TABLE_FLAGS = { "--accept-domain", OURS1, "--accept-domain", OURS2, "--reject-domain", BANNED }

local function flags(...)
  local t = {}
  for _, list in ipairs({ ... }) do
    for _, x in ipairs(list) do t[#t + 1] = x end
  end
  return t
end

-- A Lua file holding source; removed at the end of the test.
local function lua_file(source)
  local f = helper.tmpname() .. ".lua"
  helper.write_file(f, source)
  finally(function() os.remove(f) end)
  return f
end

-- function_policy, as a policy file
local FUNCTION_FILE_SOURCE = string.format([[
local OURS1, OURS2, PARTNER, BANNED = %q, %q, %q, %q
return function(conn)
  if conn.status == "failed" then return "reject", "failed connection of " .. conn.domain_id .. ": clean up" end
  if conn.domain_id == OURS1 or conn.domain_id == OURS2 then return "accept", "our account " .. conn.domain_id end
  if conn.domain_id == BANNED then return "reject", "account <" .. conn.domain_id .. "> is banned" end
  if conn.domain_id == PARTNER and tonumber(conn.id:match("(%%d+)$")) %% 2 == 0 then
    return "accept", "partner, even: " .. conn.id
  end
  return nil, "no rule for " .. conn.domain_id
end
]], OURS1, OURS2, PARTNER, BANNED)

----------------------------------------------------------------------------

describe("reconcile acceptance (3,000 connections, five accounts)", function()
  local mock, c

  setup(function()
    mock = helper.start()
    c = helper.client(mock, { retries = 0 })
  end)
  teardown(function()
    c:close()
    mock:stop()
    os.remove(TOKEN_FILE)
  end)
  before_each(function()
    mock:reset()
    seed(mock)
  end)

  it("the seed has every account and status (the premise of what follows)", function()
    local n = {}
    for _, e in ipairs(ENDPOINTS) do
      local k = e.status .. " " .. e.domain_id
      n[k] = (n[k] or 0) + 1
    end
    for _, m in ipairs(MIX) do
      for _, d in ipairs(DOMAINS) do assert.is_true((n[m[1] .. " " .. d] or 0) > 0, m[1] .. " " .. d) end
    end
    local pending = #listed()
    assert.is_true(pending > 1000 and pending < 2000, tostring(pending))
    assert.are.equal(N, #mock:state())
  end)

  describe("listing", function()
    it("connections: one page when limit or offset is given, every page without; each_connection streams all",
      function()
        local pending = listed()
        local page, total = c:connections(SID, { status = "pendingAcceptance", offset = 1000 })
        assert.are.same({ #pending - 1000, #pending }, { #page, total })
        assert.are.equal(pending[1001].id, page[1].id)
        page, total = c:connections(SID, { limit = 7 })
        assert.are.same({ 7, N }, { #page, total })
        assert.are.equal(ENDPOINTS[1].id, page[1].id)
        local reads = seen(mock)
        assert.are.equal(2, #reads)
        mock:clear_log()
        local all = c:connections(SID, { status = "pendingAcceptance" })
        assert.are.equal(#pending, #all)
        assert.are.equal(pages(#pending), #seen(mock))
        mock:clear_log()
        local k = 0
        for conn in c:each_connection(SID) do
          k = k + 1
          assert.are.equal(ENDPOINTS[k].id, conn.id)
          assert.are.equal(ENDPOINTS[k].status, conn.status)
        end
        assert.are.equal(N, k)
        assert.are.equal(pages(N), #seen(mock))
      end)
  end)

  describe("client:reconcile", function()
    it("a table policy: the dry run reads, the real run acts as planned, the next round acts on nothing", function()
      local expect = listed()
      local strict = c:reconcile(SID, { accept_domains = TABLE_POLICY.accept_domains,
        reject_domains = TABLE_POLICY.reject_domains, otherwise = "reject" }, { dry_run = true })
      assert.are.equal(0, assert_plan(strict, expect, function(conn)
        return table_oracle(conn) == "leave" and "reject" or table_oracle(conn)
      end).leave)
      mock:clear_log()
      local dry = c:reconcile(SID, TABLE_POLICY, { dry_run = true })
      assert.is_true(dry.dry_run)
      local n = assert_plan(dry, expect, table_oracle)
      for _, e in ipairs(dry.plan) do
        assert.are.equal(e.action == "leave" and "left" or "planned", e.outcome)
      end
      local reads, writes = seen(mock)
      assert_list_reads(reads, pages(#expect))
      assert.are.equal(0, #writes)
      assert_state_follows(mock, {})

      mock:clear_log()
      local real = c:reconcile(SID, TABLE_POLICY)
      assert.is_false(real.dry_run)
      assert_plan(real, expect, table_oracle)
      reads, writes = seen(mock)
      assert_list_reads(reads, pages(#expect))
      assert_writes_follow(writes, real.plan, false)
      assert_state_follows(mock, real.plan)
      -- each result is the service's answer, with the request id of the request that did it
      local by = writes_by_id(writes)
      for i, e in ipairs(real.plan) do
        if e.action ~= "leave" then
          assert.are.equal(({ accept = "accepted", reject = "rejected" })[e.action], e.outcome)
          assert.are.equal(by[e.id][e.action].request_id, real.results[i].request_id, e.id)
        else
          assert.are.equal("left", e.outcome)
        end
      end

      -- a fault between rounds: the list read fails; nothing is acted on
      mock:clear_log()
      mock:fault { match = { method = "GET" }, answer = { status = 503,
        json = { error_code = "APIGW.0201", error_msg = "service unavailable" } } }
      local err = helper.raised(c.reconcile, c, SID, TABLE_POLICY)
      assert.are.equal(503, err.status)
      assert.is_nil(err.report)
      reads, writes = seen(mock)
      assert.are.equal(1, #reads)
      assert.are.equal(0, #writes)

      -- the next round: only the connections left are listed, nothing is sent
      mock:clear_log()
      local again = c:reconcile(SID, TABLE_POLICY)
      assert.are.same({ 0, 0, n.leave, 0 }, { again.accepted, again.rejected, again.left, again.failed })
      assert.are.equal(n.leave, #again.plan)
      for _, e in ipairs(again.plan) do assert.are.equal(STRANGER == e.domain_id or PARTNER == e.domain_id, true) end
      reads, writes = seen(mock)
      assert_list_reads(reads, pages(n.leave))
      assert.are.equal(0, #writes)
    end)

    it("a function policy over three statuses, with describe: one description (the reason) before each action",
      function()
        local statuses = { "pendingAcceptance", "failed", "accepted" }
        local expect = listed(statuses)
        local calls = {}
        local function policy(conn)
          calls[conn.id] = (calls[conn.id] or 0) + 1
          return function_policy(conn)
        end
        local report = c:reconcile(SID, policy, { statuses = statuses, describe = true })
        local n = assert_plan(report, expect, function_oracle)
        assert.is_true(n.accept + n.reject > 1000)   -- so the descriptions go in two calls
        for _, conn in ipairs(expect) do assert.are.equal(1, calls[conn.id], conn.id) end
        local reads, writes = seen(mock)
        assert_list_reads(reads, pages(#listed({ "pendingAcceptance" })) + pages(#listed({ "failed" }))
          + pages(#listed({ "accepted" })))
        assert_writes_follow(writes, report.plan, true)
        assert_state_follows(mock, report.plan)
        -- each description: the one the plan says, holding the reason, sent before the action
        local state, at = mock:by_id(), {}
        for k, w in ipairs(writes) do at[w.id .. " " .. w.action] = k end
        for _, e in ipairs(report.plan) do
          if e.action == "leave" then
            assert.is_nil(e.description)
            assert.are.equal("", state[e.id].description)
          else
            assert.is_true(e.described)
            -- as the service takes it: '<' and '>' become '(' and ')'
            local said = (e.action .. ": " .. e.reason):gsub("<", "("):gsub(">", ")")
            assert.matches("^vpcep reconcile %d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ: ", e.description)
            assert.are.equal(said, e.description:sub(-#said), e.description)
            assert.is_nil(e.description:find("[<>]"))
            assert.are.equal(e.description, state[e.id].description)
            assert.is_true(at[e.id .. " describe"] < at[e.id .. " " .. e.action], e.id)
          end
        end
        -- an accepted connection our policy accepts is left, saying why
        local already = 0
        for _, e in ipairs(report.plan) do
          if e.status == "accepted" and e.action == "leave" and function_policy(e) == "accept" then
            already = already + 1
            assert.matches("^already accepted %(", e.reason)
          end
        end
        assert.is_true(already > 0)
      end)

    it("a policy that raises or answers nonsense fails that connection alone; the rest is done once", function()
      local BAD = {
        function() return "Accept" end,
        function() return 1 end,
        function() return {} end,
        function() return true end,
        function() return "accept", { "not", "a", "string" } end,
        function() error("policy bug") end,
        function() error(vpcep._error("vpcep.policy_lookup", "directory down")) end,
        function() error({}) end,
      }
      local expect = listed()
      local bad_of
      local policy = function(conn)
        local k = number_of(conn.id) % 23
        if BAD[k] then
          bad_of[conn.id] = true
          return BAD[k]()
        end
        return table_oracle(conn) ~= "leave" and table_oracle(conn) or nil, "table rule"
      end
      for _, dry in ipairs({ true, false }) do
        mock:clear_log()
        bad_of = {}
        local err = helper.raised(c.reconcile, c, SID, policy, { dry_run = dry })
        local report = err.report
        assert.is_table(report)
        assert.are.equal(#expect, #report.plan)
        local nbad = 0
        for i, e in ipairs(report.plan) do
          assert.are.equal(expect[i].id, e.id)
          if bad_of[e.id] then
            nbad = nbad + 1
            assert.are.equal("error", e.action, e.id)
            assert.are.equal("failed", e.outcome, e.id)
            assert.are.equal("vpcep.policy", e.error.code, e.id)
            assert.are.equal(e.id, e.error.endpoint)
            assert.are.equal(e.error, report.results[i])
          else
            assert.are.equal(table_oracle(expect[i]), e.action, e.id)
          end
        end
        assert.is_true(nbad >= #BAD * 2, tostring(nbad))
        assert.are.equal(nbad, report.failed)
        assert.are.equal(nbad, err.failed)
        assert.are.equal(#report.plan, report.accepted + report.rejected + report.left + report.failed)
        assert.are.equal("vpcep.policy", err.code)
        local reads, writes = seen(mock)
        assert_list_reads(reads, pages(#expect))
        if dry then
          assert.are.equal(0, #writes)
        else
          assert_writes_follow(writes, report.plan, false)
          assert_state_follows(mock, report.plan)
        end
      end
    end)

    it("opts.wait: each accepted connection has settled; its result names the action's request, not a poll's",
      function()
        mock:config { transition_ms = 100 }
        local expect = listed()
        local report = c:reconcile(SID, TABLE_POLICY, { wait = 60 })
        assert_plan(report, expect, table_oracle)
        local reads, writes = seen(mock)
        assert_writes_follow(writes, report.plan, false)
        local by, polls = writes_by_id(writes), 0
        for _, r in ipairs(reads) do
          if r.path:find("?id=", 1, true) then polls = polls + 1 end
        end
        for i, e in ipairs(report.plan) do
          if e.action ~= "leave" then
            assert.are.equal(({ accept = "accepted", reject = "rejected" })[e.action], report.results[i].status)
            assert.are.equal(by[e.id][e.action].request_id, report.results[i].request_id, e.id)
          end
        end
        assert.is_true(polls >= report.accepted)
        assert.are.equal(pages(#expect) + polls, #reads)
        assert_state_follows(mock, report.plan)
      end)

    it("pages that overlap (connections changed status mid-walk): each decided once, acted on once", function()
      -- while the first page is decided, 20 connections listed before the
      -- 1000th pending one become pending, and 10 pending ones of the first
      -- page are accepted by someone else: the next page starts 10 places
      -- earlier, and repeats them
      local expect = listed()
      local changed, moved = {}, {}
      for i, e in ipairs(ENDPOINTS) do changed[i] = { id = e.id, domain_id = e.domain_id, status = e.status } end
      local upto = expect[1000].id
      local added = 0
      for i = 1, N do
        local e = changed[i]
        if e.id == upto then break end
        if e.status == "rejected" and added < 20 then e.status, added = "pendingAcceptance", added + 1 end
      end
      local taken = 0
      for j = 1, 1000 do
        if taken < 10 and table_oracle(expect[j]) == "accept" then
          moved[expect[j].id], taken = true, taken + 1
        end
      end
      for _, e in ipairs(changed) do if moved[e.id] then e.status = "accepted" end end
      assert.are.same({ 20, 10 }, { added, taken })

      -- the client's listing seen from outside, through a table client over it
      local listed_ids, pending_ids, first = {}, {}, true
      local spy = setmetatable({}, { __index = function(_, k)
        return function(_, ...)
          local r = pack(c[k](c, ...))
          if k == "connections" then
            for _, conn in ipairs(r[1]) do
              listed_ids[#listed_ids + 1] = conn.id
              if conn.status == "pendingAcceptance" then pending_ids[#pending_ids + 1] = conn.id end
            end
          end
          return unpack(r, 1, r.n)
        end
      end })
      local calls = {}
      local report = flow.reconcile(spy, SID, function(conn)
        if first then
          first = false
          seed(mock, changed)
        end
        calls[conn.id] = (calls[conn.id] or 0) + 1
        return table_oracle(conn) ~= "leave" and table_oracle(conn) or nil
      end, { statuses = { "pendingAcceptance", "accepted" } })
      -- the walk did meet connections twice
      local times, twice = {}, 0
      for _, id in ipairs(listed_ids) do
        times[id] = (times[id] or 0) + 1
        if times[id] == 2 then twice = twice + 1 end
      end
      assert.is_true(twice >= 10, tostring(twice))
      local again = {}
      for _, id in ipairs(pending_ids) do again[id] = (again[id] or 0) + 1 end
      local pending_twice = 0
      for _, k in pairs(again) do if k > 1 then pending_twice = pending_twice + 1 end end
      assert.is_true(pending_twice > 0)
      -- yet each was decided once, planned once, acted on once
      local in_plan = {}
      for _, e in ipairs(report.plan) do
        assert.is_nil(in_plan[e.id], "planned twice: " .. e.id)
        in_plan[e.id] = true
        assert.are.equal(1, calls[e.id], e.id)
      end
      local _, writes = seen(mock)
      writes_by_id(writes)
      assert_writes_follow(writes, report.plan, false)
      assert.are.equal(#report.plan, report.accepted + report.rejected + report.left + report.failed)
      assert.are.equal(0, report.failed)
    end)
  end)

  local have_luv, uv = pcall(require, "luv")
  local describe_uv = have_luv and describe or function(name) pending(name .. ": luv is not installed for this Lua") end
  describe_uv("vpcep.uv", function()
    it("the function policy with describe, on the loop: the same plan, the same writes", function()
      local statuses = { "pendingAcceptance", "failed", "accepted" }
      local client = require("vpcep.uv").new(helper.client_opts(mock, { retries = 0 }), { loop = uv })
      local dry, report, err
      client:reconcile(SID, function_policy, { statuses = statuses, dry_run = true }, function(r, e)
        dry, err = r, e
      end)
      for _ = 1, 1000000 do
        if dry or err then break end
        uv.run("once")
      end
      assert.is_nil(err)
      assert_plan(dry, listed(statuses), function_oracle)
      assert.are.equal(0, #select(2, seen(mock)))
      mock:clear_log()
      client:reconcile(SID, function_policy, { statuses = statuses, describe = true }, function(r, e)
        report, err = r, e
      end)
      for _ = 1, 1000000 do
        if report or err then break end
        uv.run("once")
      end
      assert.is_nil(err)
      assert_plan(report, listed(statuses), function_oracle)
      local reads, writes = seen(mock)
      assert.are.equal(#reads, pages(#listed({ "pendingAcceptance" })) + pages(#listed({ "failed" }))
        + pages(#listed({ "accepted" })))
      assert_writes_follow(writes, report.plan, true)
      assert_state_follows(mock, report.plan)
      client:close()
      uv.run("nowait")
    end)
  end)

  describe("the command", function()
    it("flags, dry then real with --describe and --log: what the mock saw is the plan, and the log says so",
      function()
        local expect = listed()
        local rc, out, err = vpcep_command(mock, flags(TABLE_FLAGS, { "--dry-run", "--json" }))
        assert.are.equal(0, rc, err)
        local dry = json.decode(out)
        assert.is_true(dry.dry_run)
        assert_plan(dry, expect, table_oracle)
        local reads, writes = seen(mock)
        assert_list_reads(reads, pages(#expect))
        assert.are.equal(0, #writes)

        -- text output: one line per connection, then the summary
        mock:clear_log()
        rc, out, err = vpcep_command(mock, flags(TABLE_FLAGS, { "--dry-run" }))
        assert.are.equal(0, rc, err)
        local l = lines(out)
        assert.are.equal(#expect + 2, #l)
        for i, e in ipairs(dry.plan) do
          local words = {}
          for w in l[i + 1]:gmatch("%S+") do words[#words + 1] = w end
          assert.are.same({ e.id, e.domain_id, e.action }, { words[1], words[2], words[3] })
          assert.are.equal(e.reason, l[i + 1]:match("^%S+%s+%S+%s+%S+%s+(.*)$"))
        end
        assert.are.equal(0, #select(2, seen(mock)))

        mock:clear_log()
        local logfile = helper.tmpname()
        finally(function() os.remove(logfile) end)
        rc, out, err = vpcep_command(mock, flags(TABLE_FLAGS, { "--describe", "--log", logfile, "--json" }))
        assert.are.equal(0, rc, err)
        local real = json.decode(out)
        assert_plan(real, expect, table_oracle)
        reads, writes = seen(mock)
        assert_list_reads(reads, pages(#expect))
        assert_writes_follow(writes, real.plan, true)
        assert_state_follows(mock, real.plan)
        local state = mock:by_id()
        for _, e in ipairs(real.plan) do
          if e.action ~= "leave" then
            assert.is_truthy(e.description:find(e.reason, 1, true))
            assert.are.equal(e.description, state[e.id].description)
          end
        end
        -- the log: a decision per entry, and an action line per request the mock answered, with its id
        local decisions, actions = {}, {}
        local plan_of = {}
        for _, e in ipairs(real.plan) do plan_of[e.id] = e end
        for _, x in ipairs(json_lines(helper.read_file(logfile))) do
          assert.are.equal(SID, x.service)
          assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", x.time)
          local e = plan_of[x.id]
          assert.is_table(e, tostring(x.id))
          assert.are.same({ e.domain_id, e.reason }, { x.domain, x.reason })
          if x.event == "decision" then
            assert.is_nil(decisions[x.id])
            decisions[x.id] = x.action
            assert.are.equal(e.action == "leave" and "left" or nil, x.outcome)
          else
            assert.are.equal("action", x.event)
            actions[#actions + 1] = x
          end
        end
        for _, e in ipairs(real.plan) do assert.are.equal(e.action, decisions[e.id], e.id) end
        local by = writes_by_id(writes)
        assert.are.equal(#writes, #actions)
        for _, x in ipairs(actions) do
          local w = by[x.id][x.action]
          assert.is_table(w, x.id .. " " .. x.action)
          assert.are.equal(w.request_id, x.request_id)
          assert.are.equal(x.action == "describe" and "described" or x.action .. "ed", x.outcome)
          by[x.id][x.action] = nil
        end
        helper.no_secret { D.token } (helper.read_file(logfile))
      end)

    it("a policy file returning a table (otherwise = reject), dry: the plan is the table's", function()
      local file = lua_file(string.format('return { accept_domains = { %q, %q }, reject_domains = { %q }, '
        .. 'otherwise = "reject" }', OURS1, OURS2, BANNED))
      local rc, out, err = vpcep_command(mock, { "--policy", file, "--dry-run", "--json" })
      assert.are.equal(0, rc, err)
      local n = assert_plan(json.decode(out), listed(), function(conn)
        return table_oracle(conn) == "leave" and "reject" or table_oracle(conn)
      end)
      assert.are.equal(0, n.leave)
      assert.are.equal(0, #select(2, seen(mock)))
    end)

    it("a policy file (function) over --status, and one answering nonsense: exit 1, only that connection failed",
      function()
        local statuses = { "pendingAcceptance", "failed", "accepted" }
        local file = lua_file(FUNCTION_FILE_SOURCE)
        local rc, out, err = vpcep_command(mock, { "--policy", file, "--status", "pendingAcceptance", "--status",
          "failed", "--status", "accepted", "--json" })
        assert.are.equal(0, rc, err)
        local doc = json.decode(out)
        assert_plan(doc, listed(statuses), function_oracle)
        local _, writes = seen(mock)
        assert_writes_follow(writes, doc.plan, false)
        assert_state_follows(mock, doc.plan)

        mock:reset()
        seed(mock)
        local nonsense = lua_file([[
          return function(conn)
            local n = tonumber(conn.id:match("(%d+)$"))
            if n % 100 == 1 then return "Accept" end
            if n % 100 == 2 then return 1 end
            if n % 100 == 3 then return {} end
            if n % 100 == 4 then error("no idea about " .. conn.id) end
            return "accept", "the rest"
          end]])
        -- dry: exit 1 already, and still nothing but the list reads
        local logfile = helper.tmpname()
        finally(function() os.remove(logfile) end)
        rc, out, err = vpcep_command(mock, { "--policy", nonsense, "--dry-run", "--log", logfile })
        assert.are.equal(1, rc, err)
        assert.matches("; %d+ failed\n$", out)
        assert.are.equal(0, #select(2, seen(mock)))
        local logged = json_lines(helper.read_file(logfile))
        assert.are.equal(#listed(), #logged)
        for _, x in ipairs(logged) do
          assert.are.same({ "decision", true }, { x.event, x.dry_run })
          local k = number_of(x.id) % 100
          assert.are.equal((k >= 1 and k <= 4) and "error" or "accept", x.action)
          if x.action == "error" then assert.are.equal("vpcep.policy", x.error_code) end
        end
        rc, out, err = vpcep_command(mock, { "--policy", nonsense, "--json" })
        assert.are.equal(1, rc, err)
        doc = json.decode(out)
        local bad = 0
        for _, e in ipairs(doc.plan) do
          local k = number_of(e.id) % 100
          if k >= 1 and k <= 4 then
            bad = bad + 1
            assert.are.same({ "error", "failed", "vpcep.policy" }, { e.action, e.outcome, e.error.code })
          else
            assert.are.same({ "accept", "accepted" }, { e.action, e.outcome })
          end
        end
        assert.is_true(bad > 0)
        assert.are.same({ #doc.plan - bad, 0, 0, bad }, { doc.accepted, doc.rejected, doc.left, doc.failed })
        _, writes = seen(mock)
        assert_writes_follow(writes, doc.plan, false)
      end)

    it("--watch: faults between rounds; the failed round is said, the next finishes, the last acts on nothing",
      function()
        local expect = listed()
        local failing = { expect[5].id, expect[700].id, expect[#expect].id }
        local rules = {
          -- round 1's list reads go through
          { match = { method = "GET" }, times = pages(#expect), delay_ms = 1 },
          -- round 2 meets an outage, round 3 credentials the gateway no longer takes
          { match = { method = "GET" }, answer = { status = 503,
            json = { error_code = "APIGW.0201", error_msg = "service unavailable" } } },
          { match = { method = "GET" }, answer = { status = 401, json = { error_code = "APIGW.0301",
            error_msg = "Incorrect IAM authentication information: token expired" } } },
        }
        -- round 1: three connections' actions are throttled
        for _, id in ipairs(failing) do
          rules[#rules + 1] = { match = { method = "POST", endpoint = id }, answer = { status = 429,
            json = { error_code = "APIGW.0308", error_msg = "throttled" } } }
        end
        mock:faults(rules)
        local logfile = helper.tmpname()
        finally(function() os.remove(logfile) end)
        local policy_flags = flags(TABLE_FLAGS, { "--reject-others" })
        local rc, out, err = vpcep_command(mock, flags(policy_flags, { "--watch", "0.05", "--rounds", "5",
          "--json", "--log", logfile, "--retries", "0" }))
        assert.are.equal(1, rc, err)
        local docs = json_lines(out)
        assert.are.equal(5, #docs)
        for i, d in ipairs(docs) do assert.are.equal(i, d.round) end
        -- round 1: all but the throttled three
        local oracle = function(conn) return table_oracle(conn) == "leave" and "reject" or table_oracle(conn) end
        assert.are.equal(#expect, #docs[1].plan)
        assert.are.equal(3, docs[1].failed)
        assert.are.equal(#expect, docs[1].accepted + docs[1].rejected + docs[1].left + docs[1].failed)
        assert.are.equal(0, docs[1].left)
        -- round 2: the outage, said on stderr
        assert.are.equal(503, docs[2].error.status)
        assert.is_nil(docs[2].plan)
        assert.matches("reconcile: round 2 failed: 503 APIGW.0201", err, 1, true)
        -- round 3: the credentials refused, said on stderr
        assert.are.equal(401, docs[3].error.status)
        assert.is_nil(docs[3].plan)
        assert.matches("reconcile: round 3 failed: 401 APIGW.0301", err, 1, true)
        -- round 4: exactly the three, done now
        local ids = {}
        for _, e in ipairs(docs[4].plan) do ids[#ids + 1] = e.id end
        assert.are.same(failing, ids)
        for _, e in ipairs(docs[4].plan) do assert.are.equal(oracle(ENDPOINTS[number_of(e.id)]), e.action) end
        assert.are.equal(0, docs[4].failed)
        -- round 5: nothing left to do
        assert.are.same({ 0, 0, 0, 0 }, { #docs[5].plan, docs[5].accepted, docs[5].rejected, docs[5].failed })

        -- what the mock saw: one action per connection, and a second only for the three throttled ones
        local reads, writes = seen(mock)
        assert.are.equal(pages(#expect) + 1 + 1 + 1 + 1, #reads)
        local count = {}
        for _, w in ipairs(writes) do
          assert.are.equal(oracle(ENDPOINTS[number_of(w.id)]), w.action, w.id)
          count[w.id] = (count[w.id] or 0) + 1
        end
        for _, conn in ipairs(expect) do
          local throttled = conn.id == failing[1] or conn.id == failing[2] or conn.id == failing[3]
          assert.are.equal(throttled and 2 or 1, count[conn.id], conn.id)
        end
        assert.are.equal(#expect + 3, #writes)
        -- the server ends where the policy says
        local state = mock:by_id()
        for _, conn in ipairs(expect) do
          assert.are.equal(oracle(conn) == "accept" and "accepted" or "rejected", state[conn.id].status)
        end
        -- the log: every action line is one request the mock answered (its id, action and request id)
        local answered = {}
        for _, w in ipairs(writes) do answered[w.request_id] = w end
        local n, round_lines = 0, {}
        for _, x in ipairs(json_lines(helper.read_file(logfile))) do
          if x.event == "action" then
            n = n + 1
            local w = answered[x.request_id]
            assert.is_table(w, tostring(x.request_id))
            assert.are.same({ w.id, w.action }, { x.id, x.action })
            answered[x.request_id] = nil
          elseif x.event == "round" then
            round_lines[#round_lines + 1] = x
          end
        end
        assert.are.equal(#writes, n)
        assert.are.equal(2, #round_lines)
        assert.are.same({ 2, "failed", "APIGW.0201", 503 }, { round_lines[1].round, round_lines[1].outcome,
          round_lines[1].error_code, round_lines[1].http_status })
        assert.are.same({ 3, "failed", "APIGW.0301", 401 }, { round_lines[2].round, round_lines[2].outcome,
          round_lines[2].error_code, round_lines[2].http_status })
        -- each failed round's line names the request id of the read the mock refused
        assert.are.equal(reads[pages(#expect) + 1].request_id, round_lines[1].request_id)
        assert.are.equal(reads[pages(#expect) + 2].request_id, round_lines[2].request_id)
        helper.no_secret { D.token } (helper.read_file(logfile))
        helper.no_secret { D.token } (out .. err)
      end)

    it("--describe with descriptions refused: those connections fail, unacted; the log names each request",
      function()
        local expect = listed()
        local rules = {}
        for j = 1, #expect, 97 do
          if table_oracle(expect[j]) ~= "leave" then
            rules[#rules + 1] = { match = { method = "PUT", path_contains = "/description" },
              times = 1, answer = { status = 500, json = { error_code = "EndPoint.0500", error_msg = "broken" } } }
          end
        end
        -- the mock refuses the first #rules descriptions it is sent, whichever they are
        mock:faults(rules)
        local logfile = helper.tmpname()
        finally(function() os.remove(logfile) end)
        local rc, out, err = vpcep_command(mock, flags(TABLE_FLAGS, { "--describe", "--json", "--log", logfile,
          "--retries", "0", "--concurrency", "1" }))
        assert.are.equal(1, rc, err)
        local doc = json.decode(out)
        local _, writes = seen(mock)
        local failed_puts = {}
        for k, w in ipairs(writes) do
          if w.action == "describe" and k <= #rules then failed_puts[w.id] = w.request_id end
        end
        local nfailed = 0
        for _, e in ipairs(doc.plan) do
          if failed_puts[e.id] then
            nfailed = nfailed + 1
            assert.are.same({ "failed", false, "EndPoint.0500" }, { e.outcome, e.described, e.error.code })
          elseif e.action ~= "leave" then
            assert.is_true(e.described, e.id)
            assert.are.equal(e.action .. "ed", e.outcome)
          end
        end
        assert.are.equal(#rules, nfailed)
        assert.are.same({ nfailed }, { doc.failed })
        assert.are.equal(#doc.plan, doc.accepted + doc.rejected + doc.left + doc.failed)
        -- no action for a connection whose description failed; one for every other acted on
        local by = writes_by_id(writes)
        for _, e in ipairs(doc.plan) do
          local w = by[e.id] or {}
          if failed_puts[e.id] then
            assert.is_nil(w.accept or w.reject, e.id)
          elseif e.action ~= "leave" then
            assert.is_table(w[e.action], e.id)
          end
        end
        -- the log's failed describe lines: exactly those requests
        local logged = {}
        for _, x in ipairs(json_lines(helper.read_file(logfile))) do
          if x.event == "action" and x.outcome == "failed" then
            assert.are.equal("describe", x.action)
            assert.are.equal(500, x.http_status)
            logged[x.id] = x.request_id
          end
        end
        assert.are.same(failed_puts, logged)
      end)

    it("the text plan is one line per connection, whatever the policy's reasons hold", function()
      local file = lua_file([[
        return function(conn)
          if conn.domain_id == "]] .. BANNED .. [[" then return "reject", "banned:\n  see ticket\r\n\t42" end
          if conn.domain_id == "]] .. STRANGER .. [[" then error("no rule\nfor " .. conn.id) end
          return "accept", "fine"
        end]])
      local expect = listed()
      local rc, out, err = vpcep_command(mock, { "--policy", file, "--dry-run" })
      assert.are.equal(1, rc, err)
      local l = {}
      for line in (out .. "x"):gmatch("([^\n]*)\n") do l[#l + 1] = line end
      assert.are.equal(#expect + 2, #l)
      for i, conn in ipairs(expect) do
        assert.are.equal(conn.id, l[i + 1]:match("^(%S+)"))
        if conn.domain_id == BANNED then assert.matches("banned:   see ticket   42$", l[i + 1]) end
        if conn.domain_id == STRANGER then assert.matches("no rule for " .. conn.id:gsub("%-", "%%-"), l[i + 1]) end
      end
      -- the JSON keeps the reasons as they were
      rc, out = vpcep_command(mock, { "--policy", file, "--dry-run", "--json" })
      assert.are.equal(1, rc)
      for _, e in ipairs(json.decode(out).plan) do
        if e.domain_id == BANNED then assert.are.equal("banned:\n  see ticket\r\n\t42", e.reason) end
      end
      assert.are.equal(0, #select(2, seen(mock)))
    end)

    it("approve-pending: the shorthand accepts what --accept-domain would, and only that", function()
      local expect = listed()
      local out_args = { "--domain", OURS1, "--domain", OURS2, "--json" }
      local rc, out, err = vpcep_command(mock, out_args, "approve-pending")
      assert.are.equal(0, rc, err)
      local doc = json.decode(out)
      local _, writes = seen(mock)
      local want = {}
      for _, conn in ipairs(expect) do
        if conn.domain_id == OURS1 or conn.domain_id == OURS2 then want[#want + 1] = conn.id end
      end
      local got = {}
      for _, w in ipairs(writes) do
        assert.are.equal("accept", w.action)
        got[#got + 1] = w.id
      end
      table.sort(got)
      assert.are.same(want, got)
      writes_by_id(writes)
      assert.are.same({ #want, 0, #expect - #want }, { doc.succeeded, doc.failed, doc.skipped })
    end)

    it("exit 2 for bad usage, before anything is sent", function()
      local cases = {
        { "--accept-domain", OURS1, "--reject-domain", OURS1 },
        { "--policy", lua_file('return { accept_domains = { "a" }, otherwise = "accept" }') },
        { "--policy", lua_file("return 42") },
        { "--accept-domain", OURS1, "--status", "pending" },
      }
      for _, args in ipairs(cases) do
        local rc, out, err = vpcep_command(mock, args)
        assert.are.equal(2, rc, err)
        assert.are.equal("", out)
      end
      assert.are.equal(0, #mock:log())
    end)
  end)
end)
