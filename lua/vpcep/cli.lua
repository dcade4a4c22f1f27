-- vpcep.cli: the `vpcep` command (bin/vpcep is its launcher). Accepts,
-- rejects and lists the connections of a Huawei Cloud VPC Endpoint service
-- from a shell. Everything that touches the service (the requests, signing,
-- parsing, retries) is the vpcep module's; this module reads the command
-- line, calls the module and prints what came back.
--
--   local status = require("vpcep.cli").main(argv [, io])
--
-- argv is the list of arguments (without the program name); io may replace
-- what the command reads and writes: stdout, stderr, stdin (file-like:
-- write/flush, read), getenv(name) and isatty(fd). Nothing else of the
-- process is touched, so it can run in-process, any number of times.
-- Works on Lua 5.1-5.4 and LuaJIT.
local argparse = require "argparse"
local cjson = require "cjson"

local json = cjson.new and cjson.new() or cjson

local M = {}

local PROG = "vpcep"
local EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
local LUAS = { "lua5.1", "lua5.3", "lua5.4", "luajit" }
local THIS_LUA = rawget(_G, "jit") and "luajit" or ("lua" .. (_VERSION:match("%d+%.%d+") or ""))

----------------------------------------------------------------------------
-- Loading the module, and saying why it did not load

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- "a/bin/../build" -> "a/build", "./bin/../build" -> "build" (as text:
-- for a message, links are not followed)
local function tidy_path(p)
  local segs = {}
  for seg in p:gmatch("[^/]+") do
    if seg == ".." and #segs > 0 and segs[#segs] ~= ".." then
      segs[#segs] = nil
    elseif seg ~= "." then
      segs[#segs + 1] = seg
    end
  end
  local s = table.concat(segs, "/")
  if p:sub(1, 1) == "/" then return "/" .. s end
  return s == "" and "." or s
end

-- When a build root on package.cpath (ROOT/<this lua>/?.so) has the module
-- built for other Luas only: which build is missing and the make command
-- that makes it. nil when that is not the case.
local function missing_build(cpath)
  for template in cpath:gmatch("[^;]+") do
    local root = template:match("^(.*)/" .. THIS_LUA:gsub("%.", "%%.") .. "/%?%.so$")
    if root then
      local found = {}
      for _, lua in ipairs(LUAS) do
        if lua ~= THIS_LUA and file_exists(root .. "/" .. lua .. "/vpcep.so") then
          found[#found + 1] = lua
        end
      end
      if #found > 0 then
        root = tidy_path(root)
        local checkout = root == "build" and "." or root:match("^(.*)/build$")
        local shown = {}
        for i, lua in ipairs(found) do shown[i] = (checkout and "build/" or root .. "/") .. lua end
        local make = "make LUA=" .. THIS_LUA .. (checkout and "" or " O=" .. root)
        return string.format("no build for %s (found %s); run: %s%s", THIS_LUA, table.concat(shown, ", "),
          make, checkout and checkout ~= "." and " (in " .. checkout .. ")" or "")
      end
    end
  end
end

-- vpcep, or nil and the one line that says why it cannot be loaded.
local function load_vpcep()
  local ok, vpcep = pcall(require, "vpcep")
  if ok then return vpcep end
  local why = tostring(vpcep)
  if why:find("module 'vpcep' not found", 1, true) then
    local missing = missing_build(package.cpath)
    if missing then return nil, missing end
  end
  return nil, "cannot load the vpcep module (luarocks install vpcep, or make in a checkout): "
    .. (why:gsub("\n.*", ""))
end

----------------------------------------------------------------------------
-- The command line

local COMMANDS = { "accept", "reject", "list", "approve-pending", "reconcile" }

-- { flag, ARGNAME (nil for a switch), help }
local SETTINGS = {
  { "--region", "REGION", "service region, e.g. cn-north-4 (VPCEP_REGION)" },
  { "--endpoint", "URL", "https://host[:port] instead of a region (VPCEP_ENDPOINT)" },
  { "--project-id", "ID", "project id (HUAWEICLOUD_SDK_PROJECT_ID)" },
  { "--token-file", "FILE", "read an IAM token from FILE (VPCEP_TOKEN_FILE); without it, AK/SK come from "
    .. "HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK and HUAWEICLOUD_SDK_SECURITY_TOKEN. There is no token "
    .. "flag: a flag would show in ps." },
  { "--profile", "NAME", "credentials from section NAME of the credentials file "
    .. "(HUAWEICLOUD_SDK_CREDENTIALS_FILE, else ~/.huaweicloud/credentials; VPCEP_PROFILE)" },
  { "--iam-user", "USER", "get an IAM token for USER (VPCEP_IAM_USER); the password only from "
    .. "VPCEP_IAM_PASSWORD, the account from --iam-domain" },
  { "--iam-domain", "DOMAIN", "the account (domain) name of --iam-user (VPCEP_IAM_DOMAIN)" },
  { "--iam-endpoint", "URL", "IAM's https://host[:port] (HUAWEICLOUD_SDK_IAM_ENDPOINT)" },
  { "--metadata", nil, "an ECS agency's temporary keys from the metadata service (VPCEP_METADATA=1)" },
  { "--metadata-endpoint", "URL", "the metadata service (VPCEP_METADATA_ENDPOINT; default "
    .. "http://169.254.169.254)" },
  { "--timeout", "SECONDS", "total time allowed per request (default 60)" },
  { "--retries", "N", "retries of throttled/failed requests, 0..10 (default 3)" },
  { "--concurrency", "N", "requests in flight at once, 1..64 (default 8)" },
  { "--cafile", "FILE", "CA certificates to trust (PEM)" },
  { "--insecure", nil, "do not verify the server's certificate" },
  { "--json", nil, "print JSON for programs instead of lines for people" },
  { "--no-progress", nil, "no progress line, even on a terminal" },
}

local SERVICE = { "--service", "SID", "the VPC endpoint service id (required)" }
local WAIT_HELP = "after %s, wait until each connection has left creating/pendingAcceptance%s"
local DRY_RUN = { "--dry-run", nil, "send nothing; print the requests as curl command lines (the token or "
  .. "signature is masked: fill it in)" }

local function action_spec(name, verb, past)
  return {
    usage = "Usage: vpcep " .. name .. " --service SID [OPTIONS] ENDPOINT_ID...",
    summary = verb:lower() .. " endpoint connections:\nvpcep " .. name .. " --service SID ENDPOINT_ID...",
    description = verb .. "s the connections of the given VPC endpoints to the service SID. The service "
      .. "takes one endpoint per request; they are sent concurrently. An ENDPOINT_ID of \"-\" reads more "
      .. "ids from standard input (separated by blanks or new lines).\n\n"
      .. "Prints one line per endpoint (id, status, and the error code and request id when it failed), "
      .. "then a summary. On a terminal, a progress line on stderr shows done/total, failures, rate and "
      .. "time left.",
    ids = true,
    options = { SERVICE,
      { "--wait", "SECONDS", WAIT_HELP:format(past, " (a connection still pending then counts as failed)") },
      DRY_RUN },
  }
end

local SPECS = {
  accept = action_spec("accept", "Accept", "accepting"),
  reject = action_spec("reject", "Reject", "rejecting"),
  list = {
    usage = "Usage: vpcep list --service SID [--status STATUS] [--json]",
    summary = "list connections:\nvpcep list --service SID [--status S] [--json]",
    description = "Lists the connections of the service SID (all pages), one line per connection: id, "
      .. "status, domain id, marker id, and the error code of a failed connection.",
    options = { SERVICE,
      { "--status", "STATUS", "only connections in this status: pendingAcceptance, creating, accepted, "
        .. "rejected, failed, deleting" } },
  },
  ["approve-pending"] = {
    usage = "Usage: vpcep approve-pending --service SID [--domain DOMAIN_ID]... [--wait SECONDS]",
    summary = "accept every pending connection (of some domains only, with --domain):\n"
      .. "vpcep approve-pending --service SID [--domain D]...",
    description = "Lists the connections of the service SID that are pendingAcceptance and accepts them. "
      .. "With --domain (repeatable), only connections from those domains (accounts) are accepted; the "
      .. "others are left pending.",
    options = { SERVICE,
      { "--domain", "DOMAIN_ID", "accept only connections of this domain (repeatable)", repeatable = true },
      { "--wait", "SECONDS", WAIT_HELP:format("accepting", "") },
      { "--dry-run", nil, "list (that sends a read-only request), then print the accept requests as curl "
        .. "command lines instead of sending them (the token or signature is masked)" } },
  },
  reconcile = {
    usage = "Usage: vpcep reconcile --service SID [--accept-domain D]... [--reject-domain D]... "
      .. "[--reject-others] [--policy FILE.lua] [--describe] [--dry-run] [--json] [--watch SECONDS] [--log FILE]",
    summary = "decide each pending connection by a policy, then accept or reject in bulk:\n"
      .. "vpcep reconcile --service SID --accept-domain D... [--reject-others]",
    description = "Lists the connections of the service SID that are pendingAcceptance (or in each --status), "
      .. "decides each by the policy (--accept-domain, --reject-domain and --reject-others, or --policy FILE), "
      .. "then accepts and rejects in bulk. A connection of no listed domain is left pending unless "
      .. "--reject-others. Prints one line per connection (id, domain, action, outcome, reason), then a "
      .. "summary.\n\n"
      .. "The policy file of --policy is Lua that returns a function (conn) -> \"accept\", \"reject\" or nil "
      .. "[, reason], or a table { accept_domains = {...}, reject_domains = {...}, otherwise = \"leave\" or "
      .. "\"reject\" }. A policy that raises (or answers anything else) fails that connection alone.\n\n"
      .. "With --watch SECONDS it runs a round, waits SECONDS, and runs the next, until interrupted (or "
      .. "--rounds N); a round that fails is reported and the next still runs. Each round reads the "
      .. "credentials again.",
    options = { SERVICE,
      { "--accept-domain", "DOMAIN_ID", "accept connections of this domain (repeatable)", repeatable = true },
      { "--reject-domain", "DOMAIN_ID", "reject connections of this domain (repeatable)", repeatable = true },
      { "--reject-others", nil, "reject connections of any other domain (default: leave them pending)" },
      { "--policy", "FILE", "a Lua file returning the policy (a function or a table); not with the domain flags" },
      { "--status", "STATUS", "look at connections in this status (repeatable; default pendingAcceptance)",
        repeatable = true },
      { "--describe", nil, "write each decision's reason, with the time, into the connection's description "
        .. "(before its action)" },
      { "--wait", "SECONDS", WAIT_HELP:format("acting", "") },
      { "--dry-run", nil, "decide and print the plan (id, domain, action, reason); sends nothing but list reads" },
      { "--watch", "SECONDS", "run a round every SECONDS (after the last one ended) until interrupted" },
      { "--rounds", "N", "with --watch: stop after N rounds" },
      { "--log", "FILE", "append one JSON line per decision and per action to FILE (never a secret)" } },
  },
}

local MAIN_EPILOG = [[
Run "vpcep COMMAND --help" (or "vpcep help COMMAND") for a command's options.

Exit status: 0 all done, 1 some endpoint (or the call) failed, 2 bad usage.]]

local TOKEN_FLAG = "there is no --token flag (a token on the command line shows in ps): "
  .. "use --token-file FILE or VPCEP_TOKEN_FILE"

local function layout(p)
  return p:add_help(false):help_max_width(80):help_usage_margin(2):help_description_margin(25)
end

local function add_option(p, o)
  local opt = p:option(o[1], o[3])
  if o[2] == nil then
    opt:args(0)
  else
    opt:argname(o[2])
    if o.repeatable then opt:count("*") else opt:overwrite(false) end
  end
  return opt
end

local function help_flag(p)
  return p:flag("-h --help", "this help")
end

local function add_settings(p)
  local group = {}
  for _, o in ipairs(SETTINGS) do group[#group + 1] = add_option(p, o) end
  p:group("Settings (flags win over the environment)", (table.unpack or unpack)(group))
end

local function command_parser(parent, name)
  local spec = SPECS[name]
  local c = layout(parent:command(name)):usage(spec.usage):summary(spec.summary):description(spec.description)
  if spec.ids then
    c:argument("ENDPOINT_ID", "an endpoint id; \"-\" reads more ids from standard input"):args("*"):target("ids")
  else
    c:argument("extra"):args("*"):hidden(true)
  end
  local own = {}
  for _, o in ipairs(spec.options) do own[#own + 1] = add_option(c, o) end
  own[#own + 1] = help_flag(c)
  c:group("Options", (table.unpack or unpack)(own))
  add_settings(c)
  return c
end

-- The parser, and its command parsers by name.
local function new_parser()
  local p = layout(argparse(PROG)):usage("Usage: vpcep COMMAND [OPTIONS]")
    :description("Accept, reject and list the connections of a Huawei Cloud VPC Endpoint service, "
      .. "by hand or by a policy (reconcile).")
    :epilog(MAIN_EPILOG):require_command(false):command_target("command")
  p:group("Options", help_flag(p), p:flag("--version", "print the version"))
  add_settings(p)
  local parsers = {}
  for _, name in ipairs(COMMANDS) do parsers[name] = command_parser(p, name) end
  local help = p:command("help"):add_help(false):target("help_command")
    :summary("a command's options: vpcep help COMMAND")
  help:argument("topic"):args("?")
  return p, parsers
end

-- Every option a command takes: flag -> true when it takes a value.
local function known_flags()
  local known = { ["--token"] = true }
  for _, o in ipairs(SETTINGS) do known[o[1]] = o[2] ~= nil end
  for _, spec in pairs(SPECS) do
    for _, o in ipairs(spec.options) do known[o[1]] = o[2] ~= nil end
  end
  return known
end
local KNOWN_FLAGS = known_flags()

-- The arguments as vpcep has always read them, for argparse: the command
-- word first (argparse takes a command's options after it only; vpcep
-- takes them on both sides), and a known option that takes a value joined
-- to the next argument whatever it holds ("--wait -1" is --wait's bad
-- value, not an unknown option "-1"). Returns them and the command word
-- (nil when there is none).
local function normalize(argv)
  local out, word, i = {}, nil, 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i, #argv do out[#out + 1] = argv[j] end
      break
    elseif a:sub(1, 1) ~= "-" or a == "-" then
      if word == nil then
        word = a
        table.insert(out, 1, a)
      else
        out[#out + 1] = a
      end
    elseif KNOWN_FLAGS[a] and argv[i + 1] ~= nil then
      out[#out + 1] = a .. "=" .. argv[i + 1]
      i = i + 1
    else
      out[#out + 1] = a
    end
    i = i + 1
  end
  return out, word
end

local UsageError = {}

local function usage(cmd, fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or fmt
  error(setmetatable({ cmd = cmd, msg = msg }, UsageError), 0)
end

-- argparse's message in the words vpcep has always used.
local function usage_text(msg, cmd)
  local name, rest = msg:match("^unknown option '([^']*)'(.*)$")
  if name then
    if name == "--token" then return TOKEN_FLAG end
    if KNOWN_FLAGS[name] ~= nil then
      return cmd and (name .. " does not apply to " .. cmd) or (name .. " goes after a command")
    end
    local tip = rest:match("Did you mean '([^']*)'%?")
    return "unknown option " .. name .. (tip and ("; did you mean " .. tip .. "?") or "")
  end
  name = msg:match("^option '([^']*)' requires an argument$")
  if name then return name .. " needs a value" end
  name = msg:match("^option '([^']*)' must be used at most 1 time$")
  if name then return name .. " is given twice" end
  name = msg:match("^option '([^']*)' does not take arguments$")
  if name then return name .. " takes no value" end
  name = msg:match("^unknown command '([^']*)'")
  if name then return "unknown command '" .. name .. "'" end
  return (msg:gsub("\n", " "))
end

----------------------------------------------------------------------------
-- Settings

local function env(ctx, name)
  local v = ctx.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

local function number_flag(cmd, value, flag, min)
  if value == nil then return nil end
  local n = tonumber(value)
  if n == nil or n ~= n or n < (min or 0) then
    usage(cmd, "%s needs a number%s, got '%s'", flag, min and min > 0 and " above 0" or "", value)
  end
  return n
end

local function read_token_file(cmd, path)
  local f, why = io.open(path, "rb")
  if not f then usage(cmd, "cannot read the token file: %s", why) end
  local s = f:read("*a") or ""
  f:close()
  s = s:gsub("^%s+", ""):gsub("%s+$", "")
  if s == "" then usage(cmd, "the token file %s is empty", path) end
  return s
end

-- The environment names of the options that can come from it.
local ENV_NAME = { ak = "HUAWEICLOUD_SDK_AK", sk = "HUAWEICLOUD_SDK_SK",
  security_token = "HUAWEICLOUD_SDK_SECURITY_TOKEN" }

-- The credential source, from the flags and the environment: a token file,
-- a profile, an IAM user, the metadata service, AK/SK, or a federated
-- token file, in that order; more than one given by flags is a usage
-- error. They are read here, through ctx.getenv, and always passed to
-- vpcep.new, so the module never falls back to the process's own
-- environment behind the command's back (the credentials file's path,
-- HUAWEICLOUD_SDK_CREDENTIALS_FILE, is the one thing the module reads
-- itself). Returns whether AK/SK came from the environment.
local function flag_sources(ctx, a)
  local given = {}
  local token_file = a.token_file or env(ctx, "VPCEP_TOKEN_FILE")
  if token_file then given[#given + 1] = { "token", token_file } end
  local profile = a.profile or env(ctx, "VPCEP_PROFILE")
  if profile then given[#given + 1] = { "profile", profile } end
  local user = a.iam_user or env(ctx, "VPCEP_IAM_USER")
  if user then given[#given + 1] = { "iam", user } end
  if a.metadata or env(ctx, "VPCEP_METADATA") == "1" then given[#given + 1] = { "metadata" } end
  return given
end

local SOURCE_NAME = { token = "--token-file", profile = "--profile", iam = "--iam-user",
  metadata = "--metadata" }

local function iam_source(ctx, cmd, a, user)
  local domain = a.iam_domain or env(ctx, "VPCEP_IAM_DOMAIN")
  if domain == nil then usage(cmd, "--iam-user needs --iam-domain DOMAIN (or VPCEP_IAM_DOMAIN)") end
  local password = env(ctx, "VPCEP_IAM_PASSWORD")
  if password == nil then usage(cmd, "--iam-user needs its password in VPCEP_IAM_PASSWORD") end
  return { user = user, domain = domain, password = password }
end

local function env_sources(ctx, cmd, o)
  o.ak, o.sk = env(ctx, ENV_NAME.ak), env(ctx, ENV_NAME.sk)
  if o.ak ~= nil or o.sk ~= nil then
    if o.ak == nil or o.sk == nil then
      usage(cmd, "no credentials: %s is not set (%s and %s go together)", o.ak and ENV_NAME.sk or ENV_NAME.ak,
        ENV_NAME.ak, ENV_NAME.sk)
    end
    o.security_token = env(ctx, ENV_NAME.security_token)
    return true
  end
  local idp, file = env(ctx, "HUAWEICLOUD_SDK_IDP_ID"), env(ctx, "HUAWEICLOUD_SDK_ID_TOKEN_FILE")
  if idp or file then
    if not (idp and file) then
      usage(cmd, "HUAWEICLOUD_SDK_IDP_ID and HUAWEICLOUD_SDK_ID_TOKEN_FILE go together")
    end
    o.idp = { id = idp, token_file = file }
    return false
  end
  -- Last, the credentials file's default section, as the module's own
  -- chain does.
  local path = env(ctx, "HUAWEICLOUD_SDK_CREDENTIALS_FILE")
  if path == nil and env(ctx, "HOME") then path = env(ctx, "HOME") .. "/.huaweicloud/credentials" end
  if path == nil or not file_exists(path) then
    usage(cmd, "no credentials: use --token-file FILE (or VPCEP_TOKEN_FILE), --profile NAME, --iam-user USER, "
      .. "--metadata, or set %s and %s", ENV_NAME.ak, ENV_NAME.sk)
  end
  o.profile = "basic"
  return false
end

local function credentials(ctx, cmd, a, o)
  local given = flag_sources(ctx, a)
  if #given > 1 then
    usage(cmd, "give one credential source, not both %s and %s", SOURCE_NAME[given[1][1]],
      SOURCE_NAME[given[2][1]])
  end
  if a.iam_domain and (given[1] == nil or given[1][1] ~= "iam") then
    usage(cmd, "--iam-domain goes with --iam-user")
  end
  o.iam_endpoint = a.iam_endpoint or env(ctx, "HUAWEICLOUD_SDK_IAM_ENDPOINT")
  local kind = given[1] and given[1][1]
  local metadata_endpoint = a.metadata_endpoint or env(ctx, "VPCEP_METADATA_ENDPOINT")
  if a.metadata_endpoint and kind ~= "metadata" then usage(cmd, "--metadata-endpoint goes with --metadata") end
  if kind == "metadata" then o.metadata_endpoint = metadata_endpoint end
  if kind == "token" then
    o.token = read_token_file(cmd, given[1][2])
  elseif kind == "profile" then
    o.profile = given[1][2]
  elseif kind == "iam" then
    o.iam = iam_source(ctx, cmd, a, given[1][2])
  elseif kind == "metadata" then
    o.metadata = true
  else
    return env_sources(ctx, cmd, o)
  end
  return false
end

-- The options of vpcep.new, from the flags and the environment; and
-- whether AK/SK came from the environment.
local function client_options(ctx, cmd, a)
  local o = {}
  o.project_id = a.project_id
  if o.project_id == nil then
    -- Without one, the module finds it (the token, the profile, or IAM).
    o.project_id = env(ctx, "HUAWEICLOUD_SDK_PROJECT_ID")
    if o.project_id ~= nil then ctx.vpcep._check_id(o.project_id, "HUAWEICLOUD_SDK_PROJECT_ID") end
  end
  if a.region or a.endpoint then
    o.region, o.endpoint = a.region, a.endpoint
  else
    o.region, o.endpoint = env(ctx, "VPCEP_REGION"), env(ctx, "VPCEP_ENDPOINT")
  end
  local from_env = credentials(ctx, cmd, a, o)
  if o.token ~= nil and o.project_id == nil and o.region == nil then
    -- With a region the module looks the project up (the token signs the
    -- lookup); with an endpoint there is nothing to look it up by.
    usage(cmd, "project_id is missing (give --project-id ID, or set HUAWEICLOUD_SDK_PROJECT_ID)")
  end
  o.timeout = number_flag(cmd, a.timeout, "--timeout", 0)
  o.retries = number_flag(cmd, a.retries, "--retries")
  o.concurrency = number_flag(cmd, a.concurrency, "--concurrency", 0)
  o.cafile = a.cafile
  if a.insecure then o.verify = false end
  return o, from_env
end

-- vpcep.new. The module names the options it was given: where they came
-- from the environment, its message says the variable instead.
local function new_client(ctx, cmd, a)
  local o, from_env = client_options(ctx, cmd, a)
  local ok, client = pcall(ctx.vpcep.new, o)
  if ok then return client end
  if from_env and ctx.vpcep.is_error(client) and client.code == "vpcep.invalid_argument" then
    client.message = client.message:gsub("^([%l_]+)", function(w) return ENV_NAME[w] end)
  end
  error(client, 0)
end

----------------------------------------------------------------------------
-- Output helpers

local function write(ctx, ...)
  ctx.out:write(...)
end

local function is_int_string(s)
  return type(s) == "string" and s:match("^%-?%d+$") ~= nil
end

-- A number as JSON/decimal text, integers exact (Lua 5.3 integers, and
-- integral doubles on 5.1/LuaJIT, are printed digit for digit).
local function number_text(n)
  if math.type and math.type(n) == "integer" then return string.format("%d", n) end
  if n ~= n or n == math.huge or n == -math.huge then return "null" end
  if n == math.floor(n) and math.abs(n) < 2 ^ 63 then return string.format("%.0f", n) end
  return string.format("%.17g", n)
end

-- marker_id as text: exact whatever its Lua type (on 5.1/LuaJIT a value
-- above 2^53 comes as its decimal string).
local function marker_text(v)
  if type(v) == "number" then return number_text(v) end
  if is_int_string(v) then return v end
  return nil
end

local ARRAY_KEYS = { connections = true, error = true, results = true, requests = true, plan = true }

-- A JSON encoder for what this command prints: strings go through cjson;
-- numbers are exact; marker_id is written as a JSON integer even when the
-- module had to hand it over as a string. Object keys are sorted.
local function encode(v, key)
  local t = type(v)
  if t == "string" then
    if key == "marker_id" and is_int_string(v) then return v end
    return json.encode(v)
  elseif t == "number" then
    return number_text(v)
  elseif t == "boolean" then
    return v and "true" or "false"
  elseif t == "nil" then
    return "null"
  elseif t == "table" then
    local n = #v
    local keys, count = {}, 0
    for k in pairs(v) do
      count = count + 1
      if type(k) == "string" then keys[#keys + 1] = k end
    end
    if (n > 0 and count == n) or (count == 0 and ARRAY_KEYS[key]) then
      local parts = {}
      for i = 1, n do parts[i] = encode(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = json.encode(k) .. ":" .. encode(v[k], k) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

-- An error object as a plain table for JSON.
local function error_table(vpcep, err)
  if not (vpcep and vpcep.is_error(err)) then return { code = "vpcep.internal", message = tostring(err) } end
  return {
    code = err.code, message = err.message, status = err.status, request_id = err.request_id,
    retryable = err.retryable, endpoint = err.endpoint,
  }
end

local function now_fn()
  local ok, socket = pcall(require, "socket")
  if ok and type(socket) == "table" and socket.gettime then return socket.gettime end
  return os.time
end
local now = now_fn()

local function pad(s, w)
  s = tostring(s)
  if #s >= w then return s end
  return s .. string.rep(" ", w - #s)
end

local function duration(s)
  if s < 60 then return string.format("%.1f s", s) end
  if s < 3600 then return string.format("%dm%02ds", math.floor(s / 60), math.floor(s % 60)) end
  return string.format("%dh%02dm", math.floor(s / 3600), math.floor(s % 3600 / 60))
end

-- The live line on stderr (only on a terminal).
local Progress = {}
Progress.__index = Progress

local function new_progress(ctx, enabled, label, total)
  return setmetatable({ ctx = ctx, on = enabled, label = label, total = total, done = 0, failed = 0,
    t0 = now(), shown = false }, Progress)
end

function Progress:draw()
  if not self.on then return end
  local el = now() - self.t0
  local rate, left = "-", "-"
  if self.done > 0 and el > 0 then
    local r = self.done / el
    rate = string.format("%.1f/s", r)
    left = duration((self.total - self.done) / r)
  end
  local ctx = self.ctx
  ctx.out:flush()
  ctx.err:write(string.format("\r\27[K%s: %d/%d done, %d failed, %s, %s left",
    self.label, self.done, self.total, self.failed, rate, left))
  ctx.err:flush()
  self.shown = true
end

function Progress:clear()
  if self.on and self.shown then
    self.ctx.err:write("\r\27[K")
    self.ctx.err:flush()
    self.shown = false
  end
end

----------------------------------------------------------------------------
-- Results of accept/reject

local SETTLED_OK = { accepted = true, rejected = true }

-- The first entry of a connection's error list, when it has one.
local function conn_error(conn)
  if conn and type(conn.error) == "table" and type(conn.error[1]) == "table" then return conn.error[1] end
end

-- One item per endpoint: { id =, conn = connection or nil, err = error or nil }
local function item_code(it)
  local e = it.err
  local ce = conn_error(it.conn or (e and e.connection))
  if ce and ce.error_code then return tostring(ce.error_code) end
  return e and e.code or nil
end

local function item_status(it)
  local conn = it.conn or (it.err and it.err.connection)
  if conn and conn.status then return tostring(conn.status) end
  return "error"
end

local function item_line(it, idw)
  local line = pad(it.id, idw) .. "  " .. item_status(it)
  if it.err then
    local e = it.err
    local detail = e.message or tostring(e)
    local extra = {}
    local ce = conn_error(e.connection)
    if e.code == "vpcep.connection_failed" and ce then
      detail = ce.error_message or detail   -- the code is already in front
    elseif e.status then
      extra[#extra + 1] = "HTTP " .. tostring(e.status)
    end
    if e.request_id then extra[#extra + 1] = "request_id=" .. tostring(e.request_id) end
    line = pad(line, idw + 2 + 18) .. "  " .. (item_code(it) or "?") .. ": " .. tostring(detail)
    if #extra > 0 then line = line .. " (" .. table.concat(extra, ", ") .. ")" end
  end
  return line
end

local function item_json(vpcep, it)
  local t = { id = it.id, connection = it.conn }
  if it.err then
    t.error = error_table(vpcep, it.err)
    t.connection = it.conn or it.err.connection
  end
  return t
end

-- Runs one call of the module over ids and returns the items, in order.
local function run_chunk(ctx, client, action, sid, ids, wait)
  local vpcep = ctx.vpcep
  local method = action == "receive" and client.accept or client.reject
  local opts = { max_endpoints = #ids }
  if wait then opts.wait = wait end
  local ok, res = pcall(method, client, sid, ids, opts)
  local items = {}
  if ok then
    for i, id in ipairs(ids) do items[i] = { id = id, conn = res[i] } end
    return items
  end
  if not vpcep.is_error(res) then error(res, 0) end
  local timed_out = res.code == "vpcep.timeout"
  for i, id in ipairs(ids) do
    local r = res.results and res.results[i]
    if r == nil then
      items[i] = { id = id, err = res }                      -- the whole call failed
    elseif vpcep.is_error(r) then
      items[i] = { id = id, err = r }
    elseif timed_out and not SETTLED_OK[tostring(r.status)] and r.status ~= "failed" then
      items[i] = { id = id, conn = r, err = res }            -- still pending after --wait
    else
      items[i] = { id = id, conn = r }
    end
  end
  return items
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local MASKS = {
  ["x-auth-token"] = "<TOKEN>",
  ["authorization"] = "<AUTHORIZATION>",
  ["x-security-token"] = "<SECURITY_TOKEN>",
}

-- A request table of client:prepare as a curl command line, secrets masked;
-- and the lowercased names of the masked headers (a set).
local function curl_line(req, a)
  local parts = { "curl", "-sS" }
  if req.method ~= "POST" or not req.body then
    parts[#parts + 1] = "-X " .. shell_quote(req.method)
  end
  if a.insecure then parts[#parts + 1] = "--insecure" end
  if a.cafile then parts[#parts + 1] = "--cacert " .. shell_quote(a.cafile) end
  local names = {}
  for k in pairs(req.headers) do names[#names + 1] = k end
  table.sort(names, function(x, y) return x:lower() < y:lower() end)
  local masked = {}
  for _, k in ipairs(names) do
    local v = req.headers[k]
    local m = MASKS[k:lower()]
    if m then
      v = m
      masked[k:lower()] = true
    end
    parts[#parts + 1] = "-H " .. shell_quote(k .. ": " .. v)
  end
  if req.body then parts[#parts + 1] = "--data-binary " .. shell_quote(req.body) end
  parts[#parts + 1] = shell_quote(req.url)
  return table.concat(parts, " "), masked
end

local function masked_request(req)
  local h = {}
  for k, v in pairs(req.headers) do h[k] = MASKS[k:lower()] or v end
  return { method = req.method, url = req.url, headers = h, body = req.body }
end

local function dry_run(ctx, client, action, sid, ids, label)
  local a = ctx.args
  local lines, reqs, masked = {}, {}, {}
  for _, id in ipairs(ids) do
    local req = client:prepare(action, sid, id)
    local line, m = curl_line(req, a)
    for k in pairs(m) do masked[k] = true end
    lines[#lines + 1] = line
    local r = masked_request(req)
    r.curl = line
    reqs[#reqs + 1] = r
  end
  if a.json then
    write(ctx, encode({ dry_run = true, action = label, service_id = sid, requests = reqs }), "\n")
    return EXIT_OK
  end
  write(ctx, string.format("# vpcep %s: dry run, nothing was sent; %d request(s) follow.\n", label, #ids))
  if masked["x-auth-token"] then
    write(ctx, "# X-Auth-Token is masked: replace <TOKEN> with your IAM token before running these.\n")
  end
  if masked["authorization"] then
    write(ctx, "# Authorization (the SDK-HMAC-SHA256 signature) and any X-Security-Token are masked:\n"
      .. "# fill them in before running; a signature is accepted for 15 minutes after X-Sdk-Date.\n")
  end
  for _, l in ipairs(lines) do write(ctx, l, "\n") end
  return EXIT_OK
end

local function summary_line(label, all, failed, by_status, elapsed)
  local parts, names = {}, {}
  for s in pairs(by_status) do names[#names + 1] = s end
  table.sort(names)
  for _, s in ipairs(names) do parts[#parts + 1] = by_status[s] .. " " .. s end
  if failed > 0 or #parts == 0 then parts[#parts + 1] = failed .. " failed" end
  return string.format("%s: %d endpoint(s): %s (%s)\n", label, #all, table.concat(parts, ", "), duration(elapsed))
end

-- accept/reject (and the accepting half of approve-pending).
local function bulk(ctx, client, action, sid, ids, label, extra_json)
  local a = ctx.args
  local wait = number_flag(label, a.wait, "--wait")
  if wait == 0 then wait = nil end
  local concurrency = tonumber(a.concurrency) or 8
  local progress = new_progress(ctx, not a.no_progress and ctx.isatty(2), label, #ids)
  local chunk = progress.on and math.max(1, concurrency * 2) or #ids
  local idw = 0
  for _, id in ipairs(ids) do if #id > idw then idw = #id end end
  local t0, deadline = now(), wait and now() + wait
  local all, failed, by_status = {}, 0, {}
  progress:draw()
  local first = 1
  while first <= #ids do
    local part = {}
    for i = first, math.min(#ids, first + chunk - 1) do part[#part + 1] = ids[i] end
    first = first + #part
    local w = deadline and math.max(deadline - now(), 0.001) or nil
    local items = run_chunk(ctx, client, action, sid, part, w)
    progress:clear()
    for _, it in ipairs(items) do
      all[#all + 1] = it
      if it.err then
        failed = failed + 1
      else
        local s = item_status(it)
        by_status[s] = (by_status[s] or 0) + 1
      end
      if not a.json then write(ctx, item_line(it, idw), "\n") end
    end
    ctx.out:flush()
    progress.done, progress.failed = #all, failed
    if first <= #ids then progress:draw() end
  end
  progress:clear()
  if a.json then
    local doc = { action = label, service_id = sid, total = #all, succeeded = #all - failed,
      failed = failed, results = {} }
    for k, v in pairs(extra_json or {}) do doc[k] = v end
    for i, it in ipairs(all) do doc.results[i] = item_json(ctx.vpcep, it) end
    write(ctx, encode(doc), "\n")
  else
    write(ctx, summary_line(label, all, failed, by_status, now() - t0))
  end
  return failed > 0 and EXIT_FAILED or EXIT_OK
end

----------------------------------------------------------------------------
-- The commands: run(ctx, client, cmd) -> exit status

local function connection_line(c, idw, stw)
  local line = pad(tostring(c.id), idw) .. "  " .. pad(tostring(c.status), stw) .. "  "
    .. pad(tostring(c.domain_id or "-"), 12) .. "  " .. (marker_text(c.marker_id) or "-")
  local e = conn_error(c)
  if e then
    line = line .. "  " .. tostring(e.error_code or "?") .. ": " .. tostring(e.error_message or "")
  end
  return line
end

-- The module's own id checks, without building a request.
local function check_ids(ctx, sid, ids, cmd)
  ctx.vpcep._check_id(sid, "service_id")
  local seen = {}
  for _, id in ipairs(ids) do
    if seen[id] then usage(cmd, "endpoint %s is given twice", id) end
    seen[id] = true
    ctx.vpcep._check_id(id, "endpoint id")
  end
end

local function read_ids(ctx, args)
  local ids = {}
  for _, a in ipairs(args) do
    if a == "-" then
      for id in (ctx.stdin:read("*a") or ""):gmatch("%S+") do ids[#ids + 1] = id end
    else
      ids[#ids + 1] = a
    end
  end
  return ids
end

local function no_extra(ctx, cmd)
  local extra = ctx.args.extra
  if extra and #extra > 0 then usage(cmd, "unexpected argument '%s'", extra[1]) end
end

local RUN = {}

RUN.accept = function(ctx, client, cmd)
  local a = ctx.args
  local ids = read_ids(ctx, a.ids)
  if #ids == 0 then usage(cmd, "give at least one ENDPOINT_ID") end
  local action = cmd == "accept" and "receive" or "reject"
  check_ids(ctx, a.service, ids, cmd)
  if a.dry_run then return dry_run(ctx, client, action, a.service, ids, cmd) end
  return bulk(ctx, client, action, a.service, ids, cmd)
end
RUN.reject = RUN.accept

RUN.list = function(ctx, client, cmd)
  local a = ctx.args
  no_extra(ctx, cmd)
  local query = a.status and { status = a.status } or nil
  local list, total = client:connections(a.service, query)
  if a.json then
    write(ctx, encode({ connections = list, total_count = total }), "\n")
    return EXIT_OK
  end
  local idw, stw = 2, 6
  for _, c in ipairs(list) do
    if #tostring(c.id) > idw then idw = #tostring(c.id) end
    if #tostring(c.status) > stw then stw = #tostring(c.status) end
  end
  if #list > 0 then
    write(ctx, pad("ID", idw), "  ", pad("STATUS", stw), "  ", pad("DOMAIN", 12), "  MARKER_ID\n")
  end
  for _, c in ipairs(list) do write(ctx, connection_line(c, idw, stw), "\n") end
  write(ctx, string.format("%d connection(s)%s\n", #list, a.status and (" in status " .. a.status) or ""))
  return EXIT_OK
end

-- approve-pending is reconcile's decision with an accept policy (the given
-- domains, or every one), made as a dry run: the ids to accept, and how many
-- pending ones were left out.
local ACCEPT_ALL = function() return "accept", "approve-pending accepts every pending connection" end

local function pending_ids(client, sid, domains)
  local policy = #domains > 0 and { accept_domains = domains } or ACCEPT_ALL
  local report = client:reconcile(sid, policy, { dry_run = true })
  local ids, skipped = {}, 0
  for _, e in ipairs(report.plan) do
    if e.action == "accept" then ids[#ids + 1] = e.id else skipped = skipped + 1 end
  end
  return ids, skipped
end

RUN["approve-pending"] = function(ctx, client, cmd)
  local a = ctx.args
  no_extra(ctx, cmd)
  number_flag(cmd, a.wait, "--wait")
  local ids, skipped = pending_ids(client, a.service, a.domain or {})
  if #ids == 0 then
    if a.json then
      write(ctx, encode({ action = cmd, service_id = a.service, total = 0, succeeded = 0,
        failed = 0, skipped = skipped, results = {} }), "\n")
    elseif not a.dry_run then
      write(ctx, string.format("%s: no pending connection to accept%s\n", cmd,
        skipped > 0 and string.format(" (%d pending from other domains)", skipped) or ""))
    else
      write(ctx, string.format("# vpcep %s: dry run, no pending connection to accept.\n", cmd))
    end
    return EXIT_OK
  end
  if a.dry_run then return dry_run(ctx, client, "receive", a.service, ids, cmd) end
  return bulk(ctx, client, "receive", a.service, ids, cmd, { skipped = skipped })
end

----------------------------------------------------------------------------
-- reconcile: a policy, rounds, the plan's lines, and the log

local function say_err(ctx, line)
  ctx.out:flush()
  ctx.err:write(PROG, ": ", line, "\n")
end

-- The policy of the flags, or of --policy FILE (a Lua file returning a
-- function or a table; reconcile checks the table).
local function cli_policy(cmd, a)
  local accept, reject = a.accept_domain or {}, a.reject_domain or {}
  if a.policy then
    if #accept > 0 or #reject > 0 or a.reject_others then
      usage(cmd, "--policy goes alone: not with --accept-domain, --reject-domain or --reject-others")
    end
    local chunk, why = loadfile(a.policy)
    if not chunk then usage(cmd, "cannot load the policy file: %s", (tostring(why):gsub("\n.*", ""))) end
    local ok, p = pcall(chunk)
    if not ok then usage(cmd, "the policy file %s raised an error: %s", a.policy, tostring(p)) end
    if type(p) ~= "function" and type(p) ~= "table" then
      usage(cmd, "the policy file %s must return a function or a table, got %s", a.policy, type(p))
    end
    return p
  end
  if #accept == 0 and #reject == 0 and not a.reject_others then
    usage(cmd, "give a policy: --accept-domain, --reject-domain, --reject-others or --policy FILE")
  end
  return { accept_domains = accept, reject_domains = reject, otherwise = a.reject_others and "reject" or "leave" }
end

local function cli_reconcile_opts(cmd, a)
  local wait = number_flag(cmd, a.wait, "--wait")
  local statuses = a.status and #a.status > 0 and a.status or nil
  return { dry_run = a.dry_run or nil, describe = a.describe or nil, wait = wait ~= 0 and wait or nil,
    statuses = statuses }
end

local function utc_now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

-- The log file (--log): one JSON object per line, appended and flushed one
-- at a time, so an interrupted run loses nothing it did. Texts in it come
-- from error objects, which never hold a secret.
local function open_log(cmd, path)
  if not path then return nil end
  local f, why = io.open(path, "a")
  if not f then usage(cmd, "cannot open the log file: %s", why) end
  return f
end

local function log_line(ctx, t)
  if not ctx.log then return end
  t.time, t.service = utc_now(), ctx.args.service
  ctx.log:write(encode(t), "\n")
  ctx.log:flush()
end

local function error_fields(t, e)
  if e then
    t.error_code, t.error, t.request_id, t.http_status = e.code, e.message, e.request_id, e.status
  end
  return t
end

-- Its lines for one plan entry: the decision, and each request made for it.
local function log_entry(ctx, e, is_dry)
  local base = { id = e.id, domain = e.domain_id, reason = e.reason }
  local function line(t)
    for k, v in pairs(base) do if t[k] == nil then t[k] = v end end
    log_line(ctx, t)
  end
  local settled = e.action == "leave" or e.action == "error" or e.outcome == "planned"
  line(error_fields({ event = "decision", action = e.action, status = e.status, dry_run = is_dry or nil,
    outcome = settled and e.outcome or nil }, e.action == "error" and e.error or nil))
  -- a request that worked: the request id its answer gave; one that failed: its error's
  if e.described ~= nil then
    line(error_fields({ event = "action", action = "describe", outcome = e.described and "described" or "failed",
      description = e.description, request_id = e.described_request_id }, not e.described and e.error or nil))
  end
  if (e.action == "accept" or e.action == "reject") and e.described ~= false and e.outcome ~= "planned" then
    local conn = e.connection
    line(error_fields({ event = "action", action = e.action, outcome = e.outcome,
      status = conn and conn.status or nil, request_id = conn and conn.request_id or nil },
      e.outcome == "failed" and e.error or nil))
  end
end

local function entry_detail(e)
  local x = e.error
  if not x then return tostring(e.reason) end
  local extra = {}
  if x.status then extra[#extra + 1] = "HTTP " .. tostring(x.status) end
  if x.request_id then extra[#extra + 1] = "request_id=" .. tostring(x.request_id) end
  local detail = (e.action == "error" and "" or tostring(e.reason) .. "; ") .. tostring(x.code) .. ": "
    .. tostring(x.message)
  return detail .. (#extra > 0 and " (" .. table.concat(extra, ", ") .. ")" or "")
end

-- A plan line stays one line: a control character in a reason (the
-- policy's own text) or an error message becomes a space. The JSON and the
-- log keep the text as it was.
local function one_line(s)
  return (s:gsub("%c", " "))
end

local function print_plan(ctx, report)
  local idw, dw = 2, 6
  for _, e in ipairs(report.plan) do
    idw = math.max(idw, #tostring(e.id))
    dw = math.max(dw, #tostring(e.domain_id or "-"))
  end
  for _, e in ipairs(report.plan) do
    local line = pad(e.id, idw) .. "  " .. pad(e.domain_id or "-", dw) .. "  " .. pad(e.action, 6) .. "  "
    if not report.dry_run or e.outcome == "failed" then line = line .. pad(e.outcome, 8) .. "  " end
    write(ctx, one_line(line .. entry_detail(e)), "\n")
  end
end

local function summary(report, elapsed)
  local n = #report.plan
  if report.dry_run then
    return string.format("reconcile (dry run, nothing was sent): %d connection(s): would accept %d, reject %d, "
      .. "leave %d; %d failed\n", n, report.accepted, report.rejected, report.left, report.failed)
  end
  return string.format("reconcile: %d connection(s): %d accepted, %d rejected, %d left, %d failed (%s)\n", n,
    report.accepted, report.rejected, report.left, report.failed, duration(elapsed))
end

local function report_json(ctx, report, round)
  local plan = {}
  for i, e in ipairs(report.plan) do
    plan[i] = { id = e.id, domain_id = e.domain_id, status = e.status, action = e.action, reason = e.reason,
      outcome = e.outcome, described = e.described, description = e.description, connection = e.connection,
      error = e.error and error_table(ctx.vpcep, e.error) or nil }
  end
  return { service_id = report.service_id, dry_run = report.dry_run, round = round, plan = plan,
    accepted = report.accepted, rejected = report.rejected, left = report.left, failed = report.failed }
end

-- Prints a round's report (as text or JSON) and logs it.
local function show_report(ctx, report, round, elapsed)
  local a = ctx.args
  for _, e in ipairs(report.plan) do log_entry(ctx, e, report.dry_run) end
  if a.json then
    write(ctx, encode(report_json(ctx, report, round)), "\n")
  else
    if round then write(ctx, string.format("# round %d, %s\n", round, utc_now())) end
    if report.dry_run then write(ctx, "# vpcep reconcile: dry run, the plan follows; nothing was sent.\n") end
    print_plan(ctx, report)
    write(ctx, summary(report, elapsed))
  end
  ctx.out:flush()
end

-- A round that failed as a whole (nothing was acted on): said on stderr,
-- in --json on stdout too, and in the log.
local function show_round_failure(ctx, err, round)
  local vpcep = ctx.vpcep
  local e = vpcep.is_error(err) and err or { code = "usage", message = tostring(err.msg or err) }
  log_line(ctx, error_fields({ event = "round", round = round, outcome = "failed" }, e))
  if ctx.args.json then write(ctx, encode({ round = round, error = error_table(vpcep, err) }), "\n") end
  local text = vpcep.is_error(err) and tostring(err):gsub("^vpcep: ", "") or tostring(err.msg or err)
  say_err(ctx, string.format("reconcile: round %d failed: %s", round, text))
end

-- One round: ok (nothing failed), or raises what failed it as a whole.
local function one_round(ctx, client, policy, opts, round)
  local t0 = now()
  local ok, res = pcall(client.reconcile, client, ctx.args.service, policy, opts)
  if not ok and not (ctx.vpcep.is_error(res) and res.report) then error(res, 0) end
  show_report(ctx, ok and res or res.report, round, now() - t0)
  return ok
end

local function watch_settings(cmd, a)
  local every = number_flag(cmd, a.watch, "--watch", 0)
  if every == 0 then usage(cmd, "--watch needs a number above 0, got '%s'", a.watch) end
  local rounds = number_flag(cmd, a.rounds, "--rounds", 0)
  if rounds and (rounds ~= math.floor(rounds) or rounds < 1) then
    usage(cmd, "--rounds needs a whole number above 0")
  end
  if rounds and not every then usage(cmd, "--rounds goes with --watch") end
  if every and every > 86400 then usage(cmd, "--watch needs at most 86400 seconds") end
  return every, rounds
end

-- --watch: a round, a pause, the next round, until interrupted or
-- --rounds. Each round after the first makes a new client (credentials
-- read again). A round that fails is reported and the next still runs; bad
-- usage stops the first round.
local function watch(ctx, client, cmd, policy, opts, every, rounds)
  local failed, round = false, 0
  while true do
    round = round + 1
    local ok, res = pcall(function()
      if round > 1 then
        client:close()
        client = new_client(ctx, cmd, ctx.args)
      end
      return one_round(ctx, client, policy, opts, round)
    end)
    if not ok then
      local usage_err = getmetatable(res) == UsageError
        or (ctx.vpcep.is_error(res) and res.code == "vpcep.invalid_argument" and res.status == nil)
      if not usage_err and not ctx.vpcep.is_error(res) then error(res, 0) end   -- an interrupt, a bug
      if round == 1 and usage_err then error(res, 0) end
      show_round_failure(ctx, res, round)
    end
    failed = failed or not (ok and res)
    if rounds and round >= rounds then break end
    ctx.vpcep._sleep(every)
  end
  client:close()
  return failed and EXIT_FAILED or EXIT_OK
end

RUN.reconcile = function(ctx, client, cmd)
  local a = ctx.args
  no_extra(ctx, cmd)
  local policy = cli_policy(cmd, a)
  local opts = cli_reconcile_opts(cmd, a)
  local every, rounds = watch_settings(cmd, a)
  ctx.log = open_log(cmd, a.log)
  local ok, rc = pcall(function()
    if every then return watch(ctx, client, cmd, policy, opts, every, rounds) end
    local done, res = pcall(one_round, ctx, client, policy, opts, nil)
    if done then return res and EXIT_OK or EXIT_FAILED end
    if ctx.vpcep.is_error(res) and not (res.code == "vpcep.invalid_argument" and res.status == nil) then
      log_line(ctx, error_fields({ event = "round", outcome = "failed" }, res))
    end
    error(res, 0)
  end)
  if ctx.log then ctx.log:close() end
  ctx.log = nil
  if not ok then error(rc, 0) end
  return rc
end

----------------------------------------------------------------------------
-- main

local function is_command(name)
  return SPECS[name] ~= nil
end

-- Parses argv into ctx.args; returns the command, or nil and an exit
-- status when there is nothing to run (help, version).
local function parse(ctx, argv)
  local parser, parsers = new_parser()
  local args, word = normalize(argv)
  if word == nil and #argv == 0 then
    ctx.err:write(parser:get_help(), "\n")
    return nil, EXIT_USAGE
  end
  local cmd = is_command(word) and word or nil
  local ok, a = parser:pparse(args)
  if not ok then usage(cmd, "%s", usage_text(a, cmd)) end
  ctx.args = a
  if a.version then
    write(ctx, ctx.vpcep._VERSION, "\n")
    return nil, EXIT_OK
  end
  if a.help_command then
    if a.topic and not is_command(a.topic) then usage(nil, "unknown command '%s'", a.topic) end
    cmd, a.help = a.topic, true
  end
  if a.help then
    write(ctx, (cmd and parsers[cmd] or parser):get_help(), "\n")
    return nil, EXIT_OK
  end
  if cmd == nil then
    ctx.err:write(parser:get_help(), "\n")
    return nil, EXIT_USAGE
  end
  if not a.service then usage(cmd, "--service SID is required") end
  return cmd
end

-- The results of a pcall; the module's invalid_argument (found before
-- anything was sent) is bad usage.
local function invalid_is_usage(ctx, cmd, ok, res)
  if ok then return res end
  if ctx.vpcep.is_error(res) and res.code == "vpcep.invalid_argument" and res.status == nil then
    usage(cmd, "%s", res.message)
  end
  error(res, 0)
end

local function run(ctx, argv)
  local vpcep, why = load_vpcep()
  if not vpcep then
    ctx.out:flush()
    ctx.err:write(PROG, ": ", why, "\n")
    return EXIT_FAILED
  end
  ctx.vpcep = vpcep
  ctx.isatty = ctx.isatty or vpcep._isatty
  local cmd, status = parse(ctx, argv)
  if not cmd then return status end
  local client = invalid_is_usage(ctx, cmd, pcall(new_client, ctx, cmd, ctx.args))
  local ok, rc = pcall(RUN[cmd], ctx, client, cmd)
  client:close()
  return invalid_is_usage(ctx, cmd, ok, rc)
end

-- What a failure of run() prints, and the exit status.
local function report(ctx, err)
  if getmetatable(err) == UsageError then
    local where = err.cmd and (PROG .. " " .. err.cmd) or PROG
    ctx.out:flush()
    ctx.err:write(where, ": ", err.msg, " (see '", where, " --help')\n")
    return EXIT_USAGE
  end
  local vpcep = ctx.vpcep
  if vpcep and vpcep.is_error(err) then
    if ctx.args and ctx.args.json then write(ctx, encode({ error = error_table(vpcep, err) }), "\n") end
    say_err(ctx, (tostring(err):gsub("^vpcep: ", "")))
    return EXIT_FAILED
  end
  if type(err) == "string" and err:find("interrupted", 1, true) then
    say_err(ctx, "interrupted")
    return EXIT_INTERRUPTED
  end
  say_err(ctx, "internal error: " .. tostring(err))
  return EXIT_FAILED
end

local function context(io_)
  io_ = io_ or {}
  return {
    out = io_.stdout or io.stdout,
    err = io_.stderr or io.stderr,
    stdin = io_.stdin or io.stdin,
    getenv = io_.getenv or os.getenv,
    isatty = io_.isatty,   -- else vpcep._isatty, once the module is loaded
  }
end

-- Runs the command with the arguments argv (a list of strings); returns
-- its exit status: 0 all done, 1 something failed, 2 bad usage.
function M.main(argv, io_)
  local ctx = context(io_)
  local list = {}
  for i = 1, #(argv or {}) do list[i] = tostring(argv[i]) end
  local ok, rc = pcall(run, ctx, list)
  if ok then return rc end
  return report(ctx, rc)
end

return M
