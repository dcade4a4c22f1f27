-- spec/env_child.lua: runs a piece of Lua in a child process whose
-- environment is exactly the one given (`env -i`, plus PATH), with this
-- run's interpreter and build, for the specs of where credentials and
-- endpoints are found (profile_spec.lua, sources_spec.lua): the module reads
-- the environment, and Lua cannot change its own.
--
--   local run = require "spec.env_child"
--   local out = run(env, opts, body)
-- `body` sees `vpcep` and `OPTS` (a copy of opts: strings, numbers, booleans)
-- and returns a table of strings, numbers and booleans; out is that table,
-- or { err_code =, err_message =, err_string = } when body raised an error
-- object. Anything else the child prints, or a raised non-error, fails.
local helper = require "spec.helper"

local q = helper.shell_quote

local function literal(t)
  local parts = {}
  for k, v in pairs(t or {}) do
    local val = type(v) == "string" and string.format("%q", v) or tostring(v)
    parts[#parts + 1] = string.format("[%q]=%s", k, val)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local CHILD = [[
local vpcep = require 'vpcep'
local function dump(t)
  local parts = {}
  for k, v in pairs(t) do
    local val = type(v) == 'string' and string.format('%q', v) or tostring(v)
    parts[#parts + 1] = string.format('[%q]=%s', k, val)
  end
  return '{' .. table.concat(parts, ',') .. '}'
end
local ok, r = pcall(function() return BODY end)
if ok then
  io.write('RESULT return ', dump(r or {}), '\n')
elseif vpcep.is_error(r) then
  io.write('RESULT return ', dump { err_code = r.code, err_message = r.message, err_string = tostring(r) }, '\n')
else
  io.write('RAISED ', tostring(r), '\n')
end
]]

return function(env, opts, body)
  local code = "package.cpath = " .. string.format("%q", package.cpath) .. "\nlocal OPTS = " .. literal(opts)
    .. "\n" .. CHILD:gsub("BODY", function() return "(function() " .. body .. " end)()" end)
  local words = { "env", "-i", q("PATH=" .. (os.getenv("PATH") or "/usr/bin:/bin")) }
  for k, v in pairs(env) do words[#words + 1] = q(k .. "=" .. v) end
  words[#words + 1] = q(helper.interpreter())
  words[#words + 1] = "-e " .. q(code) .. " </dev/null 2>&1"
  local p = assert(io.popen(table.concat(words, " "), "r"))
  local output = p:read("*a")
  p:close()
  local chunk = output:match("^RESULT (return {.*})\n$")
  assert(chunk, "the child printed something else:\n" .. output)
  return assert((loadstring or load)(chunk))()
end
