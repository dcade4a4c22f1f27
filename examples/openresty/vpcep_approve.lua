-- examples/openresty/vpcep_approve.lua: approving VPC Endpoint connections
-- from nginx with vpcep.resty, which never blocks the worker.
--
--   POST /approve?service=SERVICE_ID&id=ENDPOINT_ID[&id=...]   accepts them now
--   a timer, every N seconds, runs client:reconcile on one service: what is
--   pendingAcceptance from the accounts listed (every account when none is)
--   is accepted, the rest left alone or rejected; each action is logged
--
-- Errors are vpcep error objects. nginx logs a raised table as "unknown
-- reason", so this code takes them as values (vpcep.resty.safe: nil, err),
-- answers them as JSON and logs tostring(err), which holds no secret.
-- luacheck: std +ngx_lua
local cjson = require "cjson.safe"
local resty = require "vpcep.resty"

local M = {}
local client
local approving = false -- a round still running when the next is due is not doubled

-- configure{ <vpcep client options> } in init_by_lua: new only validates
-- (cosockets do not exist there), so a bad option stops nginx at start.
-- The credentials come from the environment, which nginx keeps only for
-- the names declared with `env`: VPCEP_TOKEN, or HUAWEICLOUD_SDK_AK / _SK.
function M.configure(opts)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.token = o.token or os.getenv("VPCEP_TOKEN")
  if o.token == "" then o.token = nil end
  local c, err = resty.safe.new(o)
  if not c then error("vpcep: " .. tostring(err), 0) end
  client = c
end

local function answer(status, doc)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(doc))
  return ngx.exit(status)
end

-- The HTTP status that answers an error: bad input 400, the service's 4xx
-- as they came, a failed connection 409, a timeout 504, the rest 502.
local function status_of(err)
  if err.code == "vpcep.invalid_argument" then return 400 end
  if err.code == "vpcep.connection_failed" then return 409 end
  if err.code == "vpcep.timeout" then return 504 end
  if err.status and err.status >= 400 and err.status < 500 then return err.status end
  return 502
end

local function error_doc(err)
  return { code = err.code, message = err.message, status = err.status, request_id = err.request_id,
           retryable = err.retryable and true or false, endpoint = err.endpoint }
end

-- content_by_lua: POST /approve?service=...&id=...
function M.approve()
  if ngx.req.get_method() ~= "POST" then return answer(405, { error = { message = "POST only" } }) end
  local args = ngx.req.get_uri_args()
  local ids = args.id
  if type(ids) == "table" and #ids == 1 then ids = ids[1] end
  local conns, err = client:accept(args.service, ids)
  if not conns then
    ngx.log(ngx.WARN, "vpcep approve: ", tostring(err))
    local doc = { error = error_doc(err) }
    if err.results then -- a bulk call: what became of each id, in order
      doc.results = {}
      for i, r in ipairs(err.results) do
        doc.results[i] = resty.is_error(r) and { error = error_doc(r) } or r
      end
    end
    return answer(status_of(err), doc)
  end
  return answer(200, { connections = conns })
end

-- The approver's policy: accept the connections of the listed accounts
-- (domain ids), or of every account when none is listed; the others are
-- left alone, or rejected when others is "reject".
local function approver_policy(domains, others)
  if not domains then
    return function() return "accept", "the approver accepts every account" end
  end
  return { accept_domains = domains, otherwise = others == "reject" and "reject" or "leave" }
end

-- One round of the approver: client:reconcile over the service's pending
-- connections, and a log line for each connection acted on (or failed).
local function reconcile_round(service, policy)
  local report, err = client:reconcile(service, policy)
  if not report then
    ngx.log(ngx.ERR, "vpcep approver: ", tostring(err))
    report = err.report
    if not report then return end -- the listing failed: nothing was acted on; the next round tries again
  end
  for _, e in ipairs(report.plan) do
    if e.outcome == "failed" then
      ngx.log(ngx.ERR, "vpcep approver: ", tostring(e.id), " (domain ", tostring(e.domain_id), "): ", e.action,
        " failed: ", tostring(e.error))
    elseif e.outcome ~= "left" then
      ngx.log(ngx.NOTICE, "vpcep approver: ", e.id, " (domain ", tostring(e.domain_id), "): ", e.outcome, ": ",
        e.reason)
    end
  end
  if report.accepted + report.rejected + report.failed > 0 then
    ngx.log(ngx.NOTICE, string.format("vpcep approver: %s: accepted %d, rejected %d, left %d, failed %d",
      service, report.accepted, report.rejected, report.left, report.failed))
  end
end

-- init_worker_by_lua: every `every` seconds, in the first worker only.
-- domains: a list of account ids, or nil (or empty) for every account;
-- others: "reject" to reject the connections of other accounts (default:
-- leave them).
function M.start_approver(service, every, domains, others)
  if ngx.worker.id() ~= 0 then return end
  local policy = approver_policy(domains and #domains > 0 and domains or nil, others)
  -- cosockets work in timers (not in init_worker itself): each round runs there
  local ok, err = ngx.timer.every(every, function(premature)
    if premature or approving then return end
    approving = true
    local fine, e = pcall(reconcile_round, service, policy)
    approving = false
    if not fine then ngx.log(ngx.ERR, "vpcep approver: ", tostring(e)) end
  end)
  if not ok then ngx.log(ngx.ERR, "vpcep approver: cannot start the timer: ", err) end
end

return M
