-- examples/neovim/lua/vpcep_nvim/init.lua: accept or reject a VPC Endpoint
-- connection from Neovim (0.7+) without blocking the editor.
--
-- The call runs in a job (a `luajit` process running vpcep_job.lua), so the
-- editor's event loop goes on while libcurl waits on the service; the result
-- comes back through the job's output. (vim.loop.new_work cannot carry the
-- client: it is C userdata, and a work thread has its own Lua state.)
--
-- Settings (vim.g):
--   vpcep_lua        interpreter for the job (default: luajit, else lua5.1)
--   vpcep_cpath      where vpcep.so is, e.g. "/path/build/luajit/?.so"
--                    (default: this Neovim's package.cpath)
--   vpcep_endpoint   or vpcep_region, and vpcep_project_id
-- Credentials stay in the environment Neovim was started with: VPCEP_TOKEN,
-- or HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK [/ HUAWEICLOUD_SDK_SECURITY_TOKEN].
local M = {}

local here = debug.getinfo(1, "S").source:sub(2):match("^(.*)/lua/vpcep_nvim/[^/]*$") or "."
M.job_script = here .. "/vpcep_job.lua"

local function interpreter()
  if vim.g.vpcep_lua then return vim.g.vpcep_lua end
  if vim.fn.executable("luajit") == 1 then return "luajit" end
  return "lua5.1"
end

-- M.run(action, service, endpoint, on_done) starts the call and returns the
-- job id at once; on_done(result) runs later on the main loop with
-- { connection = {...} } or { error = { code, message, ... } }.
function M.run(action, service, endpoint, on_done)
  local out, errs = {}, {}
  local env = {
    VPCEP_CPATH = vim.g.vpcep_cpath or package.cpath,
    VPCEP_ENDPOINT = vim.g.vpcep_endpoint or "",
    VPCEP_REGION = vim.g.vpcep_region or "",
    VPCEP_PROJECT_ID = vim.g.vpcep_project_id or os.getenv("HUAWEICLOUD_SDK_PROJECT_ID") or "",
  }
  local id = vim.fn.jobstart({ interpreter(), M.job_script, action, service, endpoint }, {
    env = env,
    stdout_buffered = true,
    stderr_buffered = true,
    on_stdout = function(_, data) out = data end,
    on_stderr = function(_, data) errs = data end,
    on_exit = function(_, code)
      local line = table.concat(out, "\n")
      local ok, result = pcall(vim.json.decode, line)
      if code ~= 0 or not ok or type(result) ~= "table" then
        result = { error = { code = "vpcep.job", message = "the vpcep job failed (exit " .. code .. "): "
          .. table.concat(errs, "\n"):sub(1, 500) } }
      end
      on_done(result)
    end,
  })
  if id <= 0 then
    on_done({ error = { code = "vpcep.job", message = "cannot start " .. interpreter() } })
  end
  return id
end

-- What :VpcepAccept / :VpcepReject do with a result: remember it, tell the user.
function M.report(action, result)
  vim.g.vpcep_last = result
  if result.connection then
    vim.notify(("vpcep: %s %s: %s"):format(action, tostring(result.connection.id), tostring(result.connection.status)))
  else
    local e = result.error or {}
    vim.notify(("vpcep: %s failed: %s %s"):format(action, tostring(e.code), tostring(e.message)), vim.log.levels.ERROR)
  end
  vim.cmd("doautocmd <nomodeline> User VpcepDone")
end

function M.command(action)
  return function(opts)
    local service, endpoint = opts.fargs[1], opts.fargs[2]
    if #opts.fargs ~= 2 then
      vim.notify("usage: :Vpcep" .. (action == "reject" and "Reject" or "Accept") .. " SERVICE_ID ENDPOINT_ID",
        vim.log.levels.ERROR)
      return
    end
    vim.g.vpcep_last = nil
    M.run(action, service, endpoint, function(result) M.report(action, result) end)
  end
end

return M
