-- vpcep_nvim.health: what :checkhealth vpcep reports. Nothing is sent
-- anywhere, and no secret is shown: credentials are named by where they
-- come from only.
local nvim = require "vpcep_nvim"

local M = {}

-- vim.health (0.8+) or the health module of 0.7
local function reporter()
  local h = vim.health or require "health"
  return {
    start = h.start or h.report_start,
    ok = h.ok or h.report_ok,
    warn = h.warn or h.report_warn,
    error = h.error or h.report_error,
    info = h.info or h.report_info,
  }
end

local function first_line(e)
  return (tostring(e):gsub("\n.*", ""))
end

-- libcurl's version, as the module's User-Agent names it (no request is sent).
local function libcurl_version(core)
  local ok, c = pcall(core.new, { endpoint = "http://127.0.0.1", project_id = "health", token = "health" })
  if not ok then return nil end
  local req = c:prepare("receive", "health", "health")
  c:close()
  return (req.headers["User-Agent"] or ""):match("libcurl/([%w%.%-]+)")
end

function M.check()
  local h = reporter()
  h.start("vpcep")
  nvim.set_paths()
  local ok, core = pcall(require, "vpcep")
  if not ok then
    h.error("the module does not load: " .. first_line(core), {
      "build it for LuaJIT (make LUA=luajit) and set g:vpcep_cpath to its folder's ?.so",
      "package.cpath is: " .. package.cpath })
    return
  end
  local where = package.searchpath and package.searchpath("vpcep", package.cpath)
  h.ok(("module loads: %s%s"):format(core._VERSION, where and (" (" .. where .. ")") or ""))
  local okuv, uvmod = pcall(require, "vpcep.uv")
  if okuv then
    h.ok("vpcep.uv loads: calls run on the editor's loop (libuv " .. vim.loop.version_string() .. ")")
  else
    h.error("vpcep.uv does not load: " .. first_line(uvmod),
      { "set g:vpcep_path to the folder of vpcep/uv.lua (?.lua)" })
  end
  local curl = libcurl_version(core)
  if curl then h.ok("libcurl " .. curl) else h.warn("libcurl's version could not be read") end
  if pcall(require, "cjson") then
    h.ok("JSON library: lua-cjson")
  else
    h.ok("JSON library: vim.json (lua-cjson is not installed for this LuaJIT)")
  end
  local source, why = nvim.credential_source(nil, core)
  if source then h.ok("credentials: " .. source) else h.error("credentials: " .. why) end
  local o = nvim.options()
  local made, c = pcall(core.new, o)
  if made then
    h.ok(("settings accepted: %s, project %s"):format(o.endpoint or ("region " .. tostring(o.region)),
      o.project_id or os.getenv("HUAWEICLOUD_SDK_PROJECT_ID") or "?"))
    c:close()
  elseif source then
    h.error("settings refused: " .. first_line(c),
      { "set g:vpcep_endpoint or g:vpcep_region, and g:vpcep_project_id (see :help vpcep-settings)" })
  end
end

return M
