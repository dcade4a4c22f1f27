-- vpcep_nvim: accept and reject VPC Endpoint connections from Neovim (0.7+),
-- in-process and without blocking the editor: the calls run on Neovim's
-- own event loop (vim.loop) through vpcep.uv, which drives libcurl's multi
-- socket interface. One client per editor session keeps its connections.
--
-- Settings (vim.g, all optional; see :help vpcep-settings):
--   vpcep_cpath       where vpcep.so is, e.g. "/path/vpcep/build/luajit/?.so"
--   vpcep_path        where vpcep/uv.lua is, e.g. "/path/vpcep/lua/?.lua"
--                     (both default to the checkout this plugin sits in, when
--                     it has them, else to what package.cpath/path find)
--   vpcep_endpoint    or vpcep_region, and vpcep_project_id
--   vpcep_options     more options of vpcep.new: timeout, retries, concurrency, ...
-- Credentials come from the environment Neovim started with: $VPCEP_TOKEN,
-- or $HUAWEICLOUD_SDK_AK and $HUAWEICLOUD_SDK_SK [+ _SECURITY_TOKEN].
local M = {}

-- The plugin's folder, and the checkout around it (examples/neovim/).
local here = debug.getinfo(1, "S").source:sub(2):match("^(.*)/lua/vpcep_nvim/[^/]*$") or "."
M.plugin_dir = here
M.checkout = vim.fn.simplify(here .. "/../..")

local function readable(path)
  return vim.fn.filereadable(path) == 1
end

local function nonempty(v)
  if v == nil or v == "" or v == vim.NIL then return nil end
  return v
end

-- Puts template before the search path `field` of package, once.
local function prepend(field, template)
  if template and not (";" .. package[field] .. ";"):find(";" .. template .. ";", 1, true) then
    package[field] = template .. ";" .. package[field]
  end
end

-- Where the module is looked for: the settings, else the checkout's build.
function M.set_paths()
  local cpath = nonempty(vim.g.vpcep_cpath)
  if not cpath and readable(M.checkout .. "/build/luajit/vpcep.so") then
    cpath = M.checkout .. "/build/luajit/?.so"
  end
  local path = nonempty(vim.g.vpcep_path)
  if not path and readable(M.checkout .. "/lua/vpcep/uv.lua") then
    path = M.checkout .. "/lua/?.lua"
  end
  prepend("cpath", cpath)
  prepend("path", path)
end

-- The options of vpcep.new, from the settings and the environment.
function M.options()
  local o = {}
  for k, v in pairs(nonempty(vim.g.vpcep_options) or {}) do o[k] = v end
  o.endpoint = o.endpoint or nonempty(vim.g.vpcep_endpoint)
  o.region = o.region or nonempty(vim.g.vpcep_region)
  o.project_id = o.project_id or nonempty(vim.g.vpcep_project_id)
  -- $VPCEP_TOKEN only when the settings name no credential source themselves
  if not (o.token or o.ak or o.sk or o.iam or o.profile or o.metadata or o.idp) then
    o.token = nonempty(os.getenv("VPCEP_TOKEN"))
  end
  return o
end

-- What the module's source rule (vpcep._source: the options, the
-- environment's chain, the credentials file; no I/O) finds, in words.
-- s holds no secret: only whether one is there.
local function describe_source(s, o)
  local fetched = ", fetched at the first call"
  if s.kind == "token" then
    return o.token == os.getenv("VPCEP_TOKEN") and "IAM token from $VPCEP_TOKEN" or "IAM token from g:vpcep_options"
  end
  if s.auth == "profile" then
    return ("profile [%s] of %s: %s"):format(s.profile, s.profile_path,
      s.kind == "idp" and ("federated token of idp " .. s.idp_id .. fetched) or "AK/SK"
        .. (s.security_token and " with a security token" or ""))
  end
  if s.kind == "aksk" and (o.ak or o.sk) then
    return "AK/SK from g:vpcep_options" .. (s.security_token and " with a security token" or "")
  end
  if s.kind == "aksk" then
    return "AK/SK from $HUAWEICLOUD_SDK_AK and $HUAWEICLOUD_SDK_SK"
      .. (s.security_token and " with $HUAWEICLOUD_SDK_SECURITY_TOKEN" or "")
  end
  if s.kind == "iam" then
    return ("IAM password token of user %s (domain %s)%s"):format(o.iam.user, o.iam.domain, fetched)
  end
  if s.kind == "metadata" then
    -- no metadata_endpoint: the module's default (README), not repeated here
    return ("ECS agency keys from the metadata service %s (%s)%s"):format(
      s.metadata_endpoint or "at its default address", o.metadata and "g:vpcep_options" or "$VPCEP_METADATA=1", fetched)
  end
  return ("federated token of idp %s from %s (%s)%s"):format(s.idp_id, s.id_token_file,
    o.idp and "g:vpcep_options" or "$HUAWEICLOUD_SDK_IDP_ID", fetched)
