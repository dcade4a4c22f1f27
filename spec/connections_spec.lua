-- spec/connections_spec.lua: client:connections(service_id, query): follows
-- offset pages to the end, returns every connection plus total_count, passes
-- filters through exactly, and refuses bad query values before sending.
local helper = require "spec.helper"

local D = helper.defaults
local LIST_PATH = "/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. D.service_id .. "/connections"
local HAS_INTEGERS = math.type ~= nil

local capture = helper.raised

local paths = helper.get_paths

describe("client:connections", function()
  local mock, c
  local hooks = helper.mock_and_client({ retries = 0 }, function(m, client) mock, c = m, client end)
  setup(hooks.setup)
  teardown(hooks.teardown)
  before_each(hooks.before_each)

  it("follows pages of 1000 over 2500 connections and returns them all with total_count", function()
    mock:seed(2500)
    local list, total = c:connections(D.service_id)
    assert.equal(2500, total)
    assert.equal(2500, #list)
    for i = 1, 2500 do
      assert.equal(string.format("ep-%04d", i - 1), list[i].id)
    end
    assert.equal("pendingAcceptance", list[1].status)
    assert.equal("d0", list[2500].domain_id)
    assert.same({
      LIST_PATH .. "?limit=1000&offset=0",
      LIST_PATH .. "?limit=1000&offset=1000",
      LIST_PATH .. "?limit=1000&offset=2000",
    }, paths(mock:log()))
  end)

  it("stops at total_count without asking for an empty page", function()
    mock:seed(2000)
    local list, total = c:connections(D.service_id)
    assert.equal(2000, #list)
    assert.equal(2000, total)
    assert.equal(2, #mock:log())
  end)

  it("with query.limit or query.offset, asks for exactly that one page, as the REST call does", function()
    mock:seed(2500)
    local list, total = c:connections(D.service_id, { limit = 300 })
    assert.equal(300, #list)
    assert.equal(2500, total)
    assert.same({ LIST_PATH .. "?limit=300&offset=0" }, paths(mock:log()))
    assert.equal("ep-0299", list[300].id)

    mock:clear_log()
    list, total = c:connections(D.service_id, { offset = 2450 })
    assert.equal(50, #list)
    assert.equal("ep-2450", list[1].id)
    assert.equal(2500, total)
    assert.same({ LIST_PATH .. "?limit=1000&offset=2450" }, paths(mock:log()))

    mock:clear_log()
    list, total = c:connections(D.service_id, { limit = 1000, offset = 2100 })
    assert.equal(400, #list)
    assert.equal("ep-2100", list[1].id)
    assert.equal(2500, total)
    assert.same({ LIST_PATH .. "?limit=1000&offset=2100" }, paths(mock:log()))
  end)

  it("asks once with limit 0 and returns no connections but the total", function()
    mock:seed(30)
    local list, total = c:connections(D.service_id, { limit = 0 })
    assert.same({}, list)
    assert.equal(30, total)
    assert.same({ LIST_PATH .. "?limit=0&offset=0" }, paths(mock:log()))
  end)

  it("returns an empty list and 0 for a service without connections", function()
    mock:service{ endpoints = {} }
    local list, total = c:connections(D.service_id)
    assert.same({}, list)
    assert.equal(0, total)
    assert.equal(1, #mock:log())
  end)

  it("passes status, id, sort_key and sort_dir through exactly", function()
    mock:seed(1200)
    local acc = {}
    for i = 1, 30 do acc[i] = string.format("ep-%04d", (i - 1) * 37) end
    c:accept(D.service_id, acc)
    mock:clear_log()

    local list, total = c:connections(D.service_id, { status = "accepted" })
    assert.equal(30, total)
    assert.equal(30, #list)
    for i = 1, 30 do
      assert.equal(acc[i], list[i].id)
      assert.equal("accepted", list[i].status)
    end
    list, total = c:connections(D.service_id, { status = "pendingAcceptance", limit = 1000 })
    assert.equal(1170, total)
    assert.equal(1000, #list)
    list, total = c:connections(D.service_id, { status = "pendingAcceptance" })
    assert.equal(1170, total)
    assert.equal(1170, #list)

    list, total = c:connections(D.service_id, { id = "ep-0037" })
    assert.equal(1, total)
    assert.equal("ep-0037", list[1].id)

    list = c:connections(D.service_id, { sort_key = "create_at", sort_dir = "desc", limit = 500 })
    assert.equal(500, #list)
    assert.equal("ep-1199", list[1].id)
    assert.equal("ep-0700", list[500].id)
    list = c:connections(D.service_id, { sort_key = "create_at", sort_dir = "desc" })
    assert.equal(1200, #list)
    assert.equal("ep-1199", list[1].id)
    assert.equal("ep-0000", list[1200].id)

    list = c:connections(D.service_id, { sort_key = "update_at", sort_dir = "asc", status = "accepted" })
    assert.equal(30, #list)

    assert.same({
      LIST_PATH .. "?status=accepted&limit=1000&offset=0",
      LIST_PATH .. "?status=pendingAcceptance&limit=1000&offset=0",
      LIST_PATH .. "?status=pendingAcceptance&limit=1000&offset=0",
      LIST_PATH .. "?status=pendingAcceptance&limit=1000&offset=1000",
      LIST_PATH .. "?id=ep-0037&limit=1000&offset=0",
      LIST_PATH .. "?sort_key=create_at&sort_dir=desc&limit=500&offset=0",
      LIST_PATH .. "?sort_key=create_at&sort_dir=desc&limit=1000&offset=0",
      LIST_PATH .. "?sort_key=create_at&sort_dir=desc&limit=1000&offset=1000",
      LIST_PATH .. "?status=accepted&sort_key=update_at&sort_dir=asc&limit=1000&offset=0",
    }, paths(mock:log()))
  end)

  it("filters on a 64-bit marker_id exactly, as an integer or a decimal string", function()
    mock:service(string.format(
      '{"project_id":"%s","service_id":"%s","endpoints":[{"id":"big","marker_id":422321321312321321},'
        .. '{"id":"small","marker_id":422321321312321320}]}',
      D.project_id, D.service_id))
    local queries = { { marker_id = "422321321312321321" } }
    if HAS_INTEGERS then queries[2] = { marker_id = math.tointeger("422321321312321321") or 422321321312321321 } end
    for _, q in ipairs(queries) do
      mock:clear_log()
      local list, total = c:connections(D.service_id, q)
      assert.equal(1, total)
      assert.equal("big", list[1].id)
      if HAS_INTEGERS then
        assert.equal("integer", math.type(list[1].marker_id))
        assert.equal("422321321312321321", string.format("%d", list[1].marker_id))
      else
        assert.equal("422321321312321321", list[1].marker_id)
      end
      assert.same({ LIST_PATH .. "?marker_id=422321321312321321&limit=1000&offset=0" }, paths(mock:log()))
    end
  end)

  it("raises the service's error, and a failing later page fails the call", function()
    local err = capture(c.connections, c, "no-such-service")
    assert.equal("EndPoint.0005", err.code)
    assert.equal(404, err.status)

    mock:seed(1500)
    mock:clear_log()
    mock:fault{ match = { path_contains = "offset=1000" }, times = 1,
      answer = { status = 403, json = { error_code = "APIGW.0302", error_msg = "page refused" } } }
    err = capture(c.connections, c, D.service_id)
    assert.equal("APIGW.0302", err.code)
    assert.equal(403, err.status)
    assert.equal("page refused", err.message)
    assert.equal(2, #mock:log())
  end)

  it("refuses a total_count above 1,000,000 at the first page, asking no more", function()
    mock:seed(5)
    mock:fault{ match = { method = "GET" }, times = 0, list_total = 1000001 }
    local err = capture(c.connections, c, D.service_id)
    assert.equal("vpcep.bad_response", err.code)
    assert.matches("1000001", err.message, 1, true)
    assert.equal(1, #mock:log())
    -- a total that fetches nothing more (limit 0) is only reported
    mock:clear_log()
    local list, total = c:connections(D.service_id, { limit = 0 })
    assert.same({}, list)
    assert.equal(1000001, total)
    assert.equal(1, #mock:log())
    -- 1,000,000 itself is taken (and the empty page after the real ones ends the walk)
    mock:clear_faults()
    mock:clear_log()
    mock:fault{ match = { method = "GET" }, times = 0, list_total = 1000000 }
    list, total = c:connections(D.service_id)
    assert.equal(5, #list)
    assert.equal(1000000, total)
    assert.equal(2, #mock:log())
  end)

  it("ends with vpcep.bad_response at a page that brings no connection not already listed", function()
    mock:seed(2500)
    -- the service repeats its first two pages for ever, promising more
    mock:fault{ match = { method = "GET" }, times = 0, list_cycle = 2, list_total = 999999 }
    local err = capture(c.connections, c, D.service_id)
    assert.equal("vpcep.bad_response", err.code)
    assert.matches("offset 2000", err.message, 1, true)
    assert.same({ LIST_PATH .. "?limit=1000&offset=0", LIST_PATH .. "?limit=1000&offset=1000",
                  LIST_PATH .. "?limit=1000&offset=2000" }, paths(mock:log()))
  end)

  it("lists a connection that comes again on a later page once", function()
    mock:faults{
      { match = { path_contains = "offset=0" }, times = 0,
        answer = { json = { connections = { { id = "a" }, { id = "b" } }, total_count = 5 } } },
      { match = { path_contains = "offset=2" }, times = 0,
        answer = { json = { connections = { { id = "b" }, { id = "c" } }, total_count = 5 } } },
      { match = { path_contains = "offset=4" }, times = 0,
        answer = { json = { connections = { { id = "d" }, { id = "d" } }, total_count = 5 } } },
    }
    local list, total = c:connections(D.service_id)
    assert.equal(5, total)
    assert.equal(4, #list)
    for i, id in ipairs({ "a", "b", "c", "d" }) do assert.equal(id, list[i].id) end
    assert.equal(3, #mock:log())
  end)

  it("gives the whole listing `timeout`, not each page", function()
    -- 40 pages of one connection each (the service gives short pages and
    -- promises more), 20 ms each: 0.8 s at the least
    mock:seed(1)
    mock:fault{ match = { method = "GET" }, times = 40, delay_ms = 20, list_endless = 1 }
    local slow = helper.client(mock, { retries = 0, timeout = 0.3 })
    local err = capture(slow.connections, slow, D.service_id)
    slow:close()
    assert.equal("vpcep.timeout", err.code)
    assert.is_true(err.retryable)
    assert.matches("listing", err.message, 1, true)
    local asked, done = #mock:log(), tonumber(err.message:match("(%d+) pages"))
    assert.is_true(asked > 1 and asked < 40, asked .. " pages")
    -- the pages it had, less the one the deadline cut short (if it did)
    assert.is_true(done == asked or done == asked - 1, err.message)
  end)

  it("refuses every bad query value with invalid_argument, sending nothing", function()
    mock:seed(3)
    local bad = {
      { status = "bogus" }, { status = "ACCEPTED" }, { status = "" }, { status = 1 }, { status = true },
      { sort_key = "created_at" }, { sort_key = "name" }, { sort_key = 1 },
      { sort_dir = "ASC" }, { sort_dir = "up" }, { sort_dir = {} },
      { limit = -1 }, { limit = 1001 }, { limit = 1.5 }, { limit = "10" }, { limit = 0 / 0 }, { limit = math.huge },
      { offset = -1 }, { offset = 2147483648 }, { offset = 0.5 }, { offset = "0" },
      { id = "" }, { id = string.rep("e", 65) }, { id = "a/b" }, { id = "a b" }, { id = ".." }, { id = 7 },
      { marker_id = "abc" }, { marker_id = "" }, { marker_id = "-" }, { marker_id = "1.5" }, { marker_id = 1.5 },
      { marker_id = string.rep("1", 21) }, { marker_id = true },
      { nope = 1 }, { limit = 10, extra = "x" }, { [1] = "status" }, { Status = "accepted" },
    }
    for i, q in ipairs(bad) do
      local err = capture(c.connections, c, D.service_id, q)
      assert.equal("vpcep.invalid_argument", err.code, "case " .. i)
      assert.is_string(err.message)
    end
    for _, q in ipairs({ "status=accepted", 42, true }) do
      assert.equal("vpcep.invalid_argument", capture(c.connections, c, D.service_id, q).code)
    end
    for _, sid in ipairs({ "", "a/b", string.rep("s", 65), 5 }) do
      assert.equal("vpcep.invalid_argument", capture(c.connections, c, sid).code)
    end
    assert.equal(0, #mock:log())
  end)

  it("accepts the edges of every range", function()
    mock:seed(1)
    local good = {
      { limit = 1000 }, { limit = 1 }, { offset = 2147483647 }, { offset = 0 },
      { id = string.rep("e", 64) }, { marker_id = "-1" }, { marker_id = 0 },
      { status = "creating" }, { status = "rejected" }, { status = "failed" }, { status = "deleting" },
      { sort_dir = "asc" }, { sort_key = "update_at" },
    }
    for i, q in ipairs(good) do
      local ok, list, total = pcall(c.connections, c, D.service_id, q)
      assert.is_true(ok, "case " .. i .. ": " .. tostring(list))
      assert.is_table(list)
      assert.is_number(total)
    end
    assert.equal(#good, #mock:log())
  end)
end)
