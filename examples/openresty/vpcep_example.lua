-- examples/openresty/vpcep_example.lua: accept and reject VPC Endpoint
-- connections from an nginx request handler without blocking the worker.
--
--   client:prepare(...)   builds the authenticated request (pure computation)
--   ngx.location.capture  nginx carries it: an internal proxy_pass location
--   vpcep.parse(...)      reads the answer
--
-- Errors are vpcep error objects (tables). A raised table logs as "unknown
-- reason" in nginx, so this code uses vpcep.safe (nil, err) throughout and
-- answers with the error object's fields as JSON.
--
-- The blocking calls (client:accept, ...) use libcurl directly and hold the
-- worker for the duration of the call: use them only where that is fine, e.g.
-- in an ngx.timer.at callback (see M.start_timer), never in a request handler.
local vpcep = require "vpcep"
local cjson = require "cjson.safe"

local safe = vpcep.safe
local M = {}

local config = {}
local client

-- The request headers the internal location forwards, each through its own
-- nginx variable (see nginx.conf). client:prepare sets some of these; any
-- other header would not reach the service, so it is refused below.
local FORWARDED = {
  ["host"] = "vpcep_host",
  ["content-type"] = "vpcep_content_type",
  ["user-agent"] = "vpcep_user_agent",
  ["x-auth-token"] = "vpcep_x_auth_token",
  ["x-project-id"] = "vpcep_x_project_id",
  ["x-sdk-date"] = "vpcep_x_sdk_date",
  ["x-security-token"] = "vpcep_x_security_token",
  ["authorization"] = "vpcep_authorization",
}

-- configure{ endpoint = ... or region = ..., project_id = ..., upstream = "/_vpcep" }
-- Credentials come from the environment (declare them with `env` in
-- nginx.conf): VPCEP_TOKEN, or HUAWEICLOUD_SDK_AK / _SK / _SECURITY_TOKEN.
function M.configure(t)
  config = {}
  for k, v in pairs(t) do config[k] = v end
  config.upstream = config.upstream or "/_vpcep"
end

local function client_options()
  local o = {
    endpoint = config.endpoint,
    region = config.region,
    project_id = config.project_id,
    token = config.token or os.getenv("VPCEP_TOKEN"),
    timeout = config.timeout,
    retries = config.retries,
  }
  if o.token == nil or o.token == "" then
    o.token = nil
    o.ak = os.getenv("HUAWEICLOUD_SDK_AK")
    o.sk = os.getenv("HUAWEICLOUD_SDK_SK")
    o.security_token = os.getenv("HUAWEICLOUD_SDK_SECURITY_TOKEN")
  end
  return o
end

-- One client per worker, made in init_worker_by_lua.
function M.init_worker()
  local c, err = safe.new(client_options())
  if not c then
    ngx.log(ngx.ERR, "vpcep: cannot make the client: ", tostring(err))
    return
  end
  client = c
end

-- An error in the error object's shape, for failures nginx reports itself.
local function own_error(code, message, retryable)
  return { code = code, message = message, retryable = retryable }
end

-- Carries a prepared request through the internal location; returns the
-- decoded answer or nil, err.
local function carry(req)
  local vars = { vpcep_url = req.url }
  for _, var in pairs(FORWARDED) do vars[var] = "" end   -- empty: not sent
  for name, value in pairs(req.headers) do
    local var = FORWARDED[name:lower()]
    if not var then
      return nil, own_error("vpcep.invalid_argument",
        "header " .. name .. " is not forwarded by the nginx configuration", false)
    end
    vars[var] = value
  end
  -- HTTP/1.1 needs Host; a signed request has it already
  if vars.vpcep_host == "" then vars.vpcep_host = req.url:match("^%a+://([^/]+)") end
  local res = ngx.location.capture(config.upstream, {
    method = ngx["HTTP_" .. req.method],
    body = req.body,
    vars = vars,
    copy_all_vars = false,
  })
  -- "-" as the last try's header time: nginx answered itself, the service did not
  local header_time = res.header["X-Vpcep-Header-Time"]
  if header_time and header_time:match("%-%s*$") then
    if res.status == ngx.HTTP_GATEWAY_TIMEOUT then
      return nil, own_error("vpcep.timeout", "the service did not answer in time", true)
    end
    return nil, own_error("vpcep.transport", "no answer from the service (see the nginx error log)", true)
  end
  if res.truncated then
    return nil, own_error("vpcep.transport", "the answer was cut short (see the nginx error log)", true)
  end
  return safe.parse(res.status, res.body, res.header)
