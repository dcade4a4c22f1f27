-- vpcep.reconcile: a service's connections as a stream, and approval as a
-- policy, written once over a client's blocking-style methods
-- (connections, accept, reject, describe), so that every host runs the same
-- code: the blocking client's each_connection and reconcile methods call
-- these (src/l_flow.c), and so do vpcep.resty's (directly) and vpcep.uv's
-- (in a coroutine, over a client that yields and never raises).
--
--   local flow = require "vpcep.reconcile"
--   for conn in flow.each_connection(client, sid [, query]) do ... end
--   local report = flow.reconcile(client, sid, policy [, opts])
--
-- A client whose methods return nil, err (vpcep.safe) is read as if they
-- had raised err. Works on Lua 5.1-5.4 and LuaJIT.
local vpcep = require "vpcep"

local M = {}

local PAGE = 1000            -- connections per list request unless query.limit says
local MAX_LISTED = 1000000   -- as the client's own listing: past this, a server that never ends
local DESC_MAX = 512         -- the service's cap on a description, in bytes
local DESCRIBE_MAX = 1000    -- connections per describe call
local TEXT_MAX = 2048        -- a text taken from a policy's error, at most
local STATUSES = { pendingAcceptance = true, creating = true, accepted = true, rejected = true,
  failed = true, deleting = true }
local DONE = { accept = "accepted", reject = "rejected" }
local PENDING = { creating = true, pendingAcceptance = true }

local unpack = table.unpack or unpack

----------------------------------------------------------------------------
-- Errors

local function new_error(code, fmt, ...)
  return vpcep._error(code, select("#", ...) > 0 and fmt:format(...) or fmt)
end

local function einval(fmt, ...)
  error(new_error("vpcep.invalid_argument", fmt, ...))
end

local function is_integer(v)
  return type(v) == "number" and v == math.floor(v) and v > -2 ^ 63 and v < 2 ^ 63
end

