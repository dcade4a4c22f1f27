-- spec/wait_spec.lua: opts.wait on accept/reject: poll the list call (?id=)
-- until no connection is creating/pendingAcceptance; vpcep.timeout naming the
-- pending ones when the time runs out.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local D = helper.defaults
local LIST_PATH = "/v1/" .. D.project_id .. "/vpc-endpoint-services/" .. D.service_id .. "/connections"
local ACTION_PATH = LIST_PATH .. "/action"

local capture = helper.raised

local function ids_of(n) return helper.ids(n) end

-- How many list calls asked for each id, and how many actions were sent.
local function tally(log)
  local polls, actions = {}, 0
  for _, e in ipairs(log) do
    if e.path == ACTION_PATH then
      actions = actions + 1
    else
      assert.equal("GET", e.method)
      local id = e.path:match("^" .. LIST_PATH:gsub("%-", "%%-") .. "%?id=([^&]+)")
      assert.is_string(id, e.path)
      polls[id] = (polls[id] or 0) + 1
    end
  end
  return polls, actions
end

describe("opts.wait", function()
  local mock, c

  setup(function()
    mock = helper.start()
    c = helper.client(mock, { retries = 0, concurrency = 4 })
  end)
  teardown(function()
    c:close()
    mock:stop()
  end)
  before_each(function() mock:reset() end)

  it("returns the connections once they are accepted", function()
    mock:seed(6)
    mock:config{ transition_ms = 300 }
    local ids = ids_of(6)
    -- without wait, the answer says creating
    local first = c:accept(D.service_id, { ids[1] })
    assert.equal("creating", first[1].status)
    mock:clear_log()
    local res = c:accept(D.service_id, { ids[2], ids[3], ids[4], ids[5], ids[6] }, { wait = 5 })
    assert.equal(5, #res)
    for i = 1, 5 do
      assert.equal(ids[i + 1], res[i].id)
      assert.equal("accepted", res[i].status)
    end
    local polls, actions = tally(mock:log())
    assert.equal(5, actions)
    for i = 2, 6 do
      assert.is_true((polls[ids[i]] or 0) >= 1, ids[i] .. " was never polled")
    end
    assert.is_nil(polls[ids[1]])
  end)

  it("does not poll when nothing is pending", function()
    mock:seed(3)
    mock:config{ transition_ms = 300 }
    local res = c:reject(D.service_id, ids_of(3), { wait = 5 })
    assert.equal("rejected", res[3].status)
    local polls, actions = tally(mock:log())
    assert.equal(3, actions)
    assert.is_nil(next(polls))
  end)

  it("wait = 0 means not waiting", function()
    mock:seed(2)
    mock:config{ transition_ms = 300 }
    local res = c:accept(D.service_id, ids_of(2), { wait = 0 })
    assert.equal("creating", res[1].status)
    assert.equal(2, #mock:log())
  end)

  it("raises vpcep.timeout naming the endpoints still pending, with err.results", function()
    mock:service{ endpoints = { { id = "ep-a" }, { id = "ep-b" }, { id = "ep-c" } } }
    mock:config{ transition_ms = 60000 }
    -- ep-b is answered as accepted at once: it must be neither polled nor named
    mock:fault{ match = { method = "POST", endpoint = "ep-b" }, times = 1,
      answer = { status = 200, json = { connections = { { id = "ep-b", status = "accepted" } } } } }
    local input = { "ep-a", "ep-b", "ep-c" }
    local err = capture(c.accept, c, D.service_id, input, { wait = 0.3 })
    assert.equal("vpcep.timeout", err.code)
    assert.matches("ep-a", err.message, 1, true)
    assert.matches("ep-c", err.message, 1, true)
    assert.matches("2 endpoint", err.message, 1, true)
    assert.is_table(err.results)
    assert.equal(3, #err.results)
    assert.is_nil(err.message:find("ep-b", 1, true))
    for i = 1, 3 do
      assert.is_false(vpcep.is_error(err.results[i]))
      assert.equal(input[i], err.results[i].id)
      assert.equal(i == 2 and "accepted" or "creating", err.results[i].status)
    end
    local polls = tally(mock:log())
    assert.is_true(polls["ep-a"] >= 1)
    assert.is_true(polls["ep-c"] >= 1)
    assert.is_nil(polls["ep-b"])
    assert.is_nil(tostring(err):find(D.token, 1, true))
  end)

  it("names only the ones still pending when some settled in time", function()
    mock:seed(4)
    mock:config{ transition_ms = 200 }
    -- ep-0002's action is answered "creating" but the server never moves it:
    -- it stays pendingAcceptance however often it is polled
    mock:fault{ match = { method = "POST", endpoint = "ep-0002" }, times = 1,
      answer = { status = 200, json = { connections = { { id = "ep-0002", status = "creating" } } } } }
    local err = capture(c.accept, c, D.service_id, ids_of(4), { wait = 1.5 })
    assert.equal("vpcep.timeout", err.code)
    assert.matches("1 endpoint", err.message, 1, true)
    assert.matches("ep-0002", err.message, 1, true)
    for _, other in ipairs({ "ep-0000", "ep-0001", "ep-0003" }) do
      assert.is_nil(err.message:find(other, 1, true), other)
    end
    assert.equal("accepted", err.results[1].status)
    assert.equal("accepted", err.results[4].status)
    assert.equal("pendingAcceptance", err.results[3].status)
  end)

  it("caps the list of names in a long timeout message", function()
    mock:seed(25)
    mock:config{ transition_ms = 60000 }
    local err = capture(c.accept, c, D.service_id, ids_of(25), { wait = 0.2 })
    assert.equal("vpcep.timeout", err.code)
    assert.matches("25 endpoint", err.message, 1, true)
    assert.matches("ep-0000", err.message, 1, true)
    assert.matches("...", err.message, 1, true)
    assert.is_nil(err.message:find("ep-0024", 1, true))
    assert.equal(25, #err.results)
  end)

  it("turns a connection that ends up failed into vpcep.connection_failed", function()
    mock:service{ endpoints = { { id = "ok" },
      { id = "bad", fail_with = { error_code = "EndPoint.1234", error_message = "quota exceeded" } } } }
    mock:config{ transition_ms = 200 }
    local err = capture(c.accept, c, D.service_id, { "ok", "bad" }, { wait = 5 })
    assert.equal("vpcep.connection_failed", err.code)
    assert.equal("bad", err.endpoint)
    assert.equal(1, err.failed)
    assert.equal("accepted", err.results[1].status)
    assert.is_true(vpcep.is_error(err.results[2]))
    assert.equal("failed", err.results[2].connection.status)
  end)

  it("reports a poll that fails as that endpoint's error", function()
    mock:seed(2)
    mock:config{ transition_ms = 60000 }
    mock:fault{ match = { method = "GET", endpoint = "ep-0001" }, times = 0,
      answer = { status = 403, json = { error_code = "APIGW.0302", error_msg = "no listing" } } }
    local err = capture(c.accept, c, D.service_id, ids_of(2), { wait = 0.5 })
    assert.is_table(err.results)
    assert.is_true(vpcep.is_error(err.results[2]))
    assert.equal("APIGW.0302", err.results[2].code)
    assert.equal("ep-0001", err.results[2].endpoint)
  end)

  it("takes a poll answer about another endpoint as that endpoint's vpcep.bad_response, not its state", function()
    mock:seed(2)
    mock:config{ transition_ms = 200 }
    -- ep-0001's polls are answered with ep-0000, accepted
    mock:fault{ match = { method = "GET", endpoint = "ep-0001" }, times = 0,
      answer = { status = 200, json = { connections = { { id = "ep-0000", status = "accepted" } } } } }
    local err = capture(c.accept, c, D.service_id, ids_of(2), { wait = 5 })
    assert.equal("vpcep.bad_response", err.code)
    assert.equal("ep-0001", err.endpoint)
    assert.equal(1, err.failed)
    assert.equal("ep-0000", err.results[1].id)
    assert.equal("accepted", err.results[1].status)
    assert.is_true(vpcep.is_error(err.results[2]))
    assert.equal("ep-0001", err.results[2].endpoint)
    assert.matches("ep-0000", err.results[2].message, 1, true)
    assert.equal(1, tally(mock:log())["ep-0001"])
  end)

  it("does not take a stale poll answer left on the connection", function()
    mock:seed(1)
    mock:config{ transition_ms = 60000 }
    -- the first poll's answer (creating) is followed, 100 ms later, by one
    -- nobody asked for that says accepted
    mock:fault{ match = { method = "GET" }, times = 1,
      extra = { status = 200, json = { connections = { { id = "ep-0000", status = "accepted" } } } } }
    local err = capture(c.accept, c, D.service_id, ids_of(1), { wait = 1.2 })
    assert.equal("vpcep.timeout", err.code)
    assert.equal("creating", err.results[1].status)
    local polls = tally(mock:log())
    assert.is_true(polls["ep-0000"] >= 2, "polled " .. tostring(polls["ep-0000"]) .. " times")
    assert.equal(1, mock:extra_sent())
  end)

  it("refuses a bad opts.wait before sending anything", function()
    mock:seed(1)
    for _, w in ipairs({ -1, -0.001, 86401, math.huge, 0 / 0, "5", true, {} }) do
      local err = capture(c.accept, c, D.service_id, { "ep-0000" }, { wait = w })
      assert.equal("vpcep.invalid_argument", err.code, tostring(w))
      assert.matches("wait", err.message, 1, true)
    end
    assert.equal("vpcep.invalid_argument", capture(c.reject, c, D.service_id, "ep-0000", { wait = "x" }).code)
    assert.equal(0, #mock:log())
    assert.equal("pendingAcceptance", mock:by_id()["ep-0000"].status)
  end)

  it("works through the one-shot functions too", function()
    mock:seed(2)
    mock:config{ transition_ms = 200 }
    local res = vpcep.accept { endpoint = mock.url, project_id = D.project_id, token = D.token,
      service_id = D.service_id, endpoints = ids_of(2), wait = 5 }
    assert.equal("accepted", res[1].status)
    assert.equal("accepted", res[2].status)
    local err = capture(vpcep.accept, { endpoint = mock.url, project_id = D.project_id, token = D.token,
      service_id = D.service_id, endpoints = ids_of(2), wait = -3 })
    assert.equal("vpcep.invalid_argument", err.code)
  end)
end)
