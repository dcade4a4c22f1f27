-- spec/cli_spec.lua: the `vpcep` command (lua/vpcep/cli.lua behind the
-- launcher bin/vpcep), against the mock, the way a person or a script would
-- run it. Every case runs twice: as a child process (the launcher, the same
-- Lua as this busted run with the same package.cpath, so it loads the very
-- build under test) and in-process through vpcep.cli.main(argv, io).
-- Then what only one of them can show: the launcher finding a checkout's
-- files and naming a missing build, the environment seen only through
-- io.getenv, and vpcep._isatty / vpcep._check_id.
local helper = require "spec.helper"
local json = helper.json
local q = helper.shell_quote
local D = helper.defaults
local SID = D.service_id
local BIG = "422321321312321321"   -- the document's marker_id, more than a double holds

local LUA = helper.interpreter()
-- a relative interpreter path (make check's sanitizer runner) must still
-- work from a command line that first changes directory
if LUA:find("/", 1, true) and LUA:sub(1, 1) ~= "/" then LUA = (os.getenv("PWD") or ".") .. "/" .. LUA end
local ROOT = helper.spec_dir .. "/.."
local BIN = ROOT .. "/bin/vpcep"

-- the checkout's vpcep.cli, whatever --lpath busted was given
package.path = ROOT .. "/lua/?.lua;" .. package.path
local cli = require "vpcep.cli"

local read_file, write_file, tmp = helper.read_file, helper.write_file, helper.tmpname

local TOKEN_FILE = tmp()
write_file(TOKEN_FILE, D.token .. "\n")

-- Every setting the command reads from the environment, cleared so that the
-- caller's shell cannot leak in; then the ones a test gives.
local ENV_NAMES = { "VPCEP_REGION", "VPCEP_ENDPOINT", "VPCEP_TOKEN_FILE", "HUAWEICLOUD_SDK_AK",
  "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "HUAWEICLOUD_SDK_PROJECT_ID", "VPCEP_PROFILE",
  "VPCEP_IAM_USER", "VPCEP_IAM_DOMAIN", "VPCEP_IAM_PASSWORD", "VPCEP_METADATA", "VPCEP_METADATA_ENDPOINT",
  "HUAWEICLOUD_SDK_IAM_ENDPOINT", "HUAWEICLOUD_SDK_IDP_ID", "HUAWEICLOUD_SDK_ID_TOKEN_FILE",
  "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
  "LUA_CPATH_5_2", "LUA_CPATH_5_3", "LUA_CPATH_5_4", "LUA_PATH_5_2", "LUA_PATH_5_3", "LUA_PATH_5_4" }

local mock

local function base_env()
  return {
    VPCEP_ENDPOINT = mock.url,
    HUAWEICLOUD_SDK_PROJECT_ID = D.project_id,
    VPCEP_TOKEN_FILE = TOKEN_FILE,
  }
end

-- The base environment with env's changes (false removes a setting).
local function environment(env)
  local e = base_env()
  for k, v in pairs(env or {}) do e[k] = v or nil end
  return e
end

-- `env -u ... NAME=value ...`: the environment e and nothing of the caller's
-- settings; LUA_PATH and LUA_CPATH are the given ones (LUA_CPATH: this run's).
local function env_prefix(e, lua_path, lua_cpath)
  local parts = { "env" }
  for _, n in ipairs(ENV_NAMES) do parts[#parts + 1] = "-u " .. n end
  parts[#parts + 1] = "LUA_CPATH=" .. q(lua_cpath or package.cpath)
  parts[#parts + 1] = "LUA_PATH=" .. q(lua_path)
  local names = {}
  for k in pairs(e) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. q(e[k]) end
  return table.concat(parts, " ")
end

-- The shell command line that runs bin/vpcep (or `bin`) with args (a list)
-- and env (changes to the base environment).
-- The checkout's lua/ comes first, as the checkout's build does on
-- package.cpath: what runs is what is tested, whatever else is installed.
local function command(args, env, bin, lua_path, lua_cpath)
  lua_path = lua_path or (ROOT .. "/lua/?.lua;;")
  local parts = { env_prefix(environment(env), lua_path, lua_cpath), q(LUA) .. " " .. q(bin or BIN) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  return table.concat(parts, " ")
end

-- Runs a shell command line with stdin (text, or nothing); returns its exit
-- code, stdout, stderr.
local function run_shell(cmd, stdin)
  local out, err, rc = tmp(), tmp(), tmp()
  local input = "/dev/null"
  if stdin then
    input = tmp()
    write_file(input, stdin)
  end
  os.execute("( " .. cmd .. " ) <" .. q(input) .. " >" .. q(out) .. " 2>" .. q(err) .. "; echo $? >" .. q(rc))
  local code = tonumber(read_file(rc))
  local o, e = read_file(out), read_file(err)
  os.remove(out) os.remove(err) os.remove(rc)
  if stdin then os.remove(input) end
  return code, o, e
end

-- A file-like object that keeps what is written to it.
local function sink()
  local parts = {}
  local s = {}
  function s.write(self, ...)
    for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
    return self
  end
  function s.flush(self) return self end
  function s.text() return table.concat(parts) end
  return s
end

-- The io of vpcep.cli.main for env and stdin; with tty, stderr is a terminal.
local function fake_io(env, stdin, tty)
  local e = environment(env)
  local out, err = sink(), sink()
  local asked = {}
  return {
    stdout = out, stderr = err,
    stdin = { read = function(_, fmt)
      assert(fmt == "*a" or fmt == "a", "stdin is read whole")
      return stdin or ""
    end },
    getenv = function(name) return e[name] end,
    isatty = function(fd)
      asked[#asked + 1] = fd
      return tty and fd == 2 or false
    end,
  }, asked
end

-- `script` needs a pseudo-terminal device; a chroot without /dev/pts has
-- none, and then the child's terminal cases are pending (CI's machine has one).
local _, pty_probe = helper.run("script -qec true /dev/null")
local HAVE_PTY = not pty_probe:find("pseudo-terminal", 1, true)

-- The two ways to run the command. run(args, env, stdin) -> exit code,
-- stdout, stderr; terminal(args) -> exit code and everything written, with
-- stderr a terminal.
local RUNNERS = {
  {
    name = "as a child process",
    run = function(args, env, stdin) return run_shell(command(args, env), stdin) end,
    has_terminal = HAVE_PTY,
    terminal = function(args)
      local out = tmp()
      local a, _, c = os.execute("script -qec " .. q(command(args)) .. " /dev/null >" .. q(out) .. " 2>&1")
      local code = type(a) == "number" and a / 256 or c
      local text = read_file(out)
      os.remove(out)
      return code, text
    end,
  },
  {
    name = "in-process (vpcep.cli.main)",
    run = function(args, env, stdin)
      local io_ = fake_io(env, stdin)
      local rc = cli.main(args, io_)
      return rc, io_.stdout.text(), io_.stderr.text()
    end,
    has_terminal = true,
    terminal = function(args)
      local io_, asked = fake_io(nil, nil, true)
      local rc = cli.main(args, io_)
      for _, fd in ipairs(asked) do assert.are.equal(2, fd) end   -- the question is about stderr
      return rc, io_.stderr.text() .. io_.stdout.text()
    end,
  },
}

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

-- Every marker_id in a JSON text, as the digits written there.
local function marker_ids(text)
  local t = {}
  for d in text:gmatch('"marker_id":(%-?%d+)') do t[#t + 1] = d end
  return t
end

local function seed_basic()
  mock:service('{"project_id":"' .. D.project_id .. '","service_id":"' .. SID .. '","endpoints":['
    .. '{"id":"e1","marker_id":' .. BIG .. ',"domain_id":"dA"},'
    .. '{"id":"e2","domain_id":"dB","fail_with":{"error_code":"EndPoint.2000","error_message":"no quota"}},'
    .. '{"id":"e3","domain_id":"dA","status":"accepted"},'
    .. '{"id":"e4","domain_id":"dB"}]}')
end

local function api_requests()
  return #mock:log()
end

-- Runs the curl lines a dry run printed, with the token filled in: whether
-- they all worked, and what they printed.
local function run_dry_run(out)
  local script = tmp()
  write_file(script, (out:gsub("<TOKEN>", D.token)))
  local ok, got = helper.run("sh " .. q(script))
  os.remove(script)
  return ok, got
end

-- The cases both runners pass; vpcep runs the command.
local function shared_cases(runner)
  local vpcep = runner.run

  describe("help", function()
    it("--help names the five commands and exits 0", function()
      local rc, out, err = vpcep({ "--help" })
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      for _, c in ipairs({ "accept", "reject", "list", "approve-pending", "reconcile" }) do
        assert.matches("vpcep " .. c:gsub("%-", "%%-") .. " %-%-service SID", out)
      end
      assert.matches("--token-file", out, 1, true)
    end)

    it("each command has its own --help, also as `vpcep help CMD`", function()
      local want = {
        accept = "Usage: vpcep accept --service SID",
        reject = "Usage: vpcep reject --service SID",
        list = "Usage: vpcep list --service SID",
        ["approve-pending"] = "Usage: vpcep approve-pending --service SID",
        reconcile = "Usage: vpcep reconcile --service SID",
      }
      for c, usage in pairs(want) do
        local rc, out, err = vpcep({ c, "--help" })
        assert.are.equal(0, rc, c)
        assert.are.equal("", err, c)
        assert.are.equal(usage, out:sub(1, #usage), c)
        local rc2, out2 = vpcep({ "help", c })
        assert.are.equal(0, rc2)
        assert.are.equal(out, out2)
      end
      local _, acc = vpcep({ "accept", "-h" })
      assert.matches("--dry-run", acc, 1, true)
      local _, lst = vpcep({ "list", "--help" })
      assert.matches("--status", lst, 1, true)
      assert.is_nil(lst:find("--dry-run", 1, true))
      local _, ap = vpcep({ "approve-pending", "--help" })
      assert.matches("--domain", ap, 1, true)
    end)

    it("--version prints the module's version", function()
      local rc, out = vpcep({ "--version" })
      assert.are.equal(0, rc)
      assert.matches("^vpcep %d+%.%d+%.%d+\n$", out)
    end)
  end)

  describe("bad usage exits 2 with one line and sends nothing", function()
    local cases = {
      { {}, "Usage: vpcep COMMAND" },
      { { "frob" }, "unknown command 'frob'" },
      { { "accept", "e1" }, "--service SID is required" },
      { { "accept", "--service", SID }, "at least one ENDPOINT_ID" },
      { { "accept", "--service", SID, "--token", "secret-on-argv", "e1" }, "no --token flag" },
      { { "accept", "--service", SID, "--frobnicate", "e1" }, "unknown option --frobnicate" },
      { { "accept", "--service", SID, "--status", "accepted", "e1" }, "--status does not apply to accept" },
      { { "list", "--service", SID, "--dry-run" }, "--dry-run does not apply to list" },
      { { "list", "--service", SID, "extra" }, "unexpected argument 'extra'" },
      { { "accept", "--service", SID, "e1", "e1" }, "endpoint e1 is given twice" },
      { { "accept", "--service", SID, "e1", "bad id" }, "endpoint id" },
      { { "accept", "--service", SID, "--timeout", "soon", "e1" }, "--timeout needs a number" },
      { { "accept", "--service", SID, "--concurrency", "999", "e1" }, "concurrency" },
      { { "accept", "--service", SID, "--service", "x", "e1" }, "--service is given twice" },
      { { "accept", "--service" }, "--service needs a value" },
      { { "list", "--service", SID, "--status", "sleeping" }, "status" },
      -- argparse's own findings, in the command's words
      { { "accept", "--service", SID, "--token=secret-on-argv", "e1" }, "no --token flag" },
      { { "accept", "--service", SID, "--json=yes", "e1" }, "--json takes no value" },
      { { "accept", "--service", SID, "--servce", "x", "e1" }, "unknown option --servce; did you mean --service?" },
      { { "accept", "--service", SID, "--domain", "dA", "e1" }, "--domain does not apply to accept" },
      { { "approve-pending", "--service", SID, "--status", "x" }, "--status does not apply to approve-pending" },
      { { "help", "frob" }, "unknown command 'frob'" },
      -- an option's value may start with '-': it is the value, and a bad one
      { { "accept", "--service", SID, "--wait", "-1", "e1" }, "--wait needs a number, got '-1'" },
      { { "accept", "--service", SID, "--retries", "-1", "e1" }, "--retries needs a number, got '-1'" },
    }
    for _, case in ipairs(cases) do
      it(table.concat(case[1], " "), function()
        local rc, out, err = vpcep(case[1])
        assert.are.equal(2, rc)
        assert.matches(case[2], err, 1, true)
        if #case[1] > 0 then
          assert.are.equal("", out)
          assert.are.equal(1, #lines(err), err)
          assert.matches("^vpcep[^\n]*: ", err)
        end
        assert.is_nil(err:find("secret-on-argv", 1, true))
        assert.are.equal(0, api_requests())
      end)
    end

    it("no credentials, or an unreadable token file", function()
      local rc, _, err = vpcep({ "list", "--service", SID }, { VPCEP_TOKEN_FILE = false })
      assert.are.equal(2, rc)
      assert.matches("credentials", err, 1, true)
      rc, _, err = vpcep({ "list", "--service", SID, "--token-file", "/nonexistent/token" })
      assert.are.equal(2, rc)
      assert.matches("token file", err, 1, true)
      rc, _, err = vpcep({ "list", "--service", SID }, { VPCEP_ENDPOINT = false })
      assert.are.equal(2, rc)
      assert.matches("region", err, 1, true)
      assert.are.equal(0, api_requests())
    end)
  end)

  describe("list", function()
    it("prints one line per connection with the exact marker_id, and a summary", function()
      local rc, out, err = vpcep({ "list", "--service", SID })
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      local l = lines(out)
      assert.are.equal(6, #l)   -- header, 4 connections, summary
      assert.matches("^e1%s+pendingAcceptance%s+dA%s+" .. BIG .. "$", l[2])
      assert.matches("^e3%s+accepted%s+dA%s+%d+$", l[4])
      assert.are.equal("4 connection(s)", l[6])
    end)

    it("--json gives the connections and total_count; marker_id is exact", function()
      local rc, out = vpcep({ "list", "--service", SID, "--json" })
      assert.are.equal(0, rc)
      local doc = json.decode(out)
      assert.are.equal(4, doc.total_count)
      assert.are.equal(4, #doc.connections)
      local ids = {}
      for i, c in ipairs(doc.connections) do ids[i] = c.id end
      assert.are.same({ "e1", "e2", "e3", "e4" }, ids)
      assert.are.equal("dB", doc.connections[2].domain_id)
      local m = marker_ids(out)
      assert.are.equal(BIG, m[1])
      assert.are.equal(4, #m)
      for i = 2, 4 do assert.matches("^1%d+$", m[i]) end
    end)

    it("--status filters on the service side", function()
      local rc, out = vpcep({ "list", "--service", SID, "--status", "accepted", "--json" })
      assert.are.equal(0, rc)
      local doc = json.decode(out)
      assert.are.equal(1, #doc.connections)
      assert.are.equal("e3", doc.connections[1].id)
      assert.matches("status=accepted", mock:log()[1].path, 1, true)
    end)

    it("settings given as flags win over the environment", function()
      local rc = vpcep({ "list", "--service", SID, "--endpoint", mock.url, "--project-id", D.project_id },
        { VPCEP_ENDPOINT = "http://127.0.0.1:1", HUAWEICLOUD_SDK_PROJECT_ID = "p-other" })
      assert.are.equal(0, rc)
    end)

    it("a failing call is one line with the code and request id, exit 1; the token never shows", function()
      write_file(TOKEN_FILE .. ".bad", "wrong-token-value\n")
      local rc, out, err = vpcep({ "list", "--service", SID, "--token-file", TOKEN_FILE .. ".bad" })
      os.remove(TOKEN_FILE .. ".bad")
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.are.equal(1, #lines(err))
      assert.matches("^vpcep: 401 APIGW%.0301: .*%(request_id=%x+%)\n$", err)
      assert.is_nil(err:find("wrong-token-value", 1, true))
    end)

    it("with --json a failing call also gives the error object on stdout", function()
      local rc, out, err = vpcep({ "list", "--service", SID, "--json", "--retries", "0" },
        { VPCEP_ENDPOINT = "http://127.0.0.1:1" })
      assert.are.equal(1, rc)
      assert.matches("vpcep.connect", err, 1, true)
      local doc = json.decode(out)
      assert.are.equal("vpcep.connect", doc.error.code)
      assert.is_true(doc.error.retryable)
    end)
  end)

  describe("accept and reject", function()
    it("accept prints a line per endpoint and a summary, exit 0", function()
      local rc, out, err = vpcep({ "accept", "--service", SID, "e1", "e4" })
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      local l = lines(out)
      assert.are.equal(3, #l)
      assert.matches("^e1%s+accepted$", l[1])
      assert.matches("^e4%s+accepted$", l[2])
      assert.matches("^accept: 2 endpoint%(s%): 2 accepted %(", l[3])
      local s = mock:by_id()
      assert.are.equal("accepted", s.e1.status)
      assert.are.equal("accepted", s.e4.status)
    end)

    it("reject, with AK/SK from the environment, ids also from stdin", function()
      local rc, out = vpcep({ "reject", "--service", SID, "e1", "-" },
        { VPCEP_TOKEN_FILE = false, HUAWEICLOUD_SDK_AK = D.ak, HUAWEICLOUD_SDK_SK = D.sk }, "e3\n e4\n")
      assert.are.equal(0, rc)
      assert.matches("3 rejected", out, 1, true)
      local s = mock:by_id()
      for _, id in ipairs({ "e1", "e3", "e4" }) do assert.are.equal("rejected", s[id].status) end
      assert.matches("^SDK%-HMAC%-SHA256", (function()
        for _, h in ipairs(mock:log()[1].headers) do
          if h[1]:lower() == "authorization" then return h[2] end
        end
        return ""
      end)())
    end)

    it("--json gives each connection, marker_id exact", function()
      local rc, out = vpcep({ "accept", "--service", SID, "--json", "e1", "e4" })
      assert.are.equal(0, rc)
      local doc = json.decode(out)
      assert.are.equal(2, doc.total)
      assert.are.equal(2, doc.succeeded)
      assert.are.equal(0, doc.failed)
      assert.are.equal("e1", doc.results[1].id)
      assert.are.equal("accepted", doc.results[1].connection.status)
      assert.are.equal("e4", doc.results[2].connection.id)
      assert.is_nil(doc.results[1].error)
      assert.are.equal(BIG, marker_ids(out)[1])
    end)

    it("a bulk call where some endpoints fail: their lines carry code and request id, exit 1", function()
      mock:fault { match = { endpoint = "e4" }, times = 0,
        answer = { status = 403, json = { error_code = "EndPoint.0009", error_msg = "not allowed" },
                   headers = { ["X-Request-Id"] = "feedfacefeedfacefeedfacefeedface" } } }
      local rc, out, err = vpcep({ "accept", "--service", SID, "e1", "e2", "e4", "nope" })
      assert.are.equal(1, rc)
      assert.are.equal("", err)
      local l = lines(out)
      assert.are.equal(5, #l)
      assert.matches("^e1%s+accepted$", l[1])
      assert.matches("^e2%s+failed%s+EndPoint%.2000: no quota %(request_id=%x+%)$", l[2])
      assert.matches("^e4%s+error%s+EndPoint%.0009: not allowed %(HTTP 403, "
        .. "request_id=feedfacefeedfacefeedfacefeedface%)$", l[3])
      assert.matches("^nope%s+error%s+EndPoint%.0005: .*HTTP 404", l[4])
      assert.matches("4 endpoint%(s%): 1 accepted, 3 failed", l[5])
      -- the others were still done
      assert.are.equal("accepted", mock:by_id().e1.status)
      assert.are.equal("failed", mock:by_id().e2.status)
    end)

    it("the same failures as JSON error objects", function()
      local rc, out = vpcep({ "accept", "--service", SID, "--json", "e2", "e1", "nope" })
      assert.are.equal(1, rc)
      local doc = json.decode(out)
      assert.are.equal(3, doc.total)
      assert.are.equal(2, doc.failed)
      local r = doc.results
      assert.are.equal("vpcep.connection_failed", r[1].error.code)
      assert.are.equal("failed", r[1].connection.status)
      assert.are.equal("EndPoint.2000", r[1].connection.error[1].error_code)
      assert.matches("^%x+$", r[1].error.request_id)
      assert.is_nil(r[2].error)
      assert.are.equal(BIG, r[2].connection and marker_ids(out)[2])
      assert.are.equal("EndPoint.0005", r[3].error.code)
      assert.are.equal(404, r[3].error.status)
      assert.are.equal("nope", r[3].error.endpoint)
    end)
  end)

  describe("approve-pending", function()
    it("accepts every pending connection; the others stay as they are", function()
      local rc, out = vpcep({ "approve-pending", "--service", SID, "--json" })
      assert.are.equal(1, rc)   -- e2 fails by its seed
      local doc = json.decode(out)
      assert.are.equal(3, doc.total)
      local s = mock:by_id()
      assert.are.equal("accepted", s.e1.status)
      assert.are.equal("failed", s.e2.status)
      assert.are.equal("accepted", s.e4.status)
      assert.are.equal("2024-01-01T00:00:02Z", s.e3.updated_at)   -- not touched
    end)

    it("--domain limits it to those domains", function()
      local rc, out = vpcep({ "approve-pending", "--service", SID, "--domain", "dA" })
      assert.are.equal(0, rc)
      assert.matches("^e1%s+accepted\n", out)
      local s = mock:by_id()
      assert.are.equal("accepted", s.e1.status)
      assert.are.equal("pendingAcceptance", s.e2.status)
      assert.are.equal("pendingAcceptance", s.e4.status)
      rc, out = vpcep({ "approve-pending", "--service", SID, "--domain", "dX", "--domain", "dY" })
      assert.are.equal(0, rc)
      assert.matches("no pending connection to accept (2 pending from other domains)", out, 1, true)
    end)

    it("--wait waits until the connections have left creating", function()
      mock:config { transition_ms = 300 }
      local rc, out = vpcep({ "approve-pending", "--service", SID, "--domain", "dA", "--wait", "60" })
      assert.are.equal(0, rc)
      assert.matches("^e1%s+accepted\n", out)
      local polled = 0
      for _, r in ipairs(mock:log()) do
        if r.method == "GET" and r.path:find("id=e1", 1, true) then polled = polled + 1 end
      end
      assert.is_true(polled >= 1)
    end)
  end)

  describe("reconcile", function()
    -- pending: p1, p2 of dA; p3 of dB; p4 of dC; and e9 accepted of dB
    local function seed_domains()
      mock:reset()
      mock:service { endpoints = { { id = "p1", domain_id = "dA" }, { id = "p2", domain_id = "dA" },
        { id = "p3", domain_id = "dB" }, { id = "p4", domain_id = "dC" },
        { id = "e9", domain_id = "dB", status = "accepted" } } }
    end
    local POLICY = { "--accept-domain", "dA", "--reject-domain", "dB" }
    local function args(...)
      local t = { "reconcile", "--service", SID }
      for _, list in ipairs({ ... }) do
        for _, x in ipairs(list) do t[#t + 1] = x end
      end
      return t
    end
    local function writes()
      local t = {}
      for _, e in ipairs(mock:log()) do
        if e.method ~= "GET" then t[#t + 1] = e.method .. " " .. (e.method == "POST"
          and json.decode(e.body).action .. " " .. json.decode(e.body).endpoints[1]
          or json.decode(e.body).connections[1].id) end
      end
      table.sort(t)
      return t
    end
    local function json_lines(text)
      local t = {}
      for _, l in ipairs(lines(text)) do t[#t + 1] = json.decode(l) end
      return t
    end
    before_each(seed_domains)

    it("accepts --accept-domain, rejects --reject-domain, leaves the rest: a line each, exit 0", function()
      local rc, out, err = vpcep(args(POLICY))
      assert.are.equal(0, rc, err)
      assert.are.equal("", err)
      local l = lines(out)
      assert.are.equal(5, #l)
      assert.matches("^p1%s+dA%s+accept%s+accepted%s+domain dA is in accept_domains$", l[1])
      assert.matches("^p3%s+dB%s+reject%s+rejected%s+domain dB is in reject_domains$", l[3])
      assert.matches("^p4%s+dC%s+leave%s+left%s+domain dC is in no list$", l[4])
      assert.matches("^reconcile: 4 connection%(s%): 2 accepted, 1 rejected, 1 left, 0 failed", l[5])
      assert.are.same({ "POST receive p1", "POST receive p2", "POST reject p3" }, writes())
      assert.are.equal("pendingAcceptance", mock:by_id().p4.status)
    end)

    it("--reject-others rejects every other domain; alone it rejects everything pending", function()
      local rc = vpcep(args({ "--accept-domain", "dA", "--reject-others" }))
      assert.are.equal(0, rc)
      assert.are.same({ "POST receive p1", "POST receive p2", "POST reject p3", "POST reject p4" }, writes())
      seed_domains()
      rc = vpcep(args({ "--reject-others" }))
      assert.are.equal(0, rc)
      assert.are.same({ "POST reject p1", "POST reject p2", "POST reject p3", "POST reject p4" }, writes())
    end)

    it("--policy FILE.lua: a function with its reasons, or a table", function()
      local file = tmp()
      write_file(file, [[
        local wanted = { p2 = true, p4 = true }
        return function(conn)
          if wanted[conn.id] then return "accept", "listed by id " .. conn.id end
          if conn.domain_id == "dB" then return "reject", "dB is gone" end
        end]])
      local rc, out = vpcep(args({ "--policy", file, "--json" }))
      assert.are.equal(0, rc)
      local doc = json.decode(out)
      assert.are.same({ 2, 1, 1, 0 }, { doc.accepted, doc.rejected, doc.left, doc.failed })
      assert.are.equal("listed by id p2", doc.plan[2].reason)
      assert.are.same({ "POST receive p2", "POST receive p4", "POST reject p3" }, writes())
      seed_domains()
      write_file(file, 'return { reject_domains = { "dC" }, otherwise = "leave" }')
      rc = vpcep(args({ "--policy", file }))
      assert.are.equal(0, rc)
      assert.are.same({ "POST reject p4" }, writes())
      os.remove(file)
    end)

    it("a policy that raises fails that connection alone, exit 1", function()
      local file = tmp()
      write_file(file, 'return function(c) if c.id == "p2" then error("no idea about p2") end return "accept" end')
      local rc, out = vpcep(args({ "--policy", file }))
      os.remove(file)
      assert.are.equal(1, rc)
      assert.matches("\np2%s+dA%s+error%s+failed%s+vpcep.policy: the policy raised an error: [^\n]*no idea about p2",
        out)
      assert.matches("1 failed", out, 1, true)
      assert.are.same({ "POST receive p1", "POST receive p3", "POST receive p4" }, writes())
    end)

    it("--dry-run prints the plan (id, domain, action, reason) and sends nothing but the list read", function()
      local rc, out, err = vpcep(args(POLICY, { "--dry-run", "--describe" }))
      assert.are.equal(0, rc, err)
      local l = lines(out)
      assert.matches("^# vpcep reconcile: dry run", l[1])
      assert.matches("^p1%s+dA%s+accept%s+domain dA is in accept_domains$", l[2])
      assert.matches("^p4%s+dC%s+leave%s+domain dC is in no list$", l[5])
      assert.matches("would accept 2, reject 1, leave 1; 0 failed", l[6], 1, true)
      local log = mock:log()
      assert.are.equal(1, #log)
      assert.are.equal("GET", log[1].method)
      rc, out = vpcep(args(POLICY, { "--dry-run", "--json" }))
      assert.are.equal(0, rc)
      local doc = json.decode(out)
      assert.is_true(doc.dry_run)
      assert.are.equal("planned", doc.plan[1].outcome)
      assert.are.equal(2, doc.accepted)
      assert.are.same({}, writes())
    end)

    it("--describe writes each reason with the time before acting", function()
      local rc = vpcep(args(POLICY, { "--describe" }))
      assert.are.equal(0, rc)
      local s = mock:by_id()
      assert.matches("^vpcep reconcile %d+%-%d+%-%d+T[%d:]+Z: accept: domain dA is in accept_domains$",
        s.p1.description)
      assert.matches(": reject: domain dB is in reject_domains$", s.p3.description)
      assert.are.equal("", s.p4.description)
      assert.are.same({ "POST receive p1", "POST receive p2", "POST reject p3", "PUT p1", "PUT p2", "PUT p3" },
        writes())
    end)

    it("--json gives the report; a connection that failed is exit 1 with its error", function()
      mock:fault { match = { method = "POST", endpoint = "p2" }, answer = { status = 404,
        json = { error_code = "EndPoint.0005", error_msg = "The requested resource does not exist." } } }
      local rc, out = vpcep(args(POLICY, { "--json", "--retries", "0" }))
      assert.are.equal(1, rc)
      local doc = json.decode(out)
      assert.are.same({ 1, 1, 1, 1 }, { doc.accepted, doc.rejected, doc.left, doc.failed })
      assert.are.equal("EndPoint.0005", doc.plan[2].error.code)
      assert.matches("^%x+$", doc.plan[2].error.request_id)
      assert.are.equal("accepted", doc.plan[1].connection.status)
      assert.matches('"marker_id":%d+', out)
    end)

    it("--status looks at other statuses; --wait waits for each connection to settle", function()
      local rc, out = vpcep(args({ "--reject-domain", "dB", "--status", "accepted", "--json" }))
      assert.are.equal(0, rc)
      local doc = json.decode(out)
      assert.are.equal(1, #doc.plan)
      assert.are.equal("e9", doc.plan[1].id)
      assert.are.equal("rejected", mock:by_id().e9.status)
      mock:config { transition_ms = 200 }
      rc, out = vpcep(args({ "--accept-domain", "dA", "--wait", "30", "--json" }))
      assert.are.equal(0, rc)
      assert.are.equal("accepted", json.decode(out).plan[1].connection.status)
    end)

    it("--log appends one JSON line per decision and per action, without a secret", function()
      local file = tmp()
      mock:fault { match = { method = "POST", endpoint = "p2" }, answer = { status = 500,
        json = { error_code = "EndPoint.0500", error_msg = "broken" } } }
      local rc = vpcep(args(POLICY, { "--describe", "--log", file, "--retries", "0" }))
      assert.are.equal(1, rc)
      local entries = json_lines(read_file(file))
      -- 4 decisions; 3 descriptions and 3 actions for the three acted on
      assert.are.equal(10, #entries)
      local seen = {}
      for _, e in ipairs(entries) do
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", e.time)
        assert.are.equal(SID, e.service)
        assert.is_string(e.id)
        assert.is_string(e.domain)
        assert.is_string(e.reason)
        seen[e.event .. " " .. e.action .. " " .. e.id] = e
      end
      assert.are.equal("left", seen["decision leave p4"].outcome)
      assert.are.equal("described", seen["action describe p1"].outcome)
      assert.are.equal("accepted", seen["action accept p1"].outcome)
      assert.are.equal("rejected", seen["action reject p3"].outcome)
      local failed = seen["action accept p2"]
      assert.are.equal("failed", failed.outcome)
      assert.are.equal("EndPoint.0500", failed.error_code)
      assert.matches("^%x+$", failed.request_id)
      assert.are.equal(500, failed.http_status)
      -- each request that worked: the request id of the mock's answer to it
      local answered = {}
      for _, r in ipairs(mock:log()) do
        if r.method ~= "GET" then
          local doc = json.decode(r.body)
          local what = r.method == "PUT" and "describe" or (doc.action == "receive" and "accept" or doc.action)
          local id = r.method == "PUT" and doc.connections[1].id or doc.endpoints[1]
          answered[what .. " " .. id] = r.request_id
        end
      end
      for _, k in ipairs({ "describe p1", "describe p2", "describe p3", "accept p1", "reject p3", "accept p2" }) do
        assert.is_string(answered[k], k)
        assert.are.equal(answered[k], seen["action " .. k].request_id, k)
      end
      helper.no_secret { D.token } (read_file(file))
      -- appended, never replaced
      seed_domains()
      vpcep(args(POLICY, { "--dry-run", "--log", file }))
      entries = json_lines(read_file(file))
      assert.are.equal(14, #entries)
      assert.is_true(entries[14].dry_run)
      assert.are.equal("decision", entries[14].event)
      os.remove(file)
    end)

    it("--watch runs three rounds across an outage; the failed round is said and logged, exit 1", function()
      local file = tmp()
      mock:faults {
        -- round 1: p2's accept fails, so it is still pending afterwards
        { match = { method = "POST", endpoint = "p2" }, answer = { status = 500,
          json = { error_code = "EndPoint.0500", error_msg = "broken" } } },
        -- round 1's list goes through; round 2's meets the outage; round 3's goes through
        { match = { method = "GET" }, delay_ms = 1 },
        { match = { method = "GET" }, answer = { status = 503, json = { error_code = "APIGW.0201",
          error_msg = "service unavailable" } } },
      }
      local rc, out, err = vpcep(args(POLICY, { "--watch", "0.2", "--rounds", "3", "--json", "--log", file,
        "--retries", "0" }))
      assert.are.equal(1, rc)
      local docs = json_lines(out)
      assert.are.equal(3, #docs)
      assert.are.equal(1, docs[1].round)
      assert.are.same({ 1, 1, 1, 1 }, { docs[1].accepted, docs[1].rejected, docs[1].left, docs[1].failed })
      assert.are.equal(2, docs[2].round)
      assert.are.equal(503, docs[2].error.status)
      assert.are.equal(3, docs[3].round)
      -- round 3 finished what round 1 left: p2 accepted, and p4 still left
      assert.are.same({ 1, 0, 1, 0 }, { docs[3].accepted, docs[3].rejected, docs[3].left, docs[3].failed })
      assert.are.equal("p2", docs[3].plan[1].id)
      assert.matches("reconcile: round 2 failed: 503 APIGW.0201", err, 1, true)
      assert.are.equal("accepted", mock:by_id().p2.status)
      local gets, rounds = 0, {}
      for _, e in ipairs(mock:log()) do if e.method == "GET" then gets = gets + 1 end end
      assert.are.equal(3, gets)
      for _, e in ipairs(json_lines(read_file(file))) do
        if e.event == "round" then rounds[#rounds + 1] = e end
      end
      assert.are.equal(1, #rounds)
      assert.are.equal(2, rounds[1].round)
      assert.are.equal("failed", rounds[1].outcome)
      assert.are.equal("APIGW.0201", rounds[1].error_code)
      os.remove(file)
    end)

    it("--watch prints each round under a heading; exit 0 when every round worked", function()
      local rc, out = vpcep(args(POLICY, { "--watch", "0.2", "--rounds", "2" }))
      assert.are.equal(0, rc)
      assert.matches("^# round 1, %d+%-[^\n]*Z\n", out)
      assert.matches("\n# round 2, ", out)
      assert.matches("reconcile: 1 connection%(s%): 0 accepted, 0 rejected, 1 left, 0 failed", out)
    end)

    local bad = {
      { {}, "give a policy" },
      { { "--policy", "/nonexistent/policy.lua" }, "cannot load the policy file" },
      { { "--policy", "/nonexistent/policy.lua", "--accept-domain", "dA" }, "--policy goes alone" },
      { { "--accept-domain", "dA", "--reject-domain", "dA" }, "in both accept_domains and reject_domains" },
      { { "--accept-domain", "dA", "--watch", "0" }, "--watch needs a number above 0" },
      { { "--accept-domain", "dA", "--watch", "soon" }, "--watch needs a number" },
      { { "--accept-domain", "dA", "--rounds", "2" }, "--rounds goes with --watch" },
      { { "--accept-domain", "dA", "--watch", "1", "--rounds", "1.5" }, "--rounds needs a whole number" },
      { { "--accept-domain", "dA", "--status", "sleeping" }, "opts.statuses[1]" },
      { { "--accept-domain", "dA", "--log", "/nonexistent/dir/log" }, "cannot open the log file" },
      { { "--accept-domain", "dA", "--domain", "dB" }, "--domain does not apply to reconcile" },
      { { "--accept-domain", "dA", "--wait", "-1" }, "--wait needs a number" },
      { { "--accept-domain", "dA", "extra" }, "unexpected argument 'extra'" },
    }
    for _, case in ipairs(bad) do
      it("bad usage: " .. table.concat(case[1], " "), function()
        local rc, out, err = vpcep(args(case[1]))
        assert.are.equal(2, rc, err)
        assert.are.equal("", out)
        assert.matches(case[2], err, 1, true)
        assert.are.equal(1, #lines(err))
        assert.are.equal(0, api_requests())
      end)
    end

    it("bad usage: a policy file that does not parse, raises, or returns no policy", function()
      local file = tmp()
      for _, case in ipairs({ { "return function(", "cannot load the policy file" },
        { "error('broken file')", "raised an error: " }, { "return 42", "must return a function or a table" },
        { "return { accept_domain = {} }", "policy.accept_domain is not a policy key" } }) do
        write_file(file, case[1])
        local rc, out, err = vpcep(args({ "--policy", file }))
        assert.are.equal(2, rc, err)
        assert.are.equal("", out)
        assert.matches(case[2], err, 1, true)
      end
      os.remove(file)
      assert.are.equal(0, api_requests())
    end)
  end)

  describe("--dry-run", function()
    it("prints curl lines with the token masked, sends nothing, and the lines work", function()
      local rc, out, err = vpcep({ "accept", "--service", SID, "--dry-run", "e1", "e4" })
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      assert.are.equal(0, api_requests())
      assert.is_nil(out:find(D.token, 1, true))
      local curls = {}
      for _, l in ipairs(lines(out)) do
        if l:sub(1, 5) == "curl " then curls[#curls + 1] = l
        else assert.matches("^#", l) end
      end
      assert.are.equal(2, #curls)
      assert.matches("<TOKEN>", out, 1, true)
      assert.matches("replace <TOKEN>", out, 1, true)
      -- the child ran the same Lua as this busted (the User-Agent names it)
      assert.matches("(" .. _VERSION .. ";", out, 1, true)
      -- fill the token back in and run them with the real curl
      local ok, got = run_dry_run(out)
      assert.is_true(ok, got)
      assert.matches('"status": ?"accepted"', got)
      local s = mock:by_id()
      assert.are.equal("accepted", s.e1.status)
      assert.are.equal("accepted", s.e4.status)
      assert.are.equal(2, api_requests())
    end)

    it("with AK/SK the signature and security token are masked, the SK never shows", function()
      local rc, out = vpcep({ "reject", "--service", SID, "--dry-run", "e1" },
        { VPCEP_TOKEN_FILE = false, HUAWEICLOUD_SDK_AK = D.ak, HUAWEICLOUD_SDK_SK = D.sk,
          HUAWEICLOUD_SDK_SECURITY_TOKEN = "sec-token-value" })
      assert.are.equal(0, rc)
      assert.are.equal(0, api_requests())
      assert.is_nil(out:find(D.sk, 1, true))
      assert.is_nil(out:find("sec-token-value", 1, true))
      assert.is_nil(out:find("Signature=", 1, true))
      assert.matches("-H 'Authorization: <AUTHORIZATION>'", out, 1, true)
      assert.matches("-H 'X-Security-Token: <SECURITY_TOKEN>'", out, 1, true)
      assert.matches("%-H 'X%-Sdk%-Date: %d+T%d+Z'", out)
      assert.matches('"action":"reject"', out, 1, true)
    end)

    it("--json gives the masked requests", function()
      local rc, out = vpcep({ "accept", "--service", SID, "--dry-run", "--json", "e1" })
      assert.are.equal(0, rc)
      local doc = json.decode(out)
      assert.are.equal(1, #doc.requests)
      assert.are.equal("POST", doc.requests[1].method)
      assert.are.equal("<TOKEN>", doc.requests[1].headers["X-Auth-Token"])
      assert.are.same({ action = "receive", endpoints = { "e1" } }, json.decode(doc.requests[1].body))
      assert.is_nil(out:find(D.token, 1, true))
    end)

    it("approve-pending only lists, then prints the accepts", function()
      local rc, out = vpcep({ "approve-pending", "--service", SID, "--dry-run", "--domain", "dB" })
      assert.are.equal(0, rc)
      local n = 0
      for _ in out:gmatch("\ncurl ") do n = n + 1 end
      assert.are.equal(2, n)   -- e2 and e4
      local log = mock:log()
      assert.are.equal(1, #log)
      assert.are.equal("GET", log[1].method)
      assert.are.equal("pendingAcceptance", mock:by_id().e4.status)
    end)
  end)

  describe("transport settings", function()
    it("--timeout and --retries reach the client", function()
      mock:fault { match = { method = "GET" }, times = 0, hang_ms = 3000 }
      local rc, _, err = vpcep({ "list", "--service", SID, "--timeout", "0.3", "--retries", "0" })
      assert.are.equal(1, rc)
      assert.matches("^vpcep: vpcep%.timeout: ", err)
      assert.are.equal(1, api_requests())
    end)

    it("--cafile and --insecure over TLS; the dry run carries them", function()
      local tls = helper.start { tls = true }
      local ok, e = pcall(function()
        tls:service { endpoints = { { id = "t1" } } }
        local env = { VPCEP_ENDPOINT = tls.url }
        local rc, _, err = vpcep({ "list", "--service", SID }, env)
        assert.are.equal(1, rc)
        assert.matches("vpcep.tls", err, 1, true)
        rc = vpcep({ "list", "--service", SID, "--cafile", tls.cafile }, env)
        assert.are.equal(0, rc)
        local out
        rc, out = vpcep({ "accept", "--service", SID, "--insecure", "t1" }, env)
        assert.are.equal(0, rc)
        assert.matches("^t1%s+accepted\n", out)
        rc, out = vpcep({ "reject", "--service", SID, "--cafile", tls.cafile, "--dry-run", "t1" }, env)
        assert.are.equal(0, rc)
        assert.matches("--cacert " .. q(tls.cafile), out, 1, true)
        assert.is_true(run_dry_run(out))
        assert.are.equal("rejected", tls:by_id().t1.status)
      end)
      tls:stop()
      assert(ok, e)
    end)
  end)


  describe("the command line", function()
    it("options go before the command too (the command is the first word that is no option)", function()
      local rc, out = vpcep({ "--json", "--service", SID, "list" })
      assert.are.equal(0, rc)
      assert.are.equal(4, json.decode(out).total_count)
      rc, out = vpcep({ "--service", SID, "accept", "e1" })
      assert.are.equal(0, rc)
      assert.matches("^e1%s+accepted\n", out)
      local err
      rc, out, err = vpcep({ "--service", SID, "e1", "accept" })
      assert.are.equal(2, rc)
      assert.are.equal("", out)
      assert.matches("^vpcep: unknown command 'e1'", err)
    end)

    it("after --, an argument that looks like an option is an endpoint id", function()
      mock:service { endpoints = { { id = "-e5" } } }
      local rc, out = vpcep({ "accept", "--service", SID, "--", "-e5" })
      assert.are.equal(0, rc)
      assert.matches("^%-e5%s+accepted\n", out)
    end)

    it("--help lists the settings and the commands; help goes to stdout, exit 0", function()
      local rc, out, err = vpcep({ "help" })
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      assert.matches("^Usage: vpcep COMMAND", out)
      for _, flag in ipairs({ "--region", "--endpoint", "--project-id", "--timeout", "--retries",
          "--concurrency", "--cafile", "--insecure", "--json", "--no-progress", "--version" }) do
        assert.matches("\n  " .. flag:gsub("%-", "%%-") .. "[ \n]", out)
      end
      assert.matches("Exit status: 0 all done, 1 some endpoint (or the call) failed, 2 bad usage.", out, 1, true)
      -- a command's help has its own options and the settings, not the others'
      local _, acc = vpcep({ "accept", "--help" })
      assert.matches("\n  --wait SECONDS ", acc, 1, true)
      assert.matches("\n  --token-file FILE ", acc, 1, true)
      assert.matches("\n  ENDPOINT_ID ", acc, 1, true)
      assert.is_nil(acc:find("--domain", 1, true))
      assert.is_nil(acc:find("--version", 1, true))
    end)
  end)

  -- (the child process only: the region's host and IAM come from the
  -- environment the module itself reads, which an in-process run cannot set)
  if runner.name == "as a child process" then
    it("a token with a region needs no --project-id: the module looks it up with the token", function()
      seed_basic()
      mock:iam { projects = { ["cn-north-4"] = { D.project_id } } }
      local rc, out, err = vpcep({ "list", "--service", SID, "--json" },
        { VPCEP_ENDPOINT = false, HUAWEICLOUD_SDK_PROJECT_ID = false, VPCEP_REGION = "cn-north-4",
          HUAWEICLOUD_SDK_REGION_VPCEP_CN_NORTH_4 = mock.url, HUAWEICLOUD_SDK_IAM_ENDPOINT = mock.url })
      assert.are.equal(0, rc, err)
      assert.matches('"e1"', out, 1, true)
      local looked = {}
      for _, r in ipairs(mock:log()) do
        if r.path:find("^/v3/projects") then looked[#looked + 1] = r end
      end
      assert.are.equal(1, #looked)
      assert.are.equal("/v3/projects?name=cn-north-4", looked[1].path)
      assert.are.equal(D.token, helper.header(looked[1], "X-Auth-Token"))
    end)
  end

  describe("settings from the environment", function()
    local cases = {
      { { HUAWEICLOUD_SDK_AK = D.ak }, "HUAWEICLOUD_SDK_SK is not set" },
      { { HUAWEICLOUD_SDK_SK = D.sk }, "HUAWEICLOUD_SDK_AK is not set" },
      { { HUAWEICLOUD_SDK_AK = "AK,1", HUAWEICLOUD_SDK_SK = D.sk }, "HUAWEICLOUD_SDK_AK must not contain a comma" },
      { { HUAWEICLOUD_SDK_AK = D.ak, HUAWEICLOUD_SDK_SK = D.sk .. " x" }, "HUAWEICLOUD_SDK_SK holds a control" },
      { { HUAWEICLOUD_SDK_AK = D.ak, HUAWEICLOUD_SDK_SK = D.sk, HUAWEICLOUD_SDK_SECURITY_TOKEN = "st\tx" },
        "HUAWEICLOUD_SDK_SECURITY_TOKEN holds a control" },
      { { HUAWEICLOUD_SDK_PROJECT_ID = false }, "project_id is missing (give --project-id ID" },
      { { HUAWEICLOUD_SDK_PROJECT_ID = "p/../x" }, "HUAWEICLOUD_SDK_PROJECT_ID may hold only" },
      { { VPCEP_ENDPOINT = "ftp://x" }, "endpoint must start with" },
      { { VPCEP_ENDPOINT = false, VPCEP_REGION = "xx-nowhere-1" }, "unknown region 'xx-nowhere-1'" },
    }
    for _, case in ipairs(cases) do
      local env = helper.merge({ VPCEP_TOKEN_FILE = false }, case[1])
      if case[1].HUAWEICLOUD_SDK_PROJECT_ID ~= nil or case[1].VPCEP_ENDPOINT ~= nil then
        env.VPCEP_TOKEN_FILE = nil   -- a token: the setting under test is the only bad one
      end
      it(case[2], function()
        local rc, out, err = vpcep({ "list", "--service", SID }, env)
        assert.are.equal(2, rc, err)
        assert.are.equal("", out)
        assert.matches("^vpcep list: [^\n]*" .. case[2]:gsub("%p", "%%%0"), err)
        assert.are.equal(1, #lines(err))
        helper.no_secret { D.sk, D.token } (err)
        assert.are.equal(0, api_requests())
      end)
    end
  end)

  describe("credential sources: one at a time, each complete", function()
    local PW = "iam-password-on-env-only"
    local cases = {
      { { "--profile", "basic" }, {}, "give one credential source, not both --token-file and --profile" },
      { { "--iam-user", "u1", "--iam-domain", "d1" }, { VPCEP_IAM_PASSWORD = PW },
        "give one credential source, not both --token-file and --iam-user" },
      { { "--metadata" }, {}, "give one credential source, not both --token-file and --metadata" },
      { {}, { VPCEP_METADATA = "1" }, "give one credential source, not both --token-file and --metadata" },
      { { "--profile", "p" }, { VPCEP_TOKEN_FILE = false, VPCEP_IAM_USER = "u1" },
        "give one credential source, not both --profile and --iam-user" },
      { { "--iam-user", "u1" }, { VPCEP_TOKEN_FILE = false, VPCEP_IAM_PASSWORD = PW },
        "--iam-user needs --iam-domain DOMAIN (or VPCEP_IAM_DOMAIN)" },
      { { "--iam-user", "u1", "--iam-domain", "d1" }, { VPCEP_TOKEN_FILE = false },
        "--iam-user needs its password in VPCEP_IAM_PASSWORD" },
      { {}, { VPCEP_TOKEN_FILE = false, VPCEP_IAM_USER = "u1", VPCEP_IAM_DOMAIN = "d1" },
        "--iam-user needs its password in VPCEP_IAM_PASSWORD" },
      { { "--iam-domain", "d1" }, { VPCEP_TOKEN_FILE = false }, "--iam-domain goes with --iam-user" },
      { { "--metadata-endpoint", "http://127.0.0.1:1" }, {}, "--metadata-endpoint goes with --metadata" },
      { {}, { VPCEP_TOKEN_FILE = false, HUAWEICLOUD_SDK_IDP_ID = "idp-1" },
        "HUAWEICLOUD_SDK_IDP_ID and HUAWEICLOUD_SDK_ID_TOKEN_FILE go together" },
      { {}, { VPCEP_TOKEN_FILE = false, HUAWEICLOUD_SDK_ID_TOKEN_FILE = "/nonexistent/id-token" },
        "HUAWEICLOUD_SDK_IDP_ID and HUAWEICLOUD_SDK_ID_TOKEN_FILE go together" },
      { {}, { VPCEP_TOKEN_FILE = false, HUAWEICLOUD_SDK_CREDENTIALS_FILE = "/nonexistent/credentials" },
        "no credentials: use --token-file FILE (or VPCEP_TOKEN_FILE), --profile NAME, --iam-user USER" },
    }
    for _, case in ipairs(cases) do
      for _, each in ipairs(RUNNERS) do
        it(each.name .. ": " .. case[3], function()
          local args = { "list", "--service", SID }
          for _, a in ipairs(case[1]) do args[#args + 1] = a end
          local rc, out, err = each.run(args, case[2])
          assert.are.equal(2, rc, err)
          assert.are.equal("", out)
          assert.matches("^vpcep list: " .. case[3]:gsub("%p", "%%%0"), err)
          assert.are.equal(1, #lines(err), err)
          helper.no_secret { PW, D.token } (err)
          assert.are.equal(0, api_requests())
        end)
      end
    end
  end)

  describe("no secret in any output", function()
    local ST = "sec-token-value-0123456789"
    local no_secret = helper.no_secret { D.token, D.sk, ST, "Signature=", "wrong-token-value" }
    local AKSK = { VPCEP_TOKEN_FILE = false, HUAWEICLOUD_SDK_AK = D.ak, HUAWEICLOUD_SDK_SK = D.sk,
      HUAWEICLOUD_SDK_SECURITY_TOKEN = ST }
    local BAD_AKSK = helper.merge(AKSK, { HUAWEICLOUD_SDK_SK = "wrong-token-value" })

    it("of every command, with a token and with AK/SK, when it works and when it fails", function()
      local bad_token = tmp()
      write_file(bad_token, "wrong-token-value\n")
      local runs = 0
      for _, env in ipairs({ {}, AKSK, BAD_AKSK, { VPCEP_TOKEN_FILE = bad_token } }) do
        for _, args in ipairs({
          { "list", "--service", SID }, { "list", "--service", SID, "--json" },
          { "accept", "--service", SID, "e1", "e2", "nope" }, { "reject", "--service", SID, "--json", "e4" },
          { "approve-pending", "--service", SID }, { "accept", "--service", SID, "--dry-run", "e1" },
          { "reject", "--service", SID, "--dry-run", "--json", "e1" },
          { "approve-pending", "--service", SID, "--dry-run", "--json" },
          { "accept", "--service", SID, "--bogus", "e1" }, { "list", "--service", "bad id" },
          { "reconcile", "--service", SID, "--accept-domain", "dA", "--reject-others", "--describe" },
          { "reconcile", "--service", SID, "--accept-domain", "dA", "--dry-run", "--json" },
        }) do
          mock:reset()
          seed_basic()
          local rc, out, err = vpcep(args, env)
          assert.is_number(rc)
          no_secret(out)
          no_secret(err)
          runs = runs + 1
        end
      end
      os.remove(bad_token)
      assert.are.equal(48, runs)
    end)
  end)

  describe("progress", function()
    local ids = { "e1", "e3", "e4", "p1", "p2", "p3", "p4" }
    before_each(function()
      mock:service { endpoints = { { id = "e1" }, { id = "e3" }, { id = "e4" }, { id = "p1" },
        { id = "p2" }, { id = "p3" }, { id = "p4", fail_with = { error_code = "EndPoint.2000",
        error_message = "no quota" } } } }
    end)

    local term_it = runner.has_terminal and it or pending

    local function args()
      local a = { "accept", "--service", SID, "--concurrency", "1" }
      for _, id in ipairs(ids) do a[#a + 1] = id end
      return a
    end

    term_it("on a terminal, a live line on stderr shows done/total, failures, rate and time left", function()
      local code, text = runner.terminal(args())
      assert.are.equal(1, code)   -- p4 failed
      assert.matches("accept: 0/7 done, 0 failed", text, 1, true)
      assert.matches("accept: 2/7 done, 0 failed, [%d%.]+/s, [%d%.]+ s left", text)
      assert.matches("accept: 6/7 done, 0 failed", text, 1, true)
      assert.matches("\27[K", text, 1, true)
      assert.matches("p4%s+failed%s+EndPoint%.2000", text)
      assert.matches("7 endpoint(s): 6 accepted, 1 failed", text, 1, true)
    end)

    it("nothing of it when stderr is not a terminal", function()
      local rc, out, err = vpcep(args())
      assert.are.equal(1, rc)
      assert.are.equal("", err)
      assert.is_nil(out:find("done", 1, true))
      assert.is_nil(out:find("\27", 1, true))
      assert.matches("7 endpoint(s): 6 accepted, 1 failed", out, 1, true)
    end)

    term_it("--no-progress turns it off on a terminal", function()
      local a = args()
      a[#a + 1] = "--no-progress"
      local _, text = runner.terminal(a)
      assert.matches("7 endpoint(s): 6 accepted, 1 failed", text, 1, true)
      assert.is_nil(text:find("/7 done", 1, true))
    end)
  end)
end


describe("vpcep command", function()
  setup(function()
    mock = helper.start()
  end)
  teardown(function()
    if mock then mock:stop() end
    os.remove(TOKEN_FILE)
  end)
  before_each(function()
    mock:reset()
    seed_basic()
  end)

  for _, runner in ipairs(RUNNERS) do
    describe(runner.name, function()
      shared_cases(runner)
    end)
  end

  describe("in-process only", function()
    it("main returns the status and leaves argv as it was; it can run again and again", function()
      local argv = { "--json", "list", "--service", SID }
      for _ = 1, 3 do
        local io_ = fake_io()
        assert.are.equal(0, cli.main(argv, io_))
        assert.are.equal(4, json.decode(io_.stdout.text()).total_count)
      end
      assert.are.same({ "--json", "list", "--service", SID }, argv)
      local io_ = fake_io()
      assert.are.equal(2, cli.main({ "frob" }, io_))
      assert.are.equal(1, cli.main({ "list", "--service", SID, "--retries", "0" }, fake_io { VPCEP_ENDPOINT =
        "http://127.0.0.1:1" }))
    end)

    it("asks isatty about stderr (fd 2), only when a progress line could be drawn", function()
      local io_, asked = fake_io()
      assert.are.equal(0, cli.main({ "accept", "--service", SID, "e1" }, io_))
      assert.are.same({ 2 }, asked)
      io_, asked = fake_io()
      assert.are.equal(0, cli.main({ "accept", "--service", SID, "--no-progress", "e4" }, io_))
      assert.are.same({}, asked)
    end)

    -- The process's own environment holds credentials and a project; the
    -- io's getenv holds none: the command must not find them.
    it("reads the environment only through io.getenv", function()
      local script = tmp()
      write_file(script, table.concat({
        "package.path = " .. string.format("%q", ROOT .. "/lua/?.lua;" .. package.path),
        "package.cpath = " .. string.format("%q", package.cpath),
        "local cli = require 'vpcep.cli'",
        "local env = { VPCEP_ENDPOINT = " .. string.format("%q", mock.url) .. " }",
        "local err = { write = function(self, ...) io.write(...) return self end,",
        "  flush = function(self) return self end }",
        "local function run(args, e) return cli.main(args, { stderr = err, getenv = function(n) return e[n] end }) end",
        "io.write('rc=', run({ 'list', '--service', '" .. SID .. "', '--project-id', 'p-1' }, env), '\\n')",
        "io.write('rc=', run({ 'list', '--service', '" .. SID .. "', '--token-file', "
          .. string.format("%q", TOKEN_FILE) .. " }, env), '\\n')",
      }, "\n"))
      local rc, out, err = run_shell(env_prefix({ HUAWEICLOUD_SDK_AK = D.ak, HUAWEICLOUD_SDK_SK = D.sk,
        HUAWEICLOUD_SDK_PROJECT_ID = D.project_id, VPCEP_TOKEN_FILE = TOKEN_FILE }, package.path)
        .. " " .. q(LUA) .. " " .. q(script))
      os.remove(script)
      assert.are.equal(0, rc, err)
      local l = lines(out)
      assert.matches("^vpcep list: no credentials", l[1])
      assert.are.equal("rc=2", l[2])
      assert.matches("^vpcep list: project_id is missing", l[3])
      assert.are.equal("rc=2", l[4])
      assert.are.equal(0, api_requests())
    end)

    it("names the build root and the make command when the module is built for another Lua only", function()
      local dir = helper.tmpdir()
      local other = helper.this_lua == "lua5.1" and "luajit" or "lua5.1"
      assert(helper.exec_ok("mkdir -p " .. q(dir .. "/o/" .. other) .. " && : >" .. q(dir .. "/o/" .. other
        .. "/vpcep.so")))
      local saved, cpath = package.loaded.vpcep, package.cpath
      package.loaded.vpcep = nil
      package.cpath = dir .. "/o/" .. helper.this_lua .. "/?.so;" .. (helper.cmodule_template("cjson") or "")
      local ok, rc, io_ = pcall(function()
        local o = fake_io()
        return cli.main({ "--version" }, o), o
      end)
      package.loaded.vpcep, package.cpath = saved, cpath
      os.execute("rm -rf " .. q(dir))
      assert(ok, rc)
      assert.are.equal(1, rc)
      assert.are.equal("", io_.stdout.text())
      assert.are.equal("vpcep: no build for " .. helper.this_lua .. " (found " .. dir .. "/o/" .. other
        .. "); run: make LUA=" .. helper.this_lua .. " O=" .. dir .. "/o\n", io_.stderr.text())
    end)
  end)

  describe("reconcile interrupted (a child process: the interpreter's own Ctrl-C)", function()
    local socket = require "socket"
    -- Ctrl-C becomes the error "interrupted!" in the stock interpreters
    -- (lua.c, luajit.c); the sanitizer runner of `make check` has no handler.
    local function stock_interpreter()
      if os.getenv("VPCEP_UNDER_TOOL") then
        pending("needs the stock interpreter's SIGINT handler (not the sanitizer runner)")
        return false
      end
      return true
    end

    -- Starts the command in the background: its pid file, and a function
    -- that waits for its end and returns its exit code, stdout and stderr.
    local function start(args)
      local pidf, rcf, outf, errf = tmp(), tmp(), tmp(), tmp()
      local line = command(args) .. " </dev/null >" .. q(outf) .. " 2>" .. q(errf) .. " & echo $! >" .. q(pidf)
        .. "; wait $!; echo $? >" .. q(rcf)
      os.execute("sh -c " .. q(line) .. " >/dev/null 2>&1 &")
      local function pid()
        local p
        repeat p = tonumber(read_file(pidf) or "") socket.sleep(0.02) until p
        return p
      end
      local function finish()
        -- a guard against a child that ignored the interrupt, not a measure of speed
        local deadline = socket.gettime() + 30
        while not tonumber(read_file(rcf) or "") and socket.gettime() < deadline do socket.sleep(0.05) end
        local rc = tonumber(read_file(rcf) or "")
        if not rc then os.execute("kill -9 " .. pid() .. " 2>/dev/null") end
        local out, err = read_file(outf), read_file(errf)
        for _, f in ipairs({ pidf, rcf, outf, errf }) do os.remove(f) end
        return rc, out, err
      end
      return pid, finish, outf
    end

    local function until_true(f)
      local deadline = socket.gettime() + 30
      while not f() do
        assert(socket.gettime() < deadline, "the child never got there")
        socket.sleep(0.02)
      end
    end

    local ARGS = { "reconcile", "--service", SID, "--accept-domain", "dA", "--reject-domain", "dB",
      "--watch", "60", "--concurrency", "1" }

    before_each(function()
      mock:reset()
      mock:service { endpoints = { { id = "p1", domain_id = "dA" }, { id = "p2", domain_id = "dA" },
        { id = "p3", domain_id = "dA" }, { id = "p4", domain_id = "dB" }, { id = "p5", domain_id = "dB" } } }
    end)

    local function posts()
      local n = 0
      for _, e in ipairs(mock:log()) do if e.method == "POST" then n = n + 1 end end
      return n
    end

    it("during a round: what was sent ends whole, exit 130; the next run finishes the rest, once", function()
      if not stock_interpreter() then return end
      mock:fault { match = { method = "POST" }, times = 0, delay_ms = 200 }
      local pid, finish = start(ARGS)
      until_true(function() return posts() >= 1 end)
      os.execute("kill -INT " .. pid())
      local rc, _, err = finish()
      assert.are.equal(130, rc)
      assert.matches("vpcep: interrupted", err, 1, true)   -- the command said it, not the shell
      local done = {}
      for id, c in pairs(mock:by_id()) do
        local want = id <= "p3" and "accepted" or "rejected"
        assert.is_true(c.status == want or c.status == "pendingAcceptance", id .. " " .. c.status)
        if c.status == want then done[id] = true end
      end
      local before = posts()
      mock:clear_faults()
      local rc2 = run_shell(command({ "reconcile", "--service", SID, "--accept-domain", "dA",
        "--reject-domain", "dB" }))
      assert.are.equal(0, rc2)
      for id, c in pairs(mock:by_id()) do assert.are.equal(id <= "p3" and "accepted" or "rejected", c.status) end
      -- the second run sent an action only for what the first had not done
      local n = 0
      for _ in pairs(done) do n = n + 1 end
      assert.are.equal(5 - n, posts() - before)
    end)

    it("between rounds: the wait ends at once, exit 130", function()
      if not stock_interpreter() then return end
      local pid, finish, outf = start(ARGS)
      until_true(function() return (read_file(outf) or ""):find("reconcile: 5 connection", 1, true) ~= nil end)
      os.execute("kill -INT " .. pid())
      local rc, out, err = finish()
      assert.are.equal(130, rc)
      assert.matches("vpcep: interrupted", err, 1, true)
      assert.matches("3 accepted, 2 rejected, 0 left, 0 failed", out, 1, true)
      assert.is_nil(out:find("# round 2", 1, true))
    end)
  end)

  describe("the launcher, from a copy of a checkout", function()
    local dir

    -- dir/bin/vpcep, dir/lua/vpcep/cli.lua and the given builds (name ->
    -- true for a copy of this run's module, "empty" for an empty file).
    local function checkout(builds)
      dir = helper.tmpdir()
      assert(helper.exec_ok("mkdir -p " .. q(dir .. "/bin") .. " " .. q(dir .. "/lua/vpcep")
        .. " && cp " .. q(BIN) .. " " .. q(dir .. "/bin/vpcep")
        .. " && cp " .. q(ROOT .. "/lua/vpcep/cli.lua") .. " " .. q(dir .. "/lua/vpcep/cli.lua")))
      local so = assert(helper.cmodule_template("vpcep")):gsub("%?", "vpcep")
      for lua, what in pairs(builds) do
        local b = dir .. "/build/" .. lua
        assert(helper.exec_ok("mkdir -p " .. q(b) .. " && "
          .. (what == "empty" and ": >" .. q(b .. "/vpcep.so") or "cp " .. q(so) .. " " .. q(b .. "/vpcep.so"))))
      end
    end

    after_each(function()
      if dir then os.execute("rm -rf " .. q(dir)) end
      dir = nil
    end)

    -- Runs dir/bin/vpcep where Lua finds nothing but argparse, cjson (and
    -- luasocket): no installed vpcep, no path of this run.
    local function launch(args)
      local lpath = assert(helper.cmodule_template("argparse", package.path))
      local cpath = assert(helper.cmodule_template("cjson"))
      local sock = helper.cmodule_template("socket.core")
      if sock then cpath = cpath .. ";" .. sock end
      return run_shell(command(args, nil, dir .. "/bin/vpcep", lpath, cpath))
    end

    it("finds ../lua/ and ../build/<lua>/ beside itself and works", function()
      checkout { [helper.this_lua] = true }
      local rc, out, err = launch({ "list", "--service", SID })
      assert.are.equal(0, rc, err)
      assert.are.equal("4 connection(s)", lines(out)[6])
      rc, out = launch({ "--version" })
      assert.are.equal(0, rc)
      assert.matches("^vpcep %d+%.%d+%.%d+\n$", out)
    end)

    it("says which build is missing and how to make it, when only another Lua's is there", function()
      local others = {}
      for _, lua in ipairs({ "lua5.1", "lua5.3", "lua5.4", "luajit" }) do
        if lua ~= helper.this_lua then others[lua] = "empty" end
      end
      checkout(others)
      local rc, out, err = launch({ "list", "--service", SID })
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      local found = {}
      for _, lua in ipairs({ "lua5.1", "lua5.3", "lua5.4", "luajit" }) do
        if others[lua] then found[#found + 1] = "build/" .. lua end
      end
      assert.are.equal("vpcep: no build for " .. helper.this_lua .. " (found " .. table.concat(found, ", ")
        .. "); run: make LUA=" .. helper.this_lua .. " (in " .. dir .. ")\n", err)
      -- run from the checkout as bin/vpcep: the make command is for here
      local lpath = assert(helper.cmodule_template("argparse", package.path))
      local cpath = assert(helper.cmodule_template("cjson"))
      rc, out, err = run_shell("cd " .. q(dir) .. " && " .. command({ "--version" }, nil, "bin/vpcep", lpath, cpath))
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.are.equal("vpcep: no build for " .. helper.this_lua .. " (found " .. table.concat(found, ", ")
        .. "); run: make LUA=" .. helper.this_lua .. "\n", err)
      assert.are.equal(0, api_requests())
    end)

    it("without any build it says the module cannot be loaded", function()
      checkout {}
      local rc, out, err = launch({ "--version" })
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.matches("^vpcep: cannot load the vpcep module %(luarocks install vpcep, or make in a checkout%): "
        .. "module 'vpcep' not found", err)
      assert.are.equal(1, #lines(err))
    end)

    it("without lua/vpcep/cli.lua it says so in one line", function()
      checkout { [helper.this_lua] = true }
      os.remove(dir .. "/lua/vpcep/cli.lua")
      local rc, out, err = launch({ "--version" })
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.matches("^vpcep: cannot load vpcep.cli: module 'vpcep.cli' not found", err)
      assert.are.equal(1, #lines(err))
    end)
  end)

  describe("the module's internals for it", function()
    local vpcep = require "vpcep"

    it("vpcep._check_id returns the id, or raises what the client raises for it", function()
      assert.are.equal("ep-0001_a.b", vpcep._check_id("ep-0001_a.b", "endpoint id"))
      assert.are.equal(string.rep("a", 64), vpcep._check_id(string.rep("a", 64)))
      local c = helper.client(mock)
      for _, bad in ipairs({ "", "a b", "a/b", "..", ".", "a\n", string.rep("a", 65), "é", 42, true }) do
        local mine = helper.einval(vpcep._check_id, bad, "endpoint id")
        local theirs = helper.einval(c.prepare, c, "receive", SID, bad)
        assert.are.equal(theirs.message, mine.message)
        assert.matches("^endpoint id ", mine.message)
      end
      c:close()
      assert.matches("^id must be 1%.%.64", helper.einval(vpcep._check_id, "").message)
      assert.matches("^what must be a string", helper.einval(vpcep._check_id, "a", 7).message)
      assert.are.equal(0, api_requests())
    end)

    it("vpcep._isatty tells a terminal from anything else; a bad fd is invalid_argument", function()
      for _, bad in ipairs({ -1, 1.5, "0", 2 ^ 40, {} }) do
        assert.matches("^fd must be", helper.einval(vpcep._isatty, bad).message)
      end
      helper.einval(vpcep._isatty)
      local probe = "package.cpath = " .. string.format("%q", package.cpath)
        .. " local v = require 'vpcep' io.write(tostring(v._isatty(0)), tostring(v._isatty(99)))"
      local rc, out = run_shell(q(LUA) .. " -e " .. q(probe))
      assert.are.equal(0, rc)
      assert.are.equal("falsefalse", out)   -- stdin is /dev/null
      if HAVE_PTY then
        local ok, text = helper.run("script -qec " .. q(q(LUA) .. " -e " .. q(probe)) .. " /dev/null </dev/null")
        assert.is_true(ok, text)
        assert.matches("^truefalse", text)
      end
    end)
  end)
end)
