-- spec/each_connection_spec.lua: for conn in client:each_connection(sid, query):
-- pages fetched lazily (1000 per request unless query.limit says), only one
-- page held, bad input refused at the call, a failed page raised from the
-- loop as an error object, a server that ignores offset stopped; and the
-- Lua part (vpcep.reconcile) being missing said as vpcep.not_installed.
local helper = require "spec.helper"
local vpcep = require "vpcep"

-- the checkout's Lua part, whatever --lpath busted was given
package.path = helper.spec_dir .. "/../lua/?.lua;" .. package.path

local D = helper.defaults
local SID = D.service_id
local LIST_PATH = "/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. SID .. "/connections"

local paths = helper.get_paths

describe("client:each_connection", function()
  local mock, c
  local hooks = helper.mock_and_client({ retries = 0 }, function(m, client) mock, c = m, client end)
  setup(hooks.setup)
  teardown(hooks.teardown)
  before_each(hooks.before_each)

  it("yields every connection in order, 1000 per request, and stops at total_count", function()
    mock:seed(2500)
    local n = 0
    for conn in c:each_connection(SID) do
      n = n + 1
      assert.equal(string.format("ep-%04d", n - 1), conn.id)
      assert.equal("pendingAcceptance", conn.status)
    end
    assert.equal(2500, n)
    assert.same({ LIST_PATH .. "?limit=1000&offset=0", LIST_PATH .. "?limit=1000&offset=1000",
      LIST_PATH .. "?limit=1000&offset=2000" }, paths(mock:log()))
  end)

  it("fetches a page only when the last one is used up", function()
    mock:seed(2100)
    local it = c:each_connection(SID)
    assert.equal(0, #mock:log())
    assert.equal("ep-0000", it().id)
    assert.equal(1, #mock:log())
    for _ = 2, 1000 do it() end
    assert.equal(1, #mock:log())
    assert.equal("ep-1000", it().id)
    assert.equal(2, #mock:log())
    for _ = 1002, 2100 do assert.is_table(it()) end
    assert.equal(3, #mock:log())
    assert.is_nil(it())
    assert.is_nil(it())   -- and stays at the end, asking nothing more
    assert.equal(3, #mock:log())
  end)

  it("pages by query.limit, from query.offset, and passes the filters through", function()
    mock:seed(500)
    local got = {}
    for conn in c:each_connection(SID, { limit = 100, offset = 250 }) do got[#got + 1] = conn.id end
    assert.equal(250, #got)
    assert.equal("ep-0250", got[1])
    assert.equal("ep-0499", got[250])
    assert.same({ LIST_PATH .. "?limit=100&offset=250", LIST_PATH .. "?limit=100&offset=350",
      LIST_PATH .. "?limit=100&offset=450" }, paths(mock:log()))

    c:accept(SID, { "ep-0007", "ep-0300", "ep-0301" })
    mock:clear_log()
    got = {}
    for conn in c:each_connection(SID, { status = "accepted", limit = 2 }) do got[#got + 1] = conn.id end
    assert.same({ "ep-0007", "ep-0300", "ep-0301" }, got)
    assert.same({ LIST_PATH .. "?status=accepted&limit=2&offset=0", LIST_PATH .. "?status=accepted&limit=2&offset=2" },
      paths(mock:log()))
  end)

  it("runs no loop for a service without connections, after one request", function()
    mock:service { endpoints = {} }
    for _ in c:each_connection(SID) do error("no connection expected") end
    assert.equal(1, #mock:log())
  end)

  it("does not change the caller's query", function()
    mock:seed(30)
    local q = { limit = 10, status = "pendingAcceptance" }
    for _ in c:each_connection(SID, q) do end
    assert.same({ limit = 10, status = "pendingAcceptance" }, q)
  end)

  it("bounds each page by the client's timeout, not the whole loop", function()
    mock:seed(40)
    mock:config { delay_ms = 400 }
    local slow = helper.client(mock, { retries = 0, timeout = 1 })
    local n = 0
    -- four pages of 0.4 s each: 1.6 s in all, more than the timeout of 1 s
    for _ in slow:each_connection(SID, { limit = 10 }) do n = n + 1 end
    slow:close()
    assert.equal(40, n)
    assert.equal(4, #mock:log())
  end)

  describe("refuses bad input at the call, before anything is sent", function()
    local cases = {
      { "limit 0 (a page that never moves)", { limit = 0 } },
      { "limit 1001", { limit = 1001 } },
      { "a fractional limit", { limit = 1.5 } },
      { "a string limit", { limit = "10" } },
      { "a negative offset", { offset = -1 } },
      { "an unknown key", { colour = "red" } },
      { "an unknown status", { status = "sleeping" } },
      { "a bad id filter", { id = "a/b" } },
      { "a query that is no table", "status=accepted" },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        mock:seed(5)
        helper.einval(c.each_connection, c, SID, case[2])
        assert.equal(0, #mock:log())
      end)
    end

    it("a bad service id, a closed client, no client", function()
      helper.einval(c.each_connection, c, "bad/id")
      helper.einval(c.each_connection, c, nil)
      local closed = helper.client(mock)
      closed:close()
      helper.einval(closed.each_connection, closed, SID)
      helper.einval(c.each_connection, "not a client", SID)
      assert.equal(0, #mock:log())
    end)
  end)

  describe("errors", function()
    it("raises a failed page from the loop as its error object, after the pages before it", function()
      mock:seed(2500)
      mock:fault { match = { path_contains = "offset=1000" }, answer = { status = 500,
        json = { error_code = "EndPoint.0500", error_msg = "internal" } } }
      local n = 0
      local ok, err = pcall(function()
        for _ in c:each_connection(SID) do n = n + 1 end
      end)
      assert.is_false(ok)
      assert.is_true(vpcep.is_error(err), tostring(err))
      assert.equal("EndPoint.0500", err.code)
      assert.equal(500, err.status)
      assert.matches("^%x+$", err.request_id)
      assert.equal(1000, n)
      assert.equal(2, #mock:log())
    end)

    it("stops a server that answers the same page again (offset ignored) with vpcep.bad_response", function()
      mock:seed(2500)
      local _, text = mock:request { path = LIST_PATH .. "?limit=1000&offset=0",
        headers = { ["X-Auth-Token"] = D.token } }
      local first = helper.json.decode(text)
      mock:clear_log()
      mock:fault { match = { method = "GET" }, times = 0, answer = { status = 200, json = first } }
      local n = 0
      local ok, err = pcall(function()
        for _ in c:each_connection(SID) do n = n + 1 end
      end)
      assert.is_false(ok)
      assert.equal("vpcep.bad_response", err.code)
      assert.matches("same page", err.message)
      assert.equal(1000, n)
      assert.equal(2, #mock:log())
    end)

    it("a page that is not the documented JSON is vpcep.bad_response", function()
      mock:fault { match = { method = "GET" }, answer = { status = 200, body = "<html>" } }
      local err = helper.raised(function()
        for _ in c:each_connection(SID) do end
      end)
      assert.equal("vpcep.bad_response", err.code)
    end)

    it("a safe client gives bad input as nil, err, and raises from the loop", function()
      mock:seed(5)
      local safe = vpcep.safe.new(helper.client_opts(mock, { retries = 0 }))
      local it, err = safe:each_connection(SID, { limit = 0 })
      assert.is_nil(it)
      assert.equal("vpcep.invalid_argument", err.code)
      local n = 0
      for _ in safe:each_connection(SID) do n = n + 1 end
      assert.equal(5, n)
      mock:fault { match = { method = "GET" }, answer = { status = 404,
        json = { error_code = "EndPoint.0005", error_msg = "The requested resource does not exist." } } }
      local e2 = helper.raised(function()
        for _ in safe:each_connection(SID) do end
      end)
      assert.equal("EndPoint.0005", e2.code)
      safe:close()
    end)
  end)

  describe("memory", function()
    -- Lua memory (KiB) in use with everything else collected, above base.
    local function used(base)
      collectgarbage("collect")
      collectgarbage("collect")
      return collectgarbage("count") - base
    end

    -- The most memory in use while looping over every connection.
    local function peak_while_looping(query)
      local base = used(0)
      local peak, n = 0, 0
      for _ in c:each_connection(SID, query) do
        n = n + 1
        if n % 100 == 0 then peak = math.max(peak, used(base)) end
      end
      assert.equal(5000, n)
      return peak
    end

    it("holds one page over 5000 connections, a fraction of loading them all", function()
      mock:service { count = 5000, prefix = "ep-", description = string.rep("d", 100) }
      local base = used(0)
      local all = c:connections(SID)
      assert.equal(5000, #all)
      local whole = used(base)
      all = nil   -- luacheck: ignore 311 (let it go before measuring the loop)
      local by_1000 = peak_while_looping(nil)
      local by_100 = peak_while_looping({ limit = 100 })
      -- five pages of 1000 in all: one page is a fifth of the whole
      assert.is_true(by_1000 < whole / 3, string.format("page of 1000: %.0f KiB of %.0f", by_1000, whole))
      -- and the page size is what bounds it
      assert.is_true(by_100 < by_1000 / 3, string.format("page of 100: %.0f KiB, of 1000: %.0f", by_100, by_1000))
    end)
  end)

  it("is not loaded by require \"vpcep\", only by the first call", function()
    local probe = "package.cpath = " .. string.format("%q", package.cpath)
      .. " package.path = " .. string.format("%q", package.path)
      .. " local v = require 'vpcep' io.write(tostring(package.loaded['vpcep.reconcile']))"
      .. " local c = v.new { endpoint = 'http://127.0.0.1:1', project_id = 'p', token = 't' }"
      .. " pcall(c.each_connection, c, 'bad/id')"
      .. " io.write(' ', type(package.loaded['vpcep.reconcile']))"
    local ok, out = helper.run(helper.shell_quote(helper.interpreter()) .. " -e " .. helper.shell_quote(probe))
    assert.is_true(ok, out)
    assert.equal("nil table", out)
  end)

  it("says vpcep.not_installed when the Lua part is not on package.path", function()
    local path, loaded = package.path, package.loaded["vpcep.reconcile"]
    package.path, package.loaded["vpcep.reconcile"] = "./nothing/?.lua", nil
    local ok, err = pcall(c.each_connection, c, SID)
    package.path, package.loaded["vpcep.reconcile"] = path, loaded
    assert.is_false(ok)
    assert.is_true(vpcep.is_error(err), tostring(err))
    assert.equal("vpcep.not_installed", err.code)
    assert.matches("vpcep.reconcile", err.message, 1, true)
    assert.matches("package.path", err.message, 1, true)
    assert.equal(0, #mock:log())
  end)
end)