end

-- Which credentials the client would use, named, never shown; nil and
-- why when there are none or they are malformed. Only the credentials are
-- asked about: the endpoint and project id are stand-ins here.
function M.credential_source(o, core)
  o = o or M.options()
  core = core or require "vpcep"
  local probe = {}
  for k, v in pairs(o) do probe[k] = v end
  probe.region, probe.endpoint = nil, "http://127.0.0.1"
  probe.project_id = probe.project_id or "health"
  local ok, s = pcall(core._source, probe)
  if not ok then
    local why = type(s) == "table" and s.message or tostring(s)
    if type(s) == "table" and s.code == "vpcep.credentials" then
      why = "none: set $VPCEP_TOKEN, or $HUAWEICLOUD_SDK_AK and $HUAWEICLOUD_SDK_SK, or g:vpcep_options "
        .. "(token, ak/sk, iam, profile, metadata, idp) before starting Neovim (" .. why .. ")"
    end
    return nil, why
  end
  return describe_source(s, o)
end

-- require "vpcep.uv", with the paths set; nil and the error when it fails.
function M.load()
  M.set_paths()
  local ok, mod = pcall(require, "vpcep.uv")
  if not ok then return nil, mod end
  return mod
end

-- The session's client, made on first use; nil and the error when it
-- cannot be (no module, bad settings).
function M.client()
  if M._client then return M._client end
  local mod, err = M.load()
  if not mod then return nil, err end
  local ok, c = pcall(mod.new, M.options())
  if not ok then return nil, c end
  M._client = c
  vim.api.nvim_create_autocmd("VimLeavePre", { once = true, callback = function() M.reset() end })
  return c
end

-- Closes the session's client (calls in flight end as vpcep.cancelled);
-- the next call makes a new one, with the settings as they are then.
function M.reset()
  if M._client then
    M._client:close()
    M._client = nil
  end
end

-- An error (object or text) as plain values, for messages and vim.g.
function M.plain_error(e)
  if type(e) ~= "table" then
    return { code = "vpcep_nvim", message = (tostring(e):gsub("\n.*", "")) }
  end
  return { code = e.code, message = e.message, status = e.status, request_id = e.request_id,
           retryable = e.retryable and true or false, endpoint = e.endpoint }
end

-- What a bulk call came to for each id: { id=, status= } or { id=, error= }.
function M.outcomes(ids, conns, err)
  local out = {}
  for i, id in ipairs(ids) do
    local r = conns and conns[i] or (type(err) == "table" and err.results and err.results[i]) or err
    if type(r) == "table" and r.status ~= nil and r.code == nil then
      out[i] = { id = id, status = r.status }
    else
      out[i] = { id = id, error = M.plain_error(r) }
    end
  end
  return out
end

-- Accepts or rejects ids of service sid, concurrently in one call;
-- done(outcomes, err) runs later, where the editor may be changed.
function M.run(action, sid, ids, done)
  local c, err = M.client()
  if not c then
    return vim.schedule(function() done(M.outcomes(ids, nil, err), err) end)
  end
  c[action](c, sid, ids, function(conns, e) done(M.outcomes(ids, conns, e), e) end)
end

local PAST = { accept = "accepted", reject = "rejected" }

-- What :VpcepAccept / :VpcepReject say when done: one message, the detail
-- in g:vpcep_last, and the User autocommand VpcepDone.
function M.report(action, sid, out, err)
  local good, bad = 0, {}
  for _, r in ipairs(out) do
    if r.error then bad[#bad + 1] = r.id .. " " .. tostring(r.error.code) else good = good + 1 end
  end
  vim.g.vpcep_last = { action = action, service_id = sid, results = out, error = err and M.plain_error(err) or nil }
  if #bad == 0 then
    vim.notify(("vpcep: %s: %d %s"):format(action, good, PAST[action]))
  else
    local first = out[1].error and out[1].error.message or ""
    vim.notify(("vpcep: %s: %d %s, %d failed: %s%s"):format(action, good, PAST[action], #bad,
      table.concat(bad, ", ", 1, math.min(#bad, 10)), #out == 1 and (": " .. tostring(first)) or ""),
      vim.log.levels.ERROR)
  end
  vim.cmd("doautocmd <nomodeline> User VpcepDone")
end

-- :VpcepAccept SID ID... / :VpcepReject SID ID...
function M.command(action, args)
  if #args < 2 then
    vim.notify(("usage: :Vpcep%s SERVICE_ID ID..."):format(action == "accept" and "Accept" or "Reject"),
      vim.log.levels.ERROR)
    return
  end
  local sid, ids = args[1], { unpack(args, 2) }
  vim.g.vpcep_last = nil
  M.run(action, sid, ids, function(out, err) M.report(action, sid, out, err) end)
end

return M
