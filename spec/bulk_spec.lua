-- spec/bulk_spec.lua: client:accept/reject on arrays of endpoint ids: one
-- request per id, at most `concurrency` in flight over reused connections,
-- results in input order, and err.results when some fail.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local D = helper.defaults
local ACTION_PATH = "/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. D.service_id .. "/connections/action"

local ids_of = helper.ids

-- The endpoint id in an action request's body.
local function body_id(entry)
  return helper.json.decode(entry.body).endpoints[1]
end

-- The most requests in flight at once, as the log shows it: with the mock
-- sleeping `delay` seconds before each answer, a request that arrived less
-- than `delay` before another is still open when the other arrives.
local function max_overlap(log, delay)
  local times = {}
  for i, e in ipairs(log) do times[i] = e.time end
  table.sort(times)
  local best = 0
  for i = 1, #times do
    local n = 0
    for j = 1, i do
      if times[i] - times[j] < delay then n = n + 1 end
    end
    if n > best then best = n end
  end
  return best
end

local capture = helper.raised

describe("bulk accept/reject", function()
  local mock
  local clients = {}

  local function client(opts)
    local c = helper.client(mock, { retries = 0 }, opts)
    clients[#clients + 1] = c
    return c
  end

  setup(function() mock = helper.start() end)
  teardown(function()
    for _, c in ipairs(clients) do c:close() end
    mock:stop()
  end)
  before_each(function() mock:reset() end)

  for _, action in ipairs({ "accept", "reject" }) do
    local final = action == "accept" and "accepted" or "rejected"
    local wire = action == "accept" and "receive" or "reject"

    it(action .. "s 50 ids with concurrency 8: input order, at most 8 at once, 8 connections", function()
      local ids = mock:seed(50)
      mock:config{ delay_ms = 60 }
      local c = client{ concurrency = 8 }
      -- reverse the input so input order differs from seeding order
      local input = {}
      for i = 1, #ids do input[i] = ids[#ids + 1 - i] end
      local before = mock:stats().connections_opened
      local res = c[action](c, D.service_id, input)
      local after = mock:stats().connections_opened
      assert.equal(50, #res)
      for i, conn in ipairs(res) do
        assert.is_table(conn)
        assert.is_false(vpcep.is_error(conn))
        assert.equal(input[i], conn.id)
        assert.equal(final, conn.status)
      end
      -- the server agrees, for every one
      local state = mock:by_id()
      for _, id in ipairs(ids) do assert.equal(final, state[id].status, id) end
      -- one request per id, each carrying exactly one endpoint and the right action
      local log = mock:log()
      assert.equal(50, #log)
      local seen = {}
      for _, e in ipairs(log) do
        assert.equal("POST", e.method)
        assert.equal(ACTION_PATH, e.path)
        local doc = helper.json.decode(e.body)
        assert.equal(wire, doc.action)
        assert.equal(1, #doc.endpoints)
        seen[doc.endpoints[1]] = (seen[doc.endpoints[1]] or 0) + 1
      end
      for _, id in ipairs(ids) do assert.equal(1, seen[id], id) end
      -- never more than 8 at once, and really concurrent
      local overlap = max_overlap(log, 0.06)
      assert.is_true(overlap <= 8, "overlap " .. overlap)
      assert.is_true(overlap >= 2, "overlap " .. overlap .. ": requests were not concurrent")
      -- connections reused: at most 8 opened (minus the stats call's own)
      local opened = after - before - 1
      assert.is_true(opened >= 1 and opened <= 8, "opened " .. opened)
    end)
  end

  it("reuses the same connections on the next bulk call", function()
    mock:seed(40)
    local c = client{ concurrency = 4 }
    local ids = ids_of(40)
    local first, second = {}, {}
    for i = 1, 20 do first[i] = ids[i]; second[i] = ids[20 + i] end
    c:accept(D.service_id, first)
    local before = mock:stats().connections_opened
    local res = c:reject(D.service_id, second)
    local after = mock:stats().connections_opened
    assert.equal(20, #res)
    assert.equal("rejected", res[20].status)
    assert.equal(second[20], res[20].id)
    -- only the stats call itself opened a connection
    assert.equal(1, after - before)
  end)

  it("does not take answers left unread on the kept connections as the next bulk call's", function()
    local ids = mock:seed(8)
    local c = client{ concurrency = 8 }
    -- every answer of the first call is followed by an unasked-for copy
    mock:fault{ match = { method = "POST" }, times = 8, extra = true }
    local res = c:accept(D.service_id, ids)
    for i = 1, 8 do assert.equal(ids[i], res[i].id) end
    mock:await_extra(8)
    local before = mock:stats().connections_opened
    res = c:reject(D.service_id, ids)
    local after = mock:stats().connections_opened
    for i = 1, 8 do
      assert.equal(ids[i], res[i].id)
      assert.equal("rejected", res[i].status)
    end
    local state = mock:by_id()
    for _, id in ipairs(ids) do assert.equal("rejected", state[id].status) end
    assert.equal(16, #mock:log())
    -- each connection holding a copy was dropped, and a new one opened
    -- instead (less the stats call's own)
    assert.equal(8, after - before - 1)
  end)

  it("credits no answer to the wrong endpoint when a stale one comes after the next request", function()
    local ids = mock:seed(12)
    local c = client{ concurrency = 3 }
    -- a copy of each answer comes 30 ms late: by then the connection may
    -- carry the next request, whose answer it would pass for
    mock:fault{ match = { method = "POST" }, times = 0, extra = true, extra_delay_ms = 30 }
    local ok, res = pcall(c.accept, c, D.service_id, ids)
    -- one request each, the last of them perhaps still to be read: wait,
    -- so that none lands in the next test's log
    mock:await_log(12)
    c:close()
    local results = ok and res or res.results
    assert.equal(12, #results)
    for i, r in ipairs(results) do
      if vpcep.is_error(r) then
        assert.equal("vpcep.bad_response", r.code, tostring(r))
        assert.equal(ids[i], r.endpoint)
      else
        assert.equal(ids[i], r.id)
        assert.equal("accepted", r.status)
      end
    end
  end)

  it("each connection returned carries the request id of the answer that gave it, with wait too", function()
    local ids = mock:seed(6)
    local c = client()
    -- The request id the mock answered each POST (by endpoint) and each PUT with.
    local function answered(method)
      local t = {}
      for _, e in ipairs(mock:log()) do
        if e.method == method then
          local doc = helper.json.decode(e.body)
          t[method == "PUT" and doc.connections[1].id or doc.endpoints[1]] = e.request_id
        end
      end
      return t
    end
    local res = c:accept(D.service_id, { ids[1], ids[2], ids[3] })
    local rids = answered("POST")
    local distinct = {}
    for i = 1, 3 do
      assert.matches("^%x+$", res[i].request_id)
      assert.are.equal(rids[ids[i]], res[i].request_id)
      distinct[res[i].request_id] = true
    end
    assert.is_not_nil(next(distinct, next(distinct))) -- not one id for all
    local one = c:reject(D.service_id, ids[4])
    assert.are.equal(answered("POST")[ids[4]], one[1].request_id)
    -- with wait, the polled connection keeps the action's request id, not a poll's
    mock:clear_log()
    mock:config { transition_ms = 200 }
    res = c:accept(D.service_id, { ids[5], ids[6] }, { wait = 30 })
    rids = answered("POST")
    local polls = 0
    for _, e in ipairs(mock:log()) do if e.method == "GET" then polls = polls + 1 end end
    assert.is_true(polls >= 1)
    for i = 1, 2 do
      assert.are.equal("accepted", res[i].status)
      assert.are.equal(rids[ids[4 + i]], res[i].request_id)
    end
    -- describe's too
    mock:clear_log()
    res = c:describe(D.service_id, { [ids[1]] = "x", [ids[2]] = "y" })
    rids = answered("PUT")
    for i = 1, 2 do assert.are.equal(rids[res[i].id], res[i].request_id) end
  end)

  it("works with concurrency 1: one at a time over one connection", function()
    mock:seed(12)
    mock:config{ delay_ms = 30 }
    local c = client{ concurrency = 1 }
    local ids = ids_of(12)
    local before = mock:stats().connections_opened
    local res = c:accept(D.service_id, ids)
    local after = mock:stats().connections_opened
    for i = 1, 12 do assert.equal(ids[i], res[i].id) end
    local log = mock:log()
    assert.equal(12, #log)
    assert.equal(1, max_overlap(log, 0.03))
    -- strictly sequential: in input order on the wire
    for i = 1, 12 do assert.equal(ids[i], body_id(log[i])) end
    assert.equal(1, after - before - 1)
  end)

  it("takes more concurrency than ids, and a single id as a string", function()
    mock:seed(3)
    local c = client{ concurrency = 64 }
    local res = c:accept(D.service_id, ids_of(3))
    assert.equal(3, #res)
    assert.equal("ep-0002", res[3].id)
    res = c:reject(D.service_id, "ep-0001")
    assert.equal(1, #res)
    assert.equal("ep-0001", res[1].id)
    assert.equal("rejected", res[1].status)
  end)

  it("raises the first failure, with every result in err.results in input order", function()
    local eps = {}
    for i = 1, 20 do eps[i] = { id = string.format("ep-%04d", i - 1) } end
    eps[15].fail_with = { error_code = "EndPoint.1234", error_message = "quota exceeded" }
    mock:service{ endpoints = eps }
    -- ep-0012: a 403 with a flat error, never retried
    mock:fault{ match = { endpoint = "ep-0012" }, times = 0,
      answer = { status = 403, json = { error_code = "EndPoint.0403", error_msg = "no right to this one" } } }
    local input = ids_of(20)
    input[8] = "ep-9999"          -- unknown: 404 EndPoint.0005, the first failure
    local c = client{ concurrency = 5 }
    local err = capture(c.accept, c, D.service_id, input)
    assert.equal("EndPoint.0005", err.code)
    assert.equal(404, err.status)
    assert.equal("The requested resource does not exist.", err.message)
    assert.equal("ep-9999", err.endpoint)
    assert.is_string(err.request_id)
    assert.equal(3, err.failed)
    assert.is_table(err.results)
    assert.equal(20, #err.results)
    for i, r in ipairs(err.results) do
      if i == 8 then
        assert.is_true(vpcep.is_error(r))
        assert.equal("EndPoint.0005", r.code)
        assert.equal("ep-9999", r.endpoint)
      elseif i == 13 then
        assert.is_true(vpcep.is_error(r))
        assert.equal("EndPoint.0403", r.code)
        assert.equal(403, r.status)
        assert.equal("no right to this one", r.message)
        assert.equal("ep-0012", r.endpoint)
      elseif i == 15 then
        assert.is_true(vpcep.is_error(r))
        assert.equal("vpcep.connection_failed", r.code)
        assert.matches("EndPoint.1234", r.message, 1, true)
        assert.matches("quota exceeded", r.message, 1, true)
        assert.equal("ep-0014", r.endpoint)
        assert.equal("failed", r.connection.status)
      else
        assert.is_false(vpcep.is_error(r), "result " .. i)
        assert.equal(input[i], r.id)
        assert.equal("accepted", r.status)
      end
    end
    -- nothing that succeeded was hidden or undone: the server accepted them
    local state = mock:by_id()
    assert.equal("accepted", state["ep-0000"].status)
    assert.equal("accepted", state["ep-0019"].status)
    assert.equal("pendingAcceptance", state["ep-0012"].status)
    assert.equal("failed", state["ep-0014"].status)
    -- every id was tried exactly once (no retries on these)
    assert.equal(20, #mock:log())
    -- the error names no secret
    assert.is_nil(tostring(err):find(D.token, 1, true))
  end)

  it("reports a lone failure at the end of a long list", function()
    mock:seed(30)
    local input = ids_of(30)
    input[30] = "ep-gone"
    local c = client{ concurrency = 8 }
    local err = capture(c.reject, c, D.service_id, input)
    assert.equal("EndPoint.0005", err.code)
    assert.equal("ep-gone", err.endpoint)
    assert.equal(1, err.failed)
    assert.equal(30, #err.results)
    assert.equal("ep-0028", err.results[29].id)
    assert.equal("rejected", err.results[29].status)
    assert.is_true(vpcep.is_error(err.results[30]))
  end)

  it("retries each request on its own", function()
    mock:seed(10)
    mock:fault{ match = { endpoint = "ep-0004" }, times = 2,
      answer = { status = 503, json = { error_code = "X.503", error_msg = "busy" } } }
    local c = client{ concurrency = 4, retries = 3 }
    local res = c:accept(D.service_id, ids_of(10))
    assert.equal("ep-0004", res[5].id)
    assert.equal("accepted", res[5].status)
    local tries = 0
    for _, e in ipairs(mock:log()) do
      if body_id(e) == "ep-0004" then tries = tries + 1 end
    end
    assert.equal(3, tries)
    assert.equal(12, #mock:log())
  end)

  it("refuses bad endpoint lists before sending anything", function()
    mock:seed(3)
    local c = client()
    local bad = {
      {}, { "ep-0000", "ep-0000" }, { "ep-0000", 42 }, { "ep-0000", "" }, { [1] = "ep-0000", [3] = "ep-0001" },
      { "ep-0000", x = "ep-0001" }, { "ep/0000" }, { string.rep("e", 65) }, 42, true, "", "a b",
    }
    for i, b in ipairs(bad) do
      local err = capture(c.accept, c, D.service_id, b)
      assert.equal("vpcep.invalid_argument", err.code, "case " .. i)
    end
    -- too many ids at once, unless opts.max_endpoints allows it
    local many = ids_of(1001)
    assert.equal("vpcep.invalid_argument", capture(c.accept, c, D.service_id, many).code)
    for _, o in ipairs({ { max_endpoints = 0 }, { max_endpoints = 1.5 }, { nope = 1 }, "x" }) do
      assert.equal("vpcep.invalid_argument", capture(c.accept, c, D.service_id, { "ep-0000" }, o).code)
    end
    assert.equal(0, #mock:log())
  end)

  it("refuses a bad concurrency when the client is made", function()
    for _, v in ipairs({ 0, -1, 65, 2.5, "8" }) do
      local err = capture(vpcep.new, { endpoint = mock.url, project_id = D.project_id, token = D.token,
        concurrency = v })
      assert.equal("vpcep.invalid_argument", err.code, tostring(v))
    end
  end)
end)

-- examples/approve_pending.lua, run as a child process against the mock.
describe("examples/approve_pending.lua", function()
  local mock

  -- the interpreter running this spec, and where its vpcep.so came from
  local function interpreter() return helper.this_lua end
  local function module_dir()
    local tmpl = helper.cmodule_template("vpcep") or error("vpcep.so not found on package.cpath")
    return (tmpl:gsub("%?", "vpcep"):match("^(.*)/[^/]*$") or ".")
  end

  -- runs the example; returns stdout lines (as one string), exit status, stderr
  local function run(args, env)
    local q = helper.shell_quote
    local err_file = os.tmpname()
    local vars = {
      VPCEP_ENDPOINT = mock.url, HUAWEICLOUD_SDK_PROJECT_ID = D.project_id, VPCEP_TOKEN = D.token,
      LUA_CPATH = module_dir() .. "/?.so;;", LUA_PATH = "./?.lua;;",
    }
    for k, v in pairs(env or {}) do vars[k] = v end
    local parts = { "env -u VPCEP_REGION -u VPCEP_SERVICE_ID -u VPCEP_DOMAIN_IDS -u HUAWEICLOUD_SDK_AK"
      .. " -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN" }
    for k, v in pairs(vars) do
      if v ~= false then parts[#parts + 1] = k .. "=" .. q(v) end
    end
    parts[#parts + 1] = interpreter() .. " examples/approve_pending.lua"
    for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
    local cmd = table.concat(parts, " ") .. " 2>" .. q(err_file) .. "; echo \"exit=$?\""
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("*a")
    p:close()
    local f = io.open(err_file, "rb")
    local err = f and f:read("*a") or ""
    if f then f:close() end
    os.remove(err_file)
    local status = tonumber(out:match("exit=(%d+)%s*$"))
    return out:gsub("exit=%d+%s*$", ""), status, err
  end

  local function seed()
    mock:service{ endpoints = {
      { id = "a1", domain_id = "dom-a" }, { id = "b1", domain_id = "dom-b" },
      { id = "a2", domain_id = "dom-a" }, { id = "done", domain_id = "dom-a", status = "accepted" },
      { id = "c1", domain_id = "dom-c" }, { id = "b2", domain_id = "dom-b" },
      { id = "gone", domain_id = "dom-b", status = "rejected" }, { id = "a3", domain_id = "dom-a" },
    } }
  end

  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function() mock:reset() end)

  it("accepts the pending connections of the chosen accounts in one bulk call", function()
    seed()
    local out, status, err = run({ "--domain", "dom-a", "--domain", "dom-b", D.service_id })
    assert.equal(0, status, err)
    for _, id in ipairs({ "a1", "a2", "a3", "b1", "b2" }) do
      assert.matches("\naccepted%s+" .. id .. " domain=dom%-[ab]\n", "\n" .. out)
    end
    assert.is_nil(out:find("c1", 1, true))
    assert.matches("summary: 6 pending, 1 skipped (other accounts), 5 accepted, 0 failed", out, 1, true)
    local state = mock:by_id()
    for _, id in ipairs({ "a1", "a2", "a3", "b1", "b2", "done" }) do assert.equal("accepted", state[id].status, id) end
    assert.equal("pendingAcceptance", state.c1.status)
    assert.equal("rejected", state.gone.status)
    -- one list call for the pending ones, then one action per chosen endpoint
    local log = mock:log()
    assert.equal(6, #log)
    assert.equal("GET", log[1].method)
    assert.matches("?status=pendingAcceptance&", log[1].path, 1, true)
    for k = 2, 6 do assert.equal("POST", log[k].method) end
  end)

  it("takes the service and accounts from the environment, and signs with AK/SK", function()
    seed()
    local out, status, err = run({}, {
      VPCEP_SERVICE_ID = D.service_id, VPCEP_DOMAIN_IDS = "dom-c, dom-b", VPCEP_TOKEN = false,
      HUAWEICLOUD_SDK_AK = D.ak, HUAWEICLOUD_SDK_SK = D.sk,
    })
    assert.equal(0, status, err)
    assert.matches("summary: 6 pending, 3 skipped (other accounts), 3 accepted, 0 failed", out, 1, true)
    assert.equal("pendingAcceptance", mock:by_id().a1.status)
    assert.equal("accepted", mock:by_id().c1.status)
    assert.is_nil((out .. err):find(D.sk, 1, true))
  end)

  it("exits 1 when any endpoint fails, still accepting the rest", function()
    seed()
    mock:fault{ match = { endpoint = "b1" }, times = 0,
      answer = { status = 403, json = { error_code = "EndPoint.0403", error_msg = "not yours" } } }
    local out, status = run({ D.service_id })
    assert.equal(1, status)
    assert.matches("FAILED%s+b1 domain=dom%-b: [^\n]*EndPoint%.0403[^\n]*not yours", out)
    assert.matches("summary: 6 pending, 0 skipped (other accounts), 5 accepted, 1 failed", out, 1, true)
    assert.equal("accepted", mock:by_id().c1.status)
    assert.equal("pendingAcceptance", mock:by_id().b1.status)
    assert.is_nil(out:find(D.token, 1, true))
  end)

  it("counts a connection still creating when --wait runs out as failed", function()
    mock:service{ endpoints = { { id = "slow" }, { id = "fast" } } }
    mock:config{ transition_ms = 60000 }
    mock:fault{ match = { method = "POST", endpoint = "fast" }, times = 1,
      answer = { status = 200, json = { connections = { { id = "fast", status = "accepted", domain_id = "d0" } } } } }
    local out, status = run({ "--wait", "0.2", D.service_id })
    assert.equal(1, status)
    assert.matches("FAILED%s+slow domain=d0: still creating", out)
    assert.matches("\naccepted%s+fast", "\n" .. out)
    assert.matches("1 accepted, 1 failed", out, 1, true)
  end)

  it("pages through more than 1000 pending connections", function()
    mock:seed(1100)
    local out, status, err = run({ "--concurrency", "16", D.service_id })
    assert.equal(0, status, err)
    assert.matches("summary: 1100 pending, 0 skipped (other accounts), 1100 accepted, 0 failed", out, 1, true)
    local lines = 0
    for _ in out:gmatch("\naccepted ") do lines = lines + 1 end
    assert.equal(1099, lines) -- the first line has no newline before it
    assert.matches("^accepted%s+ep%-0000", out)
    assert.equal("accepted", mock:by_id()["ep-1099"].status)
  end)

  it("does nothing when nothing matches, and --dry-run sends no action", function()
    seed()
    local out, status = run({ "--domain", "dom-z", D.service_id })
    assert.equal(0, status)
    assert.matches("nothing to approve", out, 1, true)
    out, status = run({ "--dry-run", "--domain", "dom-c", D.service_id })
    assert.equal(0, status)
    assert.matches("would%s+c1 domain=dom%-c", out)
    for _, e in ipairs(mock:log()) do assert.equal("GET", e.method) end
    assert.equal("pendingAcceptance", mock:by_id().c1.status)
  end)

  it("exits 2 on bad usage, bad settings or an unreadable list", function()
    seed()
    local cases = {
      { {} }, { { "--bogus", D.service_id } }, { { "--wait" } }, { { "s1", "s2" } },
      { { "--concurrency", "x", D.service_id } }, { { "--concurrency", "0", D.service_id } },
      { { D.service_id }, { HUAWEICLOUD_SDK_PROJECT_ID = false } },
      { { "no-such-service" } },
    }
    for k, case in ipairs(cases) do
      local out, status, err = run(case[1], case[2])
      assert.equal(2, status, "case " .. k .. ": " .. out .. err)
      assert.is_true(#err > 0, "case " .. k .. " says nothing on stderr")
      assert.is_nil(err:find(D.token, 1, true))
    end
    for _, e in ipairs(mock:log()) do assert.equal("GET", e.method) end
  end)
end)