-- Calls client[method](client, ...): true and its results, or false and
-- the error object (a safe client's nil, err included). What is not an
-- error object (an interrupt, a memory error, a bug) is raised again: it is
-- no failure of one connection.
local function pack(...)
  return { n = select("#", ...), ... }
end

-- A client whose methods never raise, only return nil, err (vpcep.uv's
-- coroutine adapter), is called without pcall: Lua 5.1 cannot yield across
-- one, and the adapter's methods yield.
local function never_raises(client)
  return type(client) == "table" and rawget(client, "_never_raises") == true
end

local function call(client, method, ...)
  local r
  if never_raises(client) then
    r = pack(true, client[method](client, ...))
  else
    r = pack(pcall(client[method], client, ...))
  end
  if r[1] and r[2] == nil and vpcep.is_error(r[3]) then return false, r[3] end
  if not r[1] and not vpcep.is_error(r[2]) then error(r[2], 0) end
  return unpack(r, 1, r.n)
end

----------------------------------------------------------------------------
-- each_connection

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

-- Checks what each_connection takes, before anything is sent: the page
-- size and start here; the rest (service id, every query key) as the
-- client's own listing checks it, through a plan of the C client, which
-- sends nothing.
local function check_listing(client, sid, query)
  if query ~= nil and type(query) ~= "table" then einval("query must be a table, got %s", type(query)) end
  local q = copy(query)
  if q.limit ~= nil and not (is_integer(q.limit) and q.limit >= 1 and q.limit <= 1000) then
    einval("query.limit must be an integer in 1..1000 (each_connection pages by it)")
  end
  if q.offset ~= nil and not (is_integer(q.offset) and q.offset >= 0) then
    einval("query.offset must be an integer of 0 or more")
  end
  q.limit, q.offset = q.limit or PAGE, q.offset or 0
  -- the C client, or the one a host's client (vpcep.resty, vpcep.uv) wraps
  local core = type(client) == "userdata" and client or type(client) == "table" and rawget(client, "_core")
  if core then
    local ok, err = pcall(core.plan, core, "connections", sid, q)
    if not ok then error(err, 0) end
  else
    vpcep._check_id(sid, "service_id")
  end
  return q
end

-- An iterator over the connections of service sid matching query, one
-- page (query.limit, default 1000) fetched at a time, when the last one is
-- used up: only one page is held. A failed page raises its error object
-- from the loop.
function M.each_connection(client, sid, query)
  local q = check_listing(client, sid, query)
  local offset = q.offset
  local page, i, last, listed, first_id = nil, 0, false, 0, nil
  local function fetch()
    page = nil   -- the last page goes before the next arrives
    q.offset = offset
    local ok, list, total = call(client, "connections", sid, q)
    if not ok then
      last = true
      error(list)
    end
    if type(list) ~= "table" then
      last = true
      error(new_error("vpcep.bad_response", "the listing gave no list of connections"))
    end
    local got = #list
    local id = got > 0 and type(list[1]) == "table" and list[1].id or nil
    if type(id) == "string" and id ~= "" and id == first_id then
      last = true
      error(new_error("vpcep.bad_response", "the service answered the same page twice (offset ignored); stopped"))
    end
    first_id = id
    listed = listed + got
    if listed > MAX_LISTED then
      last = true
      error(new_error("vpcep.bad_response", "the list goes on past %d connections; stopped", MAX_LISTED))
    end
    offset = offset + got
    -- the end: an empty page, or total_count reached (a server may give
    -- shorter pages than asked)
    last = got == 0 or (type(total) == "number" and offset >= total)
    page, i = list, 0
  end
  return function()
    while true do
      if page then
        i = i + 1
        local conn = page[i]
        if conn ~= nil then
          page[i] = nil   -- held by the loop now, not by the iterator
          return conn
        end
        page = nil
      end
      if last then return nil end
      fetch()
    end
  end
end

----------------------------------------------------------------------------
-- Policies

-- A set of domain ids from an array of strings (nil: empty).
local function domain_set(list, what)
  local set = {}
  if list == nil then return set end
  if type(list) ~= "table" then einval("%s must be an array of domain ids, got %s", what, type(list)) end
  local n = #list
  for k in pairs(list) do
    if not (is_integer(k) and k >= 1 and k <= n) then einval("%s must be an array (1..n, no other keys)", what) end
  end
  for j = 1, n do
    local d = list[j]
    if type(d) ~= "string" or d == "" then einval("%s[%d] must be a domain id (a non-empty string)", what, j) end
    set[d] = true
  end
  return set
end

local POLICY_KEYS = { accept_domains = true, reject_domains = true, otherwise = true }

-- The function of a policy table.
local function table_policy(p)
  for k in pairs(p) do
    if not POLICY_KEYS[k] then
      einval("policy.%s is not a policy key (known: accept_domains, reject_domains, otherwise)", tostring(k))
    end
  end
  local accept = domain_set(p.accept_domains, "policy.accept_domains")
  local reject = domain_set(p.reject_domains, "policy.reject_domains")
  for d in pairs(accept) do
    if reject[d] then einval("domain %s is in both accept_domains and reject_domains", d) end
  end
  local otherwise = p.otherwise == nil and "leave" or p.otherwise
  if otherwise ~= "leave" and otherwise ~= "reject" then
    einval('policy.otherwise must be "leave" or "reject"')
  end
  return function(conn)
    local d = conn.domain_id ~= nil and tostring(conn.domain_id) or nil
    local shown = d or "(none)"
    if d and accept[d] then return "accept", "domain " .. shown .. " is in accept_domains" end
    if d and reject[d] then return "reject", "domain " .. shown .. " is in reject_domains" end
    if otherwise == "reject" then return "reject", "domain " .. shown .. " is in no list (otherwise = reject)" end
    return nil, "domain " .. shown .. " is in no list"
  end
end

local function check_policy(policy)
  if type(policy) == "function" then return policy end
  if type(policy) == "table" then return table_policy(policy) end
  einval("policy must be a function or a table { accept_domains =, reject_domains =, otherwise = }, got %s",
    type(policy))
end

----------------------------------------------------------------------------
-- Options

local OPTION_KEYS = { statuses = true, dry_run = true, describe = true, wait = true, concurrency = true }

local function check_statuses(list)
  if list == nil then return { "pendingAcceptance" } end
  if type(list) ~= "table" or #list == 0 then einval("opts.statuses must be a non-empty array of statuses") end
  local seen = {}
  for k in pairs(list) do
    if not (is_integer(k) and k >= 1 and k <= #list) then einval("opts.statuses must be an array") end
  end
  for j, s in ipairs(list) do
    if type(s) ~= "string" or not STATUSES[s] then
      einval("opts.statuses[%d] must be one of pendingAcceptance, creating, accepted, rejected, failed, deleting", j)
    end
    if seen[s] then einval("opts.statuses holds %s twice", s) end
    seen[s] = true
  end
  return list
end

local function check_options(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then einval("opts must be a table, got %s", type(opts)) end
  for k in pairs(opts) do
    if not OPTION_KEYS[k] then
      einval("unknown option opts.%s (known: statuses, dry_run, describe, wait, concurrency)", tostring(k))
    end
  end
  for _, k in ipairs({ "dry_run", "describe" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then einval("opts.%s must be a boolean", k) end
  end
  local w = opts.wait
  if w ~= nil and not (type(w) == "number" and w >= 0 and w <= 86400) then
    einval("opts.wait must be a number of seconds in 0..86400")
  end
  local n = opts.concurrency
  if n ~= nil and not (is_integer(n) and n >= 1 and n <= 64) then
    einval("opts.concurrency must be an integer in 1..64")
  end
  return { statuses = check_statuses(opts.statuses), dry_run = opts.dry_run == true,
    describe = opts.describe == true, wait = w ~= nil and w > 0 and w or nil, concurrency = n }
end

----------------------------------------------------------------------------
-- Descriptions

-- The length of the UTF-8 sequence at byte j of s, or 0 when there is none
-- (as the client checks: no overlong forms, no surrogates, at most U+10FFFF).
local function utf8_len(s, j)
  local b = s:byte(j)
  if b < 0x80 then return 1 end
  local n, lo, hi
  if b >= 0xC2 and b <= 0xDF then n, lo, hi = 2, 0x80, 0xBF
  elseif b == 0xE0 then n, lo, hi = 3, 0xA0, 0xBF
  elseif b == 0xED then n, lo, hi = 3, 0x80, 0x9F
  elseif b >= 0xE1 and b <= 0xEF then n, lo, hi = 3, 0x80, 0xBF
  elseif b == 0xF0 then n, lo, hi = 4, 0x90, 0xBF
  elseif b >= 0xF1 and b <= 0xF3 then n, lo, hi = 4, 0x80, 0xBF
  elseif b == 0xF4 then n, lo, hi = 4, 0x80, 0x8F
  else return 0 end
  local b2 = s:byte(j + 1)
  if not b2 or b2 < lo or b2 > hi then return 0 end
  for k = j + 2, j + n - 1 do
    local c = s:byte(k)
    if not c or c < 0x80 or c > 0xBF then return 0 end
  end
  return n
end

local REPLACE = { ["<"] = "(", [">"] = ")" }

-- text as a description the service takes: '<' and '>' become '(' and ')',
-- control characters spaces, bytes that are not UTF-8 '?', and at most 512
-- bytes, cut between characters.
function M.description_text(text)
  local out, size, j = {}, 0, 1
  while j <= #text do
    local n = utf8_len(text, j)
    local piece
    if n == 0 then
      piece, n = "?", 1
    else
      piece = text:sub(j, j + n - 1)
      if n == 1 then
        local b = piece:byte()
        piece = REPLACE[piece] or ((b < 0x20 or b == 0x7F) and " ") or piece
      end
    end
    if size + #piece > DESC_MAX then break end
    out[#out + 1] = piece
    size = size + #piece
    j = j + n
  end
  return table.concat(out)
end

local function describe_line(entry, stamp)
  return M.description_text(string.format("vpcep reconcile %s: %s: %s", stamp, entry.action, entry.reason))
end

-- a < b by their bytes, as the client orders describe's results (Lua's <
-- on strings follows the locale).
local function byte_less(a, b)
  local n = math.min(#a, #b)
  for k = 1, n do
    local x, y = a:byte(k), b:byte(k)
    if x ~= y then return x < y end
  end
  return #a < #b
end

----------------------------------------------------------------------------
-- Deciding

local function short(v)
  local s = tostring(v)
  if #s > TEXT_MAX then s = s:sub(1, TEXT_MAX) .. "..." end
  return s
end

local function policy_error(id, fmt, ...)
  local e = new_error("vpcep.policy", fmt, ...)
  e.endpoint = type(id) == "string" and id or nil
  return e
end

-- A plan entry for conn, decided by the policy function fn, and the value
-- its result starts as (the listed connection, or the decision's error).
local function decide(fn, conn)
  local id = conn.id
  local entry = { id = id, domain_id = conn.domain_id, status = conn.status }
  local function failed(e)
    entry.action, entry.reason, entry.outcome, entry.error = "error", e.message, "failed", e
    return entry, e
  end
  if type(id) ~= "string" or not pcall(vpcep._check_id, id) then
    local e = new_error("vpcep.bad_response", "the service listed a connection without a valid endpoint id")
    return failed(e)
  end
  local ok, action, reason = pcall(fn, conn)
  if not ok then
    -- the standalone interpreter's Ctrl-C lands here when it comes during
    -- the policy call: it ends the run, it is no failure of this connection
    if action == "interrupted!" then error(action, 0) end
    local what = vpcep.is_error(action) and action.message or action
    local e = policy_error(id, "the policy raised an error: %s", short(what))
    if vpcep.is_error(action) then e.cause = action end
    return failed(e)
  end
  if action == nil then action = "leave" end
  if action ~= "accept" and action ~= "reject" and action ~= "leave" then
    return failed(policy_error(id, 'the policy returned %s (expected "accept", "reject" or nil)',
      type(action) == "string" and string.format("%q", short(action)) or "a " .. type(action)))
  end
  if type(reason) == "number" then reason = tostring(reason) end
  if reason ~= nil and type(reason) ~= "string" then
    return failed(policy_error(id, "the policy's reason must be a string, got a %s", type(reason)))
  end
  entry.action, entry.reason = action, reason or ("the policy said " .. action)
  if DONE[action] == conn.status then
    -- nothing to send: it is there already
    entry.action, entry.reason = "leave", "already " .. conn.status .. " (" .. entry.reason .. ")"
  end
  if entry.action == "leave" then entry.outcome = "left" end
  return entry, conn
end

-- Lists the connections in each of the statuses and decides each once:
-- the plan and the results so far (the listed connections).
local function decide_all(client, sid, fn, statuses)
  local plan, results, seen, wanted = {}, {}, {}, {}
  for _, s in ipairs(statuses) do wanted[s] = true end
  for _, status in ipairs(statuses) do
    -- a while loop, not a generic for: on Lua 5.1 a coroutine cannot yield
    -- from inside a for's iterator (vpcep.uv's adapter yields in it)
    local next_conn = M.each_connection(client, sid, { status = status })
    while true do
      local conn = next_conn()
      if conn == nil then break end
      local id = type(conn) == "table" and conn.id or nil
      -- a connection met twice (it moved between pages or statuses) is decided once
      if type(conn) == "table" and wanted[conn.status] and not (type(id) == "string" and seen[id]) then
        if type(id) == "string" then seen[id] = true end
        local k = #plan + 1
        plan[k], results[k] = decide(fn, conn)
      end
    end
  end
  return plan, results
end

----------------------------------------------------------------------------
-- Acting

local function fail_entry(entry, results, k, e)
  entry.outcome, entry.error = "failed", e
  results[k] = e
end

-- The positions in plan of the entries still to act with action.
local function to_act(plan, action)
  local list = {}
  for k, e in ipairs(plan) do
    if e.action == action and e.outcome == nil then list[#list + 1] = k end
  end
  return list
end

-- Writes the reason of each entry to act on into its description (one
-- describe call per 1000); an entry whose description failed is failed,
-- and its action is not sent.
local function describe_all(client, sid, plan, results, concurrency)
  local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local ks = to_act(plan, "accept")
  for _, k in ipairs(to_act(plan, "reject")) do ks[#ks + 1] = k end
  for first = 1, #ks, DESCRIBE_MAX do
    local texts, ids, at = {}, {}, {}
    for j = first, math.min(#ks, first + DESCRIBE_MAX - 1) do
      local e = plan[ks[j]]
      e.description = describe_line(e, stamp)
      texts[e.id] = e.description
      ids[#ids + 1] = e.id
      at[e.id] = ks[j]
    end
    table.sort(ids, byte_less)
    local ok, res = call(client, "describe", sid, texts, { concurrency = concurrency })
    for j, id in ipairs(ids) do
      local k = at[id]
      local r = ok and res[j] or (not ok and res.results) and res.results[j] or nil
      if ok or not (vpcep.is_error(r) or r == nil) then
        plan[k].described = true
        plan[k].described_request_id = type(r) == "table" and r.request_id or nil
      else
        plan[k].described = false
        fail_entry(plan[k], results, k, r or res)
      end
    end
  end
end

-- The error of one connection of a bulk call that raised err.
local function bulk_failure(err, r, id, wait)
  if vpcep.is_error(r) then return r end
  if r == nil then return err end
  if err.code == "vpcep.timeout" and type(r) == "table" and PENDING[r.status] then
    local e = new_error("vpcep.timeout", "%s still %s after waiting %s s", id, tostring(r.status), tostring(wait))
    e.endpoint, e.connection = id, r
    return e
  end
end

-- Sends action (accept or reject) for every entry still to act with it:
-- one bulk call (concurrent inside, as opts.concurrency or else the
-- client's concurrency says).
local function act(client, sid, plan, results, action, wait, concurrency)
  local ks = to_act(plan, action)
  if #ks == 0 then return end
  local ids = {}
  for j, k in ipairs(ks) do ids[j] = plan[k].id end
  local o = { max_endpoints = #ids, wait = wait, concurrency = concurrency }
  local ok, res = call(client, action, sid, ids, o)
  for j, k in ipairs(ks) do
    local r = ok and res[j] or (not ok and res.results and res.results[j]) or nil
    local e = not ok and bulk_failure(res, r, ids[j], wait) or nil
    if e then
      if r ~= nil and not vpcep.is_error(r) then plan[k].connection = r end
      fail_entry(plan[k], results, k, e)
    else
      plan[k].outcome, plan[k].connection = DONE[action], r
      results[k] = r
    end
  end
end

----------------------------------------------------------------------------
-- reconcile

local function count(report)
  local n = { accepted = 0, rejected = 0, left = 0, failed = 0 }
  for _, e in ipairs(report.plan) do
    local o = e.outcome
    if o == "planned" then o = DONE[e.action] end
    n[o] = n[o] + 1
  end
  report.accepted, report.rejected, report.left, report.failed = n.accepted, n.rejected, n.left, n.failed
end

-- The error a reconcile with failures raises: the first failure's fields,
-- with the report, every result and how many failed.
local function report_error(report)
  local first
  for _, e in ipairs(report.plan) do
    if e.outcome == "failed" then first = e break end
  end
  local err = new_error(first.error.code, "")
  for k, v in pairs(first.error) do err[k] = v end
  err.message = string.format("reconcile: %d of %d connection(s) failed; the first, %s: %s", report.failed,
    #report.plan, tostring(first.id), tostring(first.error.message))
  err.endpoint = type(first.id) == "string" and first.id or nil
  err.report, err.results, err.failed = report, report.results, report.failed
  return err
end

-- Decides every connection of service sid in opts.statuses with policy,
-- then acts in bulk; returns the report, or raises (err.report) when any
-- connection failed.
function M.reconcile(client, sid, policy, opts)
  local fn = check_policy(policy)
  local o = check_options(opts)
  for _, s in ipairs(o.statuses) do check_listing(client, sid, { status = s }) end
  local plan, results = decide_all(client, sid, fn, o.statuses)
  if o.dry_run then
    for _, e in ipairs(plan) do
      if e.outcome == nil then e.outcome = "planned" end
    end
  else
    if o.describe then describe_all(client, sid, plan, results, o.concurrency) end
    act(client, sid, plan, results, "accept", o.wait, o.concurrency)
    act(client, sid, plan, results, "reject", o.wait, o.concurrency)
  end
  local report = { service_id = sid, dry_run = o.dry_run, plan = plan, results = results }
  count(report)
  if report.failed > 0 then error(report_error(report)) end
  return report
end

return M