end

-- Which HTTP status answers which error.
local function http_status_of(err)
  if err.code == "vpcep.invalid_argument" then return ngx.HTTP_BAD_REQUEST end
  if err.code == "vpcep.connection_failed" then return 409 end
  if err.code == "vpcep.timeout" then return ngx.HTTP_GATEWAY_TIMEOUT end
  if err.status and err.status >= 400 and err.status < 500 then
    return err.status                    -- 400, 401, 403, 404, 429 as the service said
  end
  return ngx.HTTP_BAD_GATEWAY            -- 5xx, transport, bad answers
end

local function answer(status, doc)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(doc))
  return ngx.exit(status)
end

local function answer_error(err)
  return answer(http_status_of(err), { error = {
    code = err.code,
    message = err.message,
    status = err.status,
    request_id = err.request_id,
    retryable = err.retryable and true or false,
    endpoint = err.endpoint,
  } })
end

-- content_by_lua: /vpcep/receive?service=ID&endpoint=ID (or /vpcep/reject?...)
function M.handle(action)
  if not client then
    return answer_error(own_error("vpcep.invalid_argument", "the vpcep client is not configured", false))
  end
  local args = ngx.req.get_uri_args()
  local req, err = client:prepare(action, args.service, args.endpoint)
  if not req then return answer_error(err) end
  local doc
  doc, err = carry(req)
  if not doc then return answer_error(err) end
  local conn = doc.connections and doc.connections[1]
  if type(conn) ~= "table" then
    return answer_error(own_error("vpcep.bad_response", "the answer holds no connection", false))
  end
  if conn.status == "failed" then
    local e = type(conn.error) == "table" and conn.error[1] or {}
    local failed = own_error("vpcep.connection_failed",
      "connection " .. tostring(conn.id) .. " failed: " .. tostring(e.error_code) .. " " .. tostring(e.error_message),
        false)
    failed.endpoint = conn.id
    return answer_error(failed)
  end
  return answer(ngx.HTTP_OK, { connection = conn })
end

-- The blocking client inside a timer: accepts `endpoint` once, shortly after
-- the worker starts, and keeps the outcome in a shared dict for /vpcep/timer.
function M.start_timer(service, endpoint, dict_name)
  local ok, err = ngx.timer.at(0, function(premature)
    if premature then return end
    local dict = ngx.shared[dict_name]
    local c, e = safe.new(client_options())
    if not c then
      dict:set("result", cjson.encode({ error = { code = e.code, message = e.message } }))
      return
    end
    local conns
    conns, e = c:accept(service, endpoint)
    c:close()
    if conns then
      dict:set("result", cjson.encode({ connection = conns[1] }))
    else
      ngx.log(ngx.ERR, "vpcep timer: ", tostring(e))
      dict:set("result", cjson.encode({ error = { code = e.code, message = e.message, status = e.status } }))
    end
  end)
  if not ok then ngx.log(ngx.ERR, "vpcep: cannot start the timer: ", err) end
end

-- content_by_lua: what the timer did (404 until it has run).
function M.timer_result(dict_name)
  local s = ngx.shared[dict_name]:get("result")
  if not s then return answer(ngx.HTTP_NOT_FOUND, { pending = true }) end
  ngx.header["Content-Type"] = "application/json"
  ngx.say(s)
end

return M
