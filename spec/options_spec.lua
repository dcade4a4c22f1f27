-- spec/options_spec.lua: vpcep.new's options (types, ranges, lengths,
-- unknown names, the environment) and the arguments of accept, reject and
-- connections: every bad one raises vpcep.invalid_argument and NOTHING is
-- sent (the mock's log stays empty). Token auth only.
package.path = "./?.lua;" .. package.path
local helper = require "spec.helper"
local vpcep = require "vpcep"
local D = helper.defaults
local q = helper.shell_quote

local TOKEN = "opt-token-" .. string.rep("t", 30)

local einval = helper.einval

local function describe_value(v)
  if type(v) == "string" then
    return string.format("%q", #v > 40 and v:sub(1, 40) .. "...(" .. #v .. ")" or v)
  end
  return tostring(v)
end

local interpreter = helper.interpreter

describe("options", function()
  local mock

  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function()
    mock:reset()
    mock:auth{ token = TOKEN }
    mock:service{ endpoints = { { id = "e1" }, { id = "e2" }, { id = "e3" } } }
  end)

  local function opts(extra) return helper.client_opts(mock, { token = TOKEN, retries = 0 }, extra) end

  -- vpcep.new with one option set to a bad value: invalid_argument, nothing sent
  local function refused(name, value, base)
    local o = base or opts()
    o[name] = value
    local ok, err = pcall(vpcep.new, o)
    assert.is_false(ok, name .. " = " .. describe_value(value) .. " was accepted")
    assert.is_true(vpcep.is_error(err), "not an error object: " .. tostring(err))
    assert.are.equal("vpcep.invalid_argument", err.code, name .. " = " .. describe_value(value))
    return err
  end

  local function works(extra)
    local c = vpcep.new(opts(extra))
    local conns = c:accept(D.service_id, "e1")
    c:close()
    return conns
  end

  describe("vpcep.new", function()
    local wrong_types = {
      project_id = { 1, true, {}, print },
      region = { 1, true, {} },
      endpoint = { 1, true, {}, print },
      token = { 1, true, {}, print },
      timeout = { "10", true, {}, print },
      connect_timeout = { "10", true, {} },
      retries = { "3", true, {} },
      concurrency = { "8", true, {} },
      verify = { 1, 0, "true", "false", {} },
      cafile = { 1, true, {} },
      proxy = { 1, true, {} },
      user_agent = { 1, true, {} },
      ak = { 1, true, {} },
      sk = { 1, true, {} },
      security_token = { 1, true, {} },
    }
    for name, values in pairs(wrong_types) do
      it("refuses a wrong type for " .. name, function()
        for _, v in ipairs(values) do
          local base = opts()
          if name == "region" then base.endpoint = nil end
          if name == "ak" or name == "sk" or name == "security_token" then base.token = nil end
          refused(name, v, base)
        end
        assert.are.equal(0, #mock:log())
      end)
    end

    local NAN, INF = 0 / 0, math.huge
    local out_of_range = {
      timeout = { 0, -1, 86401, NAN, INF, -INF },
      connect_timeout = { 0, -0.5, 86401, NAN, INF },
      retries = { -1, 11, 1.5, NAN, INF },
      concurrency = { 0, -1, 65, 2.5, NAN },
      project_id = { "", string.rep("p", 65), "a/b", "a b", "a?b", "a#b", "..", "a%2Fb", "p\n", "p\0x", "p\r" },
      token = { "", string.rep("t", 2049), "tok en", "tok\r\nX-Evil: 1", "tok\0", "tok\t" },
      endpoint = { "", "127.0.0.1:80", "ftp://127.0.0.1", "http://", "https://", "http://h/", "http://h/path",
                   "http://h?x=1", "http://h#f", "http://user@h", "http://h:0", "http://h:65536", "http://h:x",
                   "http://h h", "http://h\r\n", "http://[::1" },
      region = { "", "nowhere-1", "cn-north-4 ", "CN-NORTH-4" },
      user_agent = { "", string.rep("u", 257), "ua\r\nX-Evil: 1", "ua\0" },
      proxy = { "", "http://p\r\n" },
      cafile = { "", "/tmp/x\n" },
    }
    for name, values in pairs(out_of_range) do
      it("refuses out-of-range values of " .. name, function()
        for _, v in ipairs(values) do
          local base = opts()
          if name == "region" then base.endpoint = nil end
          refused(name, v, base)
        end
        assert.are.equal(0, #mock:log())
      end)
    end

    it("accepts the bounds of the ranges", function()
      for _, extra in ipairs({ { timeout = 86400 }, { timeout = 0.001 }, { connect_timeout = 86400 },
                               { retries = 0 }, { retries = 10 }, { concurrency = 1 }, { concurrency = 64 },
                               { verify = false }, { verify = true }, { user_agent = string.rep("u", 256) },
                               { retries = 3.0 } }) do
        local c = vpcep.new(opts(extra))
        c:close()
      end
    end)

    it("accepts a token of 2048 bytes and sends it whole; refuses 2049", function()
      local long = string.rep("T", 2040) .. "12345678"
      assert.are.equal(2048, #long)
      mock:auth{ token = long }
      local conns = works{ token = long }
      assert.are.equal("accepted", conns[1].status)
      local got
      for _, h in ipairs(mock:log()[1].headers) do if h[1] == "X-Auth-Token" then got = h[2] end end
      assert.are.equal(long, got)
      mock:clear_log()
      local err = refused("token", long .. "9")
      assert.is_nil(err.message:find("TTTTTTTTTT", 1, true), "the message shows the token")
      assert.are.equal(0, #mock:log())
    end)

    it("accepts a project_id of 64 characters and puts it in the path; refuses 65", function()
      local pid = string.rep("a", 60) .. "-0_9"
      assert.are.equal(64, #pid)
      mock:service{ project_id = pid, endpoints = { { id = "e1" } } }
      local c = vpcep.new(opts{ project_id = pid })
      c:accept(D.service_id, "e1")
      c:close()
      assert.are.equal("/v1/" .. pid .. "/vpc-endpoint-services/" .. D.service_id .. "/connections/action",
        mock:log()[1].path)
      assert.are.equal("accepted", mock:by_id(pid).e1.status)
      mock:clear_log()
      refused("project_id", pid .. "x")
      assert.are.equal(0, #mock:log())
    end)

    it("refuses unknown option names", function()
      for _, extra in ipairs({ { tokn = "x" }, { Token = "x" }, { projectid = "p" }, { timout = 1 },
                               { [1] = "positional" }, { [true] = 1 }, { service_id = D.service_id },
                               { endpoints = "e1" } }) do
        local o = opts()
        for k, v in pairs(extra) do o[k] = v end
        einval(vpcep.new, o)
      end
      assert.are.equal(0, #mock:log())
    end)

    it("names the unknown option in the message", function()
      local o = opts()
      o.tiemout = 5
      local err = einval(vpcep.new, o)
      assert.matches("tiemout", err.message, 1, true)
    end)

    it("refuses options that are not a table, and missing ones", function()
      for _, v in ipairs({ "x", 1, true }) do einval(vpcep.new, v) end
      einval(vpcep.new)
      einval(vpcep.new, nil)
    end)

    it("refuses combinations: region and endpoint, token and ak/sk, no host", function()
      local o = opts{ region = "cn-north-4" }
      einval(vpcep.new, o)
      einval(vpcep.new, opts{ ak = D.ak, sk = D.sk })
      o = opts()
      o.endpoint = nil
      einval(vpcep.new, o)
    end)

    it("never shows the token in a refusal", function()
      local cases = {
        opts{ timeout = -1 }, opts{ bogus = 1 }, opts{ region = "cn-north-4" }, opts{ endpoint = "ftp://x" },
        opts{ ak = "A", sk = "B" }, opts{ project_id = "a/b" }, opts{ user_agent = "\n" },
      }
      for _, o in ipairs(cases) do
        local err = einval(vpcep.new, o)
        assert.is_nil(tostring(err):find(TOKEN, 1, true))
        assert.is_nil(err.message:find(TOKEN, 1, true))
      end
      local err = einval(vpcep.new, opts{ token = TOKEN .. " with a space" })
      assert.is_nil(tostring(err):find(TOKEN, 1, true))
    end)
  end)

  describe("accept, reject and connections arguments", function()
    local client
    before_each(function() client = vpcep.new(opts()) end)
    after_each(function() client:close() end)

    local bad_ids = {
      "", string.rep("s", 65), "a/b", "/", "a?b", "a#b", "..", "a..b", ".", "a%2Fb", "%", "a\rb", "a\nb",
      "a\0b", "a b", "a\tb", "é", 123, 1.5, true, {}, print,
    }

    it("a bad service id is refused before anything is sent", function()
      for _, sid in ipairs(bad_ids) do
        einval(client.accept, client, sid, "e1")
        einval(client.reject, client, sid, { "e1" })
        einval(client.connections, client, sid)
      end
      einval(client.accept, client, nil, "e1")
      einval(client.accept, client)
      einval(client.connections, client)
      assert.are.equal(0, #mock:log())
    end)

    it("a bad endpoint id, alone or in an array, is refused before anything is sent", function()
      for _, eid in ipairs(bad_ids) do
        if type(eid) ~= "table" then
          einval(client.accept, client, D.service_id, eid)
          einval(client.reject, client, D.service_id, { eid })
          -- the bad one last: the good ones before it must not go out either
          einval(client.accept, client, D.service_id, { "e1", "e2", eid })
        end
      end
      assert.are.equal(0, #mock:log())
      assert.are.equal("pendingAcceptance", mock:by_id().e1.status)
    end)

    it("bad endpoint arrays are refused before anything is sent", function()
      local many = {}
      for i = 1, 1001 do many[i] = string.format("ep-%04d", i) end
      local holes = { "e1" }
      holes[3] = "e3"
      local cases = {
        {}, { 1 }, { "e1", 2 }, { "e1", "e1" }, { "e1", "e2", "e1" }, holes, { "e1", x = "e2" },
        { [0] = "e0", "e1" }, { [2] = "e2" }, { "e1", { "e2" } }, { "e1", true }, many, nil,
      }
      for i = 1, #cases + 1 do
        local eps = cases[i]
        einval(client.accept, client, D.service_id, eps)
        einval(client.reject, client, D.service_id, eps)
      end
      assert.are.equal(0, #mock:log())
    end)

    it("1000 ids is the default limit and is not refused for its size", function()
      local ids = {}
      for i = 1, 1000 do ids[i] = string.format("ep-%04d", i) end
      ids[1000] = "bad/id" -- keeps the call from sending: refused for the id, not the count
      local err = einval(client.accept, client, D.service_id, ids)
      assert.matches("endpoints[1000]", err.message, 1, true)
      assert.are.equal(0, #mock:log())
    end)

    it("bad call options are refused before anything is sent", function()
      for _, o in ipairs({ "x", 1, true, { bogus = 1 }, { wait = -1 }, { wait = "1" }, { wait = 0 / 0 } }) do
        einval(client.accept, client, D.service_id, "e1", o)
        einval(client.reject, client, D.service_id, { "e1" }, o)
      end
      for _, qry in ipairs({ "x", 1, { bogus = 1 }, { limit = -1 }, { limit = 1001 }, { status = 5 } }) do
        einval(client.connections, client, D.service_id, qry)
      end
      assert.are.equal(0, #mock:log())
    end)

    it("good arguments still go through after all those refusals", function()
      einval(client.accept, client, D.service_id, {})
      local conns = client:accept(D.service_id, { "e1", "e2" })
      assert.are.equal(2, #conns)
      assert.are.equal(2, #mock:log())
    end)
  end)

  describe("the environment", function()
    -- runs `code` in a child of the same Lua with exactly `env` (plus PATH);
    -- returns what it printed
    local function child(env, code)
      local words = { "env", "-i", q("PATH=" .. (os.getenv("PATH") or "/usr/bin:/bin")) }
      for k, v in pairs(env) do words[#words + 1] = q(k .. "=" .. v) end
      words[#words + 1] = q(interpreter())
      local prog = "package.cpath = " .. string.format("%q", package.cpath) .. "\n"
        .. "local vpcep = require 'vpcep'\n"
        .. "local ok, r = pcall(function() " .. code .. " end)\n"
        .. "if ok then io.write('OK ', tostring(r), '\\n')\n"
        .. "else io.write('ERR ', tostring(vpcep.is_error(r)), ' ',"
        .. " tostring(type(r) == 'table' and r.code or r), '\\n') end\n"
      words[#words + 1] = "-e " .. q(prog) .. " </dev/null 2>&1"
      local p = assert(io.popen(table.concat(words, " "), "r"))
      local out = p:read("*a")
      p:close()
      return out
    end

    local function new_code(with_pid)
      return "local c = vpcep.new{ endpoint = " .. string.format("%q", mock.url) .. ", token = "
        .. string.format("%q", TOKEN) .. ", retries = 0"
        .. (with_pid and (", project_id = " .. string.format("%q", with_pid)) or "") .. " }\n"
        .. "local conns = c:accept(" .. string.format("%q", D.service_id) .. ", 'e1')\n"
        .. "c:close() return conns[1].status"
    end

    it("the child runs this very Lua and build", function()
      local out = child({}, "return _VERSION .. '|' .. (jit and jit.version or '') .. '|' .. vpcep._VERSION")
      assert.are.equal("OK " .. _VERSION .. "|" .. (rawget(_G, "jit") and jit.version or "") .. "|"
        .. vpcep._VERSION .. "\n", out)
    end)

    it("takes project_id from HUAWEICLOUD_SDK_PROJECT_ID when the option is missing", function()
      local pid = "p-from-env-0001"
      mock:service{ project_id = pid, endpoints = { { id = "e1" } } }
      local out = child({ HUAWEICLOUD_SDK_PROJECT_ID = pid }, new_code(nil))
      assert.are.equal("OK accepted\n", out)
      local log = mock:log()
      assert.are.equal(1, #log)
      assert.are.equal("/v1/" .. pid .. "/vpc-endpoint-services/" .. D.service_id .. "/connections/action", log[1].path)
      assert.are.equal("accepted", mock:by_id(pid).e1.status)
    end)

    it("the option wins over HUAWEICLOUD_SDK_PROJECT_ID", function()
      local out = child({ HUAWEICLOUD_SDK_PROJECT_ID = "p-env-loses" }, new_code(D.project_id))
      assert.are.equal("OK accepted\n", out)
      assert.are.equal("/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. D.service_id .. "/connections/action",
        mock:log()[1].path)
    end)

    it("without option and environment, project_id is missing", function()
      assert.are.equal("ERR true vpcep.invalid_argument\n", child({}, new_code(nil)))
      assert.are.equal("ERR true vpcep.invalid_argument\n", child({ HUAWEICLOUD_SDK_PROJECT_ID = "" }, new_code(nil)))
      assert.are.equal(0, #mock:log())
    end)

    it("a bad HUAWEICLOUD_SDK_PROJECT_ID is refused like a bad option", function()
      for _, pid in ipairs({ string.rep("p", 65), "a/b", "a?b", "..", "a b" }) do
        assert.are.equal("ERR true vpcep.invalid_argument\n",
          child({ HUAWEICLOUD_SDK_PROJECT_ID = pid }, new_code(nil)),
          pid)
      end
      local ok64 = string.rep("p", 64)
      mock:service{ project_id = ok64, endpoints = { { id = "e1" } } }
      assert.are.equal("OK accepted\n", child({ HUAWEICLOUD_SDK_PROJECT_ID = ok64 }, new_code(nil)))
      assert.are.equal(1, #mock:log())
    end)
  end)
end)
