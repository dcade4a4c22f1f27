-- spec/shared_client_cases.lua: the accept/reject cases every auth mode must
-- pass. Not a spec by itself (busted only picks *_spec.lua); a spec calls it
-- inside its own describe:
--
--   local cases = require "spec.shared_client_cases"
--   describe("with AK/SK", function()
--     cases(make_client, function() return mock end, { auth = { token = json.null } })
--   end)
--
-- make_client(extra) -> client, opts: a client of the mock, made with the
--   auth mode under test; `extra` (may be nil) holds more options to merge;
--   `opts` is the full option table it used (the one-shot cases reuse it).
-- mock_getter() -> the running mock (spec/helper.lua), started by the caller.
-- hooks (optional): { auth = {...} } is given to mock:auth after each reset,
--   so a caller can switch off the other credential and prove which one is
--   used.
local helper = require "spec.helper"
local vpcep = require "vpcep"
-- busted gives its DSL to spec files only; a required module takes it here.
local busted = require "busted"
local describe, it, before_each = busted.describe, busted.it, busted.before_each
local assert = busted.assert or assert

local D = helper.defaults
local SID = D.service_id

return function(make_client, mock_getter, hooks)
  hooks = hooks or {}
  local mock

  local function seed(extra)
    local eps = { { id = "e1" }, { id = "e2" }, { id = "e3" }, { id = "e4" }, { id = "e5" } }
    for _, e in ipairs(extra or {}) do eps[#eps + 1] = e end
    mock:service { endpoints = eps }
  end

  local pcall_err = helper.raised

  -- the API requests the mock saw (control calls are not logged)
  local function api_log()
    return mock:log()
  end

  local function copy(t)
    local o = {}
    for k, v in pairs(t) do o[k] = v end
    return o
  end

  before_each(function()
    mock = mock_getter()
    mock:reset()
    if hooks.auth then mock:auth(hooks.auth) end
    seed()
  end)

  describe("accept and reject", function()
    it("accepts a single id, returning its connection", function()
      local c = make_client()
      local before = mock:by_id()
      local conns = c:accept(SID, "e2")
      assert.are.equal(1, #conns)
      assert.are.equal("e2", conns[1].id)
      assert.are.equal("accepted", conns[1].status)
      assert.are.equal(before.e2.marker_id, conns[1].marker_id)
      assert.are.equal(before.e2.created_at, conns[1].created_at)
      assert.are.equal(1, #api_log())
      c:close()
    end)

    it("rejects a single id", function()
      local c = make_client()
      local conns = c:reject(SID, "e3")
      assert.are.equal(1, #conns)
      assert.are.equal("e3", conns[1].id)
      assert.are.equal("rejected", conns[1].status)
      assert.are.equal("rejected", mock:by_id().e3.status)
      c:close()
    end)

    it("makes the change visible in the service's state, and only for the given id", function()
      local c = make_client()
      local before = mock:by_id()
      c:accept(SID, "e1")
      local after = mock:by_id()
      assert.are.equal("pendingAcceptance", before.e1.status)
      assert.are.equal("accepted", after.e1.status)
      assert.are_not.equal(before.e1.updated_at, after.e1.updated_at)
      for _, id in ipairs { "e2", "e3", "e4", "e5" } do
        assert.are.equal("pendingAcceptance", after[id].status, id)
        assert.are.equal(before[id].updated_at, after[id].updated_at, id)
      end
      c:reject(SID, "e1")
      assert.are.equal("rejected", mock:by_id().e1.status)
      c:close()
    end)

    it("takes an array, one request per id, results in the order given", function()
      local c = make_client()
      local order = { "e4", "e1", "e5", "e2" }
      local conns = c:accept(SID, order)
      assert.are.equal(#order, #conns)
      for i, id in ipairs(order) do
        assert.are.equal(id, conns[i].id)
        assert.are.equal("accepted", conns[i].status)
      end
      local log = api_log()
      assert.are.equal(#order, #log)
      local seen = {}
      for _, r in ipairs(log) do
        assert.are.equal("POST", r.method)
        local doc = helper.json.decode(r.body)
        assert.are.equal("receive", doc.action)
        assert.are.equal(1, #doc.endpoints)
        seen[doc.endpoints[1]] = (seen[doc.endpoints[1]] or 0) + 1
      end
      for _, id in ipairs(order) do assert.are.equal(1, seen[id], id) end
      local st = mock:by_id()
      for _, id in ipairs(order) do assert.are.equal("accepted", st[id].status, id) end
      assert.are.equal("pendingAcceptance", st.e3.status)
      c:close()
    end)

    it("rejects an array in order", function()
      local c = make_client()
      local conns = c:reject(SID, { "e3", "e2" })
      assert.are.same({ "e3", "e2" }, { conns[1].id, conns[2].id })
      assert.are.same({ "rejected", "rejected" }, { conns[1].status, conns[2].status })
      local st = mock:by_id()
      assert.are.equal("rejected", st.e3.status)
      assert.are.equal("rejected", st.e2.status)
      assert.are.equal("pendingAcceptance", st.e1.status)
      c:close()
    end)

    it("a bulk call with one unknown id raises, with every result in input order", function()
      local c = make_client()
      local err = pcall_err(c.accept, c, SID, { "e1", "nope", "e2" })
      assert.is_table(err.results)
      assert.are.equal(3, #err.results)
      assert.are.equal("e1", err.results[1].id)
      assert.are.equal("accepted", err.results[1].status)
      assert.is_true(vpcep.is_error(err.results[2]))
      assert.are.equal("EndPoint.0005", err.results[2].code)
      assert.are.equal(404, err.results[2].status)
      assert.are.equal("nope", err.results[2].endpoint)
      assert.are.equal("e2", err.results[3].id)
      assert.are.equal("accepted", err.results[3].status)
      -- the others were still done
      local st = mock:by_id()
      assert.are.equal("accepted", st.e1.status)
      assert.are.equal("accepted", st.e2.status)
      c:close()
    end)
  end)

  describe("errors", function()
    it("an unknown endpoint is a 404 EndPoint.0005 with the request id, not retried", function()
      local c = make_client()
      local err = pcall_err(c.accept, c, SID, "nope")
      assert.are.equal("EndPoint.0005", err.code)
      assert.are.equal(404, err.status)
      assert.are.equal("nope", err.endpoint)
      assert.is_string(err.request_id)
      assert.matches("^%x+$", err.request_id)
      assert.are.equal(32, #err.request_id)
      assert.truthy(tostring(err):find(err.request_id, 1, true))
      assert.truthy(tostring(err):find("404 EndPoint.0005", 1, true))
      assert.is_falsy(err.retryable)
      assert.are.equal(1, #api_log())
      c:close()
    end)

    it("an unknown service is a 404 too", function()
      local c = make_client()
      local err = pcall_err(c.reject, c, "no-such-service", "e1")
      assert.are.equal("EndPoint.0005", err.code)
      assert.are.equal(404, err.status)
      assert.are.equal("pendingAcceptance", mock:by_id().e1.status)
      c:close()
    end)

    it("a 200 answer with status failed raises vpcep.connection_failed with the connection", function()
      seed { { id = "bad", fail_with = { error_code = "EndPoint.0139", error_message = "quota exceeded" } } }
      local c = make_client()
      local err = pcall_err(c.accept, c, SID, "bad")
      assert.are.equal("vpcep.connection_failed", err.code)
      assert.are.equal("bad", err.endpoint)
      assert.is_table(err.connection)
      assert.are.equal("bad", err.connection.id)
      assert.are.equal("failed", err.connection.status)
      assert.are.equal("EndPoint.0139", err.connection.error[1].error_code)
      assert.truthy(err.message:find("EndPoint.0139", 1, true))
      assert.truthy(err.message:find("quota exceeded", 1, true))
      assert.are.equal("failed", mock:by_id().bad.status)
      c:close()
    end)
  end)

  describe("connections", function()
    it("lists every connection with total_count, in the service's order", function()
      local c = make_client()
      local list, total = c:connections(SID)
      assert.are.equal(5, total)
      assert.are.equal(5, #list)
      for i = 1, 5 do assert.are.equal("e" .. i, list[i].id) end
      c:close()
    end)

    it("sees a change made by accept, and passes the query", function()
      local c = make_client()
      c:accept(SID, { "e2", "e4" })
      local list, total = c:connections(SID, { status = "accepted" })
      assert.are.equal(2, total)
      assert.are.same({ "e2", "e4" }, { list[1].id, list[2].id })
      local one = c:connections(SID, { id = "e4" })
      assert.are.equal(1, #one)
      assert.are.equal("accepted", one[1].status)
      c:close()
    end)

    it("follows pages to the end", function()
      mock:service { endpoints = {}, count = 2007, prefix = "p-" }
      local c = make_client()
      local list, total = c:connections(SID)
      assert.are.equal(2007, total)
      assert.are.equal(2007, #list)
      for i = 1, 2007 do assert.are.equal(string.format("p-%04d", i - 1), list[i].id) end
      local gets = 0
      for _, r in ipairs(api_log()) do
        if r.method == "GET" then gets = gets + 1 end
      end
      assert.are.equal(3, gets)
      c:close()
    end)
  end)

  describe("one-shot functions with the same credentials", function()
    it("vpcep.accept", function()
      local c0, opts = make_client()
      c0:close()
      local o = copy(opts)
      o.service_id = SID
      o.endpoints = { "e5", "e1" }
      local conns = vpcep.accept(o)
      assert.are.same({ "e5", "e1" }, { conns[1].id, conns[2].id })
      assert.are.same({ "accepted", "accepted" }, { conns[1].status, conns[2].status })
      assert.are.equal("accepted", mock:by_id().e5.status)
    end)

    it("vpcep.reject", function()
      local c0, opts = make_client()
      c0:close()
      local o = copy(opts)
      o.service_id = SID
      o.endpoints = "e3"
      local conns = vpcep.reject(o)
      assert.are.equal(1, #conns)
      assert.are.equal("rejected", conns[1].status)
      assert.are.equal("rejected", mock:by_id().e3.status)
    end)

    it("vpcep.reject raises the same 404 error for an unknown id", function()
      local c0, opts = make_client()
      c0:close()
      local o = copy(opts)
      o.service_id = SID
      o.endpoints = { "nope" }
      local err = pcall_err(vpcep.reject, o)
      assert.are.equal("EndPoint.0005", err.code)
      assert.are.equal(404, err.status)
      assert.is_string(err.request_id)
    end)
  end)
end
