-- spec/bulk_spec.lua: client:accept/reject on arrays of endpoint ids: one
-- request per id, at most `concurrency` in flight over reused connections,
-- results in input order, and err.results when some fail.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local D = helper.defaults
local ACTION_PATH = "/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. D.service_id .. "/connections/action"

local function ids_of(n, prefix)
  local t = {}
  for i = 1, n do t[i] = string.format("%s%04d", prefix or "ep-", i - 1) end
  return t
end

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

local function capture(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(vpcep.is_error(err), "expected an error object, got " .. tostring(err))
  return err
end

describe("bulk accept/reject", function()
  local mock
  local clients = {}

  local function client(opts)
    local o = { endpoint = mock.url, project_id = D.project_id, token = D.token, retries = 0 }
    for k, v in pairs(opts or {}) do o[k] = v end
    local c = vpcep.new(o)
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
      local ids = ids_of(50)
      mock:service{ count = 50, prefix = "ep-" }
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
    mock:service{ count = 40, prefix = "ep-" }
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

  it("works with concurrency 1: one at a time over one connection", function()
    mock:service{ count = 12, prefix = "ep-" }
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
    mock:service{ count = 3, prefix = "ep-" }
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
    mock:service{ count = 30, prefix = "ep-" }
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
    mock:service{ count = 10, prefix = "ep-" }
    mock:fault{ match = { endpoint = "ep-0004" }, times = 2, answer = { status = 503, json = { error_code = "X.503", error_msg = "busy" } } }
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
    mock:service{ count = 3, prefix = "ep-" }
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
      local err = capture(vpcep.new, { endpoint = mock.url, project_id = D.project_id, token = D.token, concurrency = v })
      assert.equal("vpcep.invalid_argument", err.code, tostring(v))
    end
  end)
end)
