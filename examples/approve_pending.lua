-- examples/approve_pending.lua: accept every connection waiting for approval
-- on a VPC endpoint service, optionally only those of some accounts, in one
-- bulk call.
--
--   lua examples/approve_pending.lua [options] SERVICE_ID
--     --domain ID        only endpoints of this account (domain_id); repeatable,
--                        or comma-separated (also VPCEP_DOMAIN_IDS)
--     --concurrency N    requests in flight at once (default 8)
--     --wait SECONDS     wait until the connections have left `creating`
--     --dry-run          list what would be accepted, accept nothing
--
-- SERVICE_ID may also come from VPCEP_SERVICE_ID. The client settings
-- (VPCEP_ENDPOINT or VPCEP_REGION, HUAWEICLOUD_SDK_PROJECT_ID, VPCEP_TOKEN or
-- HUAWEICLOUD_SDK_AK/_SK/_SECURITY_TOKEN) come from the environment: see
-- examples/settings.lua. Secrets are never read from the command line.
--
-- Prints one line per endpoint and a summary. Exit status: 0 when every
-- matching endpoint was accepted (or none was pending), 1 when any failed,
-- 2 on bad usage or when the pending list could not be read.
local vpcep = require "vpcep"
local settings = dofile((arg[0]:match("^(.*)/") or ".") .. "/settings.lua")

local function usage(msg)
  io.stderr:write("approve_pending: ", msg, "\n",
    "usage: approve_pending.lua [--domain ID]... [--concurrency N] [--wait SECONDS] [--dry-run] SERVICE_ID\n")
  os.exit(2)
end

local function add_domains(set, list)
  for d in list:gmatch("[^,%s]+") do set[d] = true end
end

-- the command line
local service_id
local domains = {}
local concurrency, wait, dry_run
if os.getenv("VPCEP_DOMAIN_IDS") then add_domains(domains, os.getenv("VPCEP_DOMAIN_IDS")) end
local i = 1
while i <= #arg do
  local a = arg[i]
  local function value()
    i = i + 1
    if arg[i] == nil then usage(a .. " needs a value") end
    return arg[i]
  end
  if a == "--domain" then
    add_domains(domains, value())
  elseif a == "--concurrency" then
    concurrency = tonumber(value()) or usage("--concurrency takes a number")
  elseif a == "--wait" then
    wait = tonumber(value()) or usage("--wait takes a number of seconds")
  elseif a == "--dry-run" then
    dry_run = true
  elseif a == "-h" or a == "--help" then
    usage("lists the pending connections of SERVICE_ID and accepts them")
  elseif a:sub(1, 1) == "-" then
    usage("unknown option " .. a)
  elseif service_id == nil then
    service_id = a
  else
    usage("more than one SERVICE_ID")
  end
  i = i + 1
end
service_id = service_id or os.getenv("VPCEP_SERVICE_ID")
if service_id == nil then usage("no SERVICE_ID (argument or VPCEP_SERVICE_ID)") end
local any_domain = next(domains) ~= nil

local opts = settings()
opts.concurrency = concurrency
local ok, client = pcall(vpcep.new, opts)
if not ok then
  io.stderr:write("approve_pending: ", tostring(client), "\n")
  os.exit(2)
end

-- 1. what waits for approval
local pending, total
ok, pending, total = pcall(client.connections, client, service_id, { status = "pendingAcceptance" })
if not ok then
  io.stderr:write("approve_pending: cannot list the pending connections: ", tostring(pending), "\n")
  client:close()
  os.exit(2)
end

-- 2. those of the chosen accounts
local ids, domain_of = {}, {}
for _, conn in ipairs(pending) do
  if not any_domain or domains[conn.domain_id] then
    ids[#ids + 1] = conn.id
    domain_of[conn.id] = conn.domain_id
  end
end
local skipped = #pending - #ids

local function summary(accepted, failed)
  print(string.format("summary: %d pending, %d skipped (other accounts), %d accepted, %d failed",
    total, skipped, accepted, failed))
end

if #ids == 0 then
  print("nothing to approve")
  summary(0, 0)
  client:close()
  os.exit(0)
end

if dry_run then
  for _, id in ipairs(ids) do
    print(string.format("%-9s %s domain=%s", "would", id, tostring(domain_of[id])))
  end
  summary(0, 0)
  client:close()
  os.exit(0)
end

-- 3. one bulk call
local results, call_ok
ok, results = pcall(client.accept, client, service_id, ids, { wait = wait, max_endpoints = #ids })
if not ok then
  local err = results
  if not (vpcep.is_error(err) and err.results) then
    -- nothing was sent (or the call itself broke): no per-endpoint outcome
    io.stderr:write("approve_pending: ", tostring(err), "\n")
    client:close()
    os.exit(1)
  end
  results = err.results
end
call_ok = ok

local accepted, failed = 0, 0
for n, id in ipairs(ids) do
  local r = results[n]
  if r == nil or vpcep.is_error(r) then
    failed = failed + 1
    print(string.format("%-9s %s domain=%s: %s", "FAILED", id, tostring(domain_of[id]),
      r and tostring(r) or "no result"))
  elseif not call_ok and (r.status == "creating" or r.status == "pendingAcceptance") then
    -- the wait ran out before this one settled
    failed = failed + 1
    print(string.format("%-9s %s domain=%s: still %s when the wait ran out", "FAILED", id,
      tostring(domain_of[id]), tostring(r.status)))
  else
    accepted = accepted + 1
    print(string.format("%-9s %s domain=%s", tostring(r.status), id, tostring(domain_of[id])))
  end
end
summary(accepted, failed)
client:close()
os.exit(failed == 0 and 0 or 1)
