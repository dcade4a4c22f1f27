-- spec/cli_spec.lua: the `vpcep` command (bin/vpcep), run as a child process
-- against the mock, the way a person or a script would run it. The child is
-- the same Lua as this busted run, with the same package.cpath, so it loads
-- the very build under test.
local helper = require "spec.helper"
local json = helper.json
local q = helper.shell_quote
local D = helper.defaults
local SID = D.service_id
local BIG = "422321321312321321"   -- the document's marker_id, more than a double holds

local LUA = helper.interpreter()
local BIN = helper.spec_dir .. "/../bin/vpcep"

local read_file, write_file, tmp = helper.read_file, helper.write_file, helper.tmpname

local TOKEN_FILE = tmp()
write_file(TOKEN_FILE, D.token .. "\n")

-- Every setting the command reads from the environment, cleared so that the
-- caller's shell cannot leak in; then the ones a test gives.
local ENV_NAMES = { "VPCEP_REGION", "VPCEP_ENDPOINT", "VPCEP_TOKEN_FILE", "HUAWEICLOUD_SDK_AK",
  "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "HUAWEICLOUD_SDK_PROJECT_ID",
  "LUA_CPATH_5_2", "LUA_CPATH_5_3", "LUA_CPATH_5_4" }

local mock

local function base_env()
  return {
    VPCEP_ENDPOINT = mock.url,
    HUAWEICLOUD_SDK_PROJECT_ID = D.project_id,
    VPCEP_TOKEN_FILE = TOKEN_FILE,
  }
end

-- The shell command line that runs bin/vpcep with args (a list) and env
-- (a table; false removes a setting from the base).
local function command(args, env)
  local e = base_env()
  for k, v in pairs(env or {}) do e[k] = v or nil end
  local parts = { "env" }
  for _, n in ipairs(ENV_NAMES) do parts[#parts + 1] = "-u " .. n end
  parts[#parts + 1] = "LUA_CPATH=" .. q(package.cpath)
  local names = {}
  for k in pairs(e) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. q(e[k]) end
  parts[#parts + 1] = q(LUA) .. " " .. q(BIN)
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  return table.concat(parts, " ")
end

-- Runs the command; returns exit code, stdout, stderr.
local function vpcep(args, env, stdin)
  local out, err, rc = tmp(), tmp(), tmp()
  local input = "/dev/null"
  if stdin then
    input = tmp()
    write_file(input, stdin)
  end
  os.execute("( " .. command(args, env) .. " ) <" .. q(input) .. " >" .. q(out) .. " 2>" .. q(err)
    .. "; echo $? >" .. q(rc))
  local code = tonumber(read_file(rc))
  local o, e = read_file(out), read_file(err)
  os.remove(out) os.remove(err) os.remove(rc)
  if stdin then os.remove(input) end
  return code, o, e
end

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

  describe("help", function()
    it("--help names the four commands and exits 0", function()
      local rc, out, err = vpcep({ "--help" })
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      for _, c in ipairs({ "accept", "reject", "list", "approve-pending" }) do
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
      local script = tmp()
      write_file(script, (out:gsub("<TOKEN>", D.token)))
      local res = tmp()
      assert.is_true(helper.exec_ok("sh " .. q(script) .. " >" .. q(res) .. " 2>&1"))
      local got = read_file(res)
      os.remove(script) os.remove(res)
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
        local script = tmp()
        write_file(script, (out:gsub("<TOKEN>", D.token)))
        assert.is_true(helper.exec_ok("sh " .. q(script) .. " >/dev/null 2>&1"))
        os.remove(script)
        assert.are.equal("rejected", tls:by_id().t1.status)
      end)
      tls:stop()
      assert(ok, e)
    end)
  end)

  describe("progress", function()
    local ids = { "e1", "e3", "e4", "p1", "p2", "p3", "p4" }
    before_each(function()
      mock:service { endpoints = { { id = "e1" }, { id = "e3" }, { id = "e4" }, { id = "p1" },
        { id = "p2" }, { id = "p3" }, { id = "p4", fail_with = { error_code = "EndPoint.2000",
        error_message = "no quota" } } } }
    end)

    -- `script` needs a pseudo-terminal device; a chroot without /dev/pts has
    -- none, and then these two are pending (CI's machine has one).
    local _, probe = helper.run("script -qec true /dev/null")
    local pty_it = probe:find("pseudo-terminal", 1, true) and pending or it

    local function args()
      local a = { "accept", "--service", SID, "--concurrency", "1" }
      for _, id in ipairs(ids) do a[#a + 1] = id end
      return a
    end

    pty_it("on a terminal, a live line on stderr shows done/total, failures, rate and time left", function()
      local out = tmp()
      local cmd = "script -qec " .. q(command(args())) .. " /dev/null >" .. q(out) .. " 2>&1"
      local a, _, c = os.execute(cmd)
      local code = type(a) == "number" and a / 256 or c
      local text = read_file(out)
      os.remove(out)
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

    pty_it("--no-progress turns it off on a terminal", function()
      local a = args()
      a[#a + 1] = "--no-progress"
      local out = tmp()
      os.execute("script -qec " .. q(command(a)) .. " /dev/null >" .. q(out) .. " 2>&1")
      local text = read_file(out)
      os.remove(out)
      assert.matches("7 endpoint(s): 6 accepted, 1 failed", text, 1, true)
      assert.is_nil(text:find("/7 done", 1, true))
    end)
  end)
end)
