-- examples/openresty/vpcep_approve.lua: approving VPC Endpoint connections
-- from nginx with vpcep.resty, which never blocks the worker.
--
--   POST /approve?service=SERVICE_ID&id=ENDPOINT_ID[&id=...]   accepts them now
--   a timer, every N seconds, accepts what is pendingAcceptance on one
--   service (only from the accounts listed, when a list is given)
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

-- One round of the approver: the pending connections of service, those of
-- the listed accounts (domain_id) or all when none is listed, accepted in
-- one bulk call.
local function approve_pending(service, domains)
  local pending, err = client:connections(service, { status = "pendingAcceptance" })
  if not pending then
    ngx.log(ngx.ERR, "vpcep approver: cannot list: ", tostring(err))
    return
  end
  local ids = {}
  for _, c in ipairs(pending) do
    if not domains or domains[c.domain_id] then ids[#ids + 1] = c.id end
  end
  if #ids == 0 then return end
  local conns
  conns, err = client:accept(service, ids)
  if not conns then
    ngx.log(ngx.ERR, "vpcep approver: ", tostring(err))
    return
  end
  ngx.log(ngx.NOTICE, "vpcep approver: accepted ", #conns, " connection(s) on ", service)
end

-- init_worker_by_lua: every `every` seconds, in the first worker only.
-- domains: a list of account ids, or nil for every account.
function M.start_approver(service, every, domains)
  if ngx.worker.id() ~= 0 then return end
  local allowed
  if domains and #domains > 0 then
    allowed = {}
    for _, d in ipairs(domains) do allowed[d] = true end
  end
  local ok, err = ngx.timer.every(every, function(premature)
    if premature or approving then return end
    approving = true
    local fine, e = pcall(approve_pending, service, allowed)
    approving = false
    if not fine then ngx.log(ngx.ERR, "vpcep approver: ", tostring(e)) end
  end)
  if not ok then ngx.log(ngx.ERR, "vpcep approver: cannot start the timer: ", err) end
end

return M
