-- examples/neovim/vpcep_job.lua: the worker process behind :VpcepAccept and
-- :VpcepReject. Neovim starts it as a job (vim.fn.jobstart), so the blocking
-- libcurl call runs in this process and the editor's loop keeps going.
--
--   luajit vpcep_job.lua receive|reject SERVICE_ID ENDPOINT_ID
--
-- Settings come from the environment (the plugin sets them): VPCEP_CPATH
-- (prepended to package.cpath), VPCEP_ENDPOINT or VPCEP_REGION,
-- VPCEP_PROJECT_ID (or HUAWEICLOUD_SDK_PROJECT_ID), and the credentials:
-- VPCEP_TOKEN, or HUAWEICLOUD_SDK_AK / _SK / _SECURITY_TOKEN.
-- Prints one JSON line: {"connection":{...}} or {"error":{...}}; exit 0 either way
-- (an exit status other than 0 means this script itself broke).
local cpath = os.getenv("VPCEP_CPATH")
if cpath and cpath ~= "" then package.cpath = cpath .. ";" .. package.cpath end

local vpcep = require "vpcep"
local cjson = require "cjson"

local function env(name)
  local v = os.getenv(name)
  if v == "" then return nil end
  return v
end

local action, service, endpoint = arg[1], arg[2], arg[3]
local opts = {
  endpoint = env("VPCEP_ENDPOINT"),
  region = env("VPCEP_REGION"),
  project_id = env("VPCEP_PROJECT_ID"),
  token = env("VPCEP_TOKEN"),
}

local out
local client, err = vpcep.safe.new(opts)
if client then
  local method = action == "reject" and client.reject or client.accept
  if action ~= "receive" and action ~= "reject" then
    err = { code = "vpcep.invalid_argument", message = "action must be receive or reject" }
  else
    local conns
    conns, err = method(client, service, endpoint)
    if conns then out = { connection = conns[1] } end
  end
  client:close()
end
if not out then
  out = { error = { code = err.code, message = err.message, status = err.status,
                    request_id = err.request_id, retryable = err.retryable and true or false } }
end
io.write(cjson.encode(out), "\n")
