-- spec/reentry_spec.lua: a client called again, or closed, from inside one
-- of its own calls (a debug hook here; a finaliser can do the same). The
-- inner call gets an error object and the outer call ends as if nothing
-- happened; a close waits for the end of the call. Then the client's kept
-- request state must be as good as new.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local D = helper.defaults

-- Runs fn once from a call hook, at the first call that the method's own
-- code makes (building or settling a request): `method` (c.accept, ...)
-- two or more frames below the function being called.
local function from_inside(method, fn)
  local fired = false
  debug.sethook(function()
    if fired then return end
    for level = 4, 40 do
      local info = debug.getinfo(level, "f")
      if info == nil then return end
      if info.func == method then
        fired = true
        debug.sethook()
        fn()
        return
      end
    end
  end, "c")
  return function()
    debug.sethook()
    return fired
  end
end

-- The client userdata somewhere on the stack (a one-shot call's is a C
-- temporary of vpcep.accept's frame).
local function client_on_stack()
  for level = 2, 40 do
    if debug.getinfo(level, "f") == nil then return nil end
    for i = 1, 60 do
      local name, v = debug.getlocal(level, i)
      if name == nil then break end
      if type(v) == "userdata" and tostring(v):match("^vpcep%.client") then return v end
    end
  end
end

describe("a client used from inside its own call", function()
  local mock

  -- n pending endpoints whose answers take the general decoder (an escaped
  -- description: the one-pass decoder of src/quick.c calls no Lua, so no
  -- hook would run inside the call), which calls lua-cjson from the call
  local function seed(n)
    local eps = {}
    for i, id in ipairs(helper.ids(n)) do eps[i] = { id = id, description = "line one\nline " .. i } end
    mock:service { endpoints = eps }
    return helper.ids(n)
  end

  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function() mock:reset() end)

  it("refuses a second call with an error object; the first ends normally", function()
    local ids = seed(2)
    local c = helper.client(mock, { retries = 0 })
    local inner_ok, inner_err
    local stop = from_inside(c.accept, function()
      inner_ok, inner_err = pcall(c.accept, c, D.service_id, ids[2])
    end)
    local res = c:accept(D.service_id, ids[1])
    assert.is_true(stop(), "the hook never ran inside the call")
    assert.is_false(inner_ok)
    assert.are.equal("vpcep.invalid_argument", inner_err.code)
    assert.matches("busy", inner_err.message, 1, true)
    assert.are.equal(ids[1], res[1].id)
    assert.are.equal("accepted", res[1].status)
    -- only the outer request reached the server
    local actions = 0
    for _, e in ipairs(mock:log()) do
      if e.method == "POST" then actions = actions + 1 end
    end
    assert.are.equal(1, actions)
    -- and the client goes on as before
    assert.are.equal(ids[2], c:accept(D.service_id, ids[2])[1].id)
    c:close()
  end)

  it("gives nil, err for it on a safe client", function()
    local ids = seed(1)
    local c = vpcep.safe.new(helper.client_opts(mock, { retries = 0 }))
    local r1, r2
    local stop = from_inside(c.reject, function()
      r1, r2 = c:connections(D.service_id)
    end)
    local res, err = c:reject(D.service_id, ids[1])
    assert.is_true(stop(), "the hook never ran inside the call")
    assert.is_nil(err)
    assert.are.equal("rejected", res[1].status)
    assert.is_nil(r1)
    assert.are.equal("vpcep.invalid_argument", r2.code)
    c:close()
  end)

  it("closes the client only when the running call has ended", function()
    local ids = seed(1)
    local c = helper.client(mock, { retries = 0 })
    local stop = from_inside(c.accept, function() c:close() end)
    local res = c:accept(D.service_id, ids[1])
    assert.is_true(stop(), "the hook never ran inside the call")
    assert.are.equal("accepted", res[1].status)
    local err = helper.raised(c.accept, c, D.service_id, ids[1])
    assert.are.equal("vpcep.invalid_argument", err.code)
    assert.matches("closed", err.message, 1, true)
    assert.matches("closed", tostring(c), 1, true)
    c:close() -- again: nothing left to do
  end)

  it("closes it after a call that raised, too", function()
    seed(1)
    local c = helper.client(mock, { retries = 0 })
    local stop = from_inside(c.accept, function() c:close() end)
    local err = helper.raised(c.accept, c, D.service_id, "ep-nobody")
    assert.is_true(stop(), "the hook never ran inside the call")
    assert.are.equal(404, err.status)
    assert.matches("closed", helper.raised(c.prepare, c, "receive", D.service_id, "ep-1").message, 1, true)
  end)

  it("builds each request afresh after calls that failed, listed or prepared", function()
    local ids = seed(3)
    local c = helper.client(mock, { retries = 0 })
    local want = c:prepare("receive", D.service_id, ids[1])
    assert.are.equal(404, helper.raised(c.accept, c, D.service_id, "ep-nobody").status)
    local all = c:connections(D.service_id, { limit = 2 })
    assert.are.equal(2, #all)
    all = c:connections(D.service_id)
    assert.are.equal(3, #all)
    local got = c:prepare("receive", D.service_id, ids[1])
    assert.are.same(want, got)
    assert.are.equal('{"action":"reject","endpoints":["' .. ids[2] .. '"]}',
                     c:prepare("reject", D.service_id, ids[2]).body)
    assert.are.equal(ids[3], c:accept(D.service_id, ids[3])[1].id)
    local last = mock:log()
    last = last[#last]
    assert.are.equal("POST", last.method)
    assert.are.equal(want.url:match("^https?://[^/]+(/.*)$"), last.path)
    assert.are.equal('{"action":"receive","endpoints":["' .. ids[3] .. '"]}', last.body)
    c:close()
  end)

  it("guards a one-shot call's client the same way", function()
    local ids = seed(2)
    local inner_ok, inner_err, closed
    local stop = from_inside(vpcep.accept, function()
      local c = assert(client_on_stack(), "no client on the stack")
      inner_ok, inner_err = pcall(c.accept, c, D.service_id, ids[2])
      c:close() -- waits for the call; the one-shot frees it after
      closed = true
    end)
    local res = vpcep.accept(helper.client_opts(mock, { service_id = D.service_id, endpoints = ids[1] }))
    assert.is_true(stop(), "the hook never ran inside the call")
    assert.is_true(closed)
    assert.is_false(inner_ok)
    assert.matches("busy", inner_err.message, 1, true)
    assert.are.equal(ids[1], res[1].id)
    assert.are.equal("accepted", res[1].status)
  end)

  it("hands out no method that skips the guard", function()
    local c = helper.client(mock)
    for _, m in ipairs { "accept", "reject", "connections", "prepare" } do
      local _, up = debug.getupvalue(c[m], 1)
      assert.are_not.equal("function", type(up), m)
    end
    c:close()
  end)
end)
