-- spec/quick_spec.lua: the quick decoder (src/quick.c) against the general
-- path (lua-cjson and the exact-integer passes of src/exact.c), through
-- vpcep.parse. Each body is parsed as it is, and again with the last
-- letter of a key escaped ("connection\u0073"): the same document to
-- any JSON reader, but the escape sends it down the general path (the
-- quick decoder takes nothing escaped). Both must give the same value
-- (same tables, keys, strings; numbers of the same subtype) or both refuse
-- it with the same error code. spec/fuzz/fuzz_quick.c does the same in C.
package.path = "./?.lua;" .. package.path
local vpcep = require "vpcep"
local cases = require "spec.number_cases"

local HAS_INT = math.type ~= nil
local JSON = { ["Content-Type"] = "application/json" }

-- (Not marker_id or total_count: the general path finds those two by
-- their bytes, so escaped they would not be the same document to it.)
local function general_body(body)
  local done = false
  local s = body:gsub('"([%w_]-)(%w)"(%s*):', function(k, last, w)
    if done or k .. last == "marker_id" or k .. last == "total_count" then return nil end
    done = true
    return ('"%s\\u%04x"%s:'):format(k, last:byte(), w)
  end)
  assert(done, "body without a key to escape: " .. body)
  return s
end

local function same(a, b, path)
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if HAS_INT and math.type(a) ~= math.type(b) then
      return false, path .. ": " .. math.type(a) .. " vs " .. math.type(b)
    end
    if a ~= b and not (a ~= a and b ~= b) then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return true
  end
  if type(a) ~= "table" then
    if a ~= b then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return true
  end
  if getmetatable(a) ~= getmetatable(b) then return false, path .. ": metatables differ" end
  for k, v in pairs(a) do
    local ok, why = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": only on the general path" end
  end
  return true
end

-- Parses body both ways; true, or false and why they differ.
local function both_ways(body)
  local ok1, r1 = pcall(vpcep.parse, 200, body, JSON)
  local ok2, r2 = pcall(vpcep.parse, 200, general_body(body), JSON)
  if ok1 ~= ok2 then
    return false, ("one path refused, the other did not (%s / %s)"):format(tostring(r1), tostring(r2))
  end
  if not ok1 then
    if not (vpcep.is_error(r1) and vpcep.is_error(r2)) then return false, "a refusal is not an error object" end
    if r1.code ~= r2.code then return false, "codes " .. r1.code .. " / " .. r2.code end
    return true, "refused"
  end
  return same(r1, r2, "doc")
end

-- A small deterministic generator: the same bodies on every run.
local seed = 12345
local function rand(n)
  seed = seed * 16807 % 2147483647 -- exact in a double too (5.1, LuaJIT)
  return seed % n + 1
end
local function pick(t) return t[rand(#t)] end

local strings = { '""', '"ep-0001"', '"accepted"', '"2024-01-01T00:00:00Z"',
  '"h\195\169 \226\130\172 \240\159\152\128"', '"a\\"b"', '"tab\\t"',
  '"\\u00e9"', '"\127"', '"\1"', '"\255"', '"\192\175"', '"' .. ("x"):rep(300) .. '"' }
local others = { "true", "false", "null", "[]", "{}", '[{"error_code":"E","error_message":"m"}]', "1", "1.5",
  '{"a":1}' }
local keys = { "id", "status", "created_at", "updated_at", "domain_id", "description", "marker_id", "error",
  "other", "id" }
local spaces = { "", " ", "\n", "\t ", "\r\n" }
local function literal() return pick(cases.rows)[1] end

local function member(kind)
  local k = pick(keys)
  local v
  if k == "marker_id" then
    v = rand(4) == 1 and pick(strings) or literal()
  elseif kind == "plain" or rand(6) > 1 then
    v = pick(strings)
  else
    v = rand(2) == 1 and pick(others) or literal()
  end
  local w = pick(spaces)
  return w .. '"' .. k .. '"' .. w .. ":" .. w .. v .. w
end

local function connection(kind)
  local m = { member(kind), '"marker_id":' .. literal() }
  if rand(8) > 1 then m[#m + 1] = '"id":' .. pick({ '"ep-1"', '"ep-2"' }) end
  for _ = 1, rand(7) - 1 do m[#m + 1] = member(kind) end
  for i = #m, 2, -1 do local j = rand(i); m[i], m[j] = m[j], m[i] end
  return "{" .. table.concat(m, ",") .. "}"
end

local function body(kind)
  local conns = {}
  for _ = 1, rand(4) == 1 and rand(20) or 1 do conns[#conns + 1] = connection(kind) end
  local top = { rand(10) > 1 and '"connections":[' .. table.concat(conns, ",") .. "]" or '"request_id":"r"' }
  if rand(3) == 1 then top[#top + 1] = '"total_count":' .. literal() end
  if rand(4) == 1 then top[#top + 1] = '"request_id":' .. pick(strings) end
  if rand(8) == 1 then top[#top + 1] = '"connections":[' .. connection(kind) .. "]" end
  for i = #top, 2, -1 do local j = rand(i); top[i], top[j] = top[j], top[i] end
  return pick(spaces) .. "{" .. table.concat(top, ",") .. "}" .. pick(spaces)
end

describe("the quick decoder and the general path", function()
  it("read the bench's answer alike, with the exact 64-bit marker_id", function()
    local b = '{"connections":[{"id":"ep-0001","marker_id":422321321312321321,"created_at":"2024-01-01T00:00:00Z",'
      .. '"updated_at":"2024-01-01T00:00:01Z","domain_id":"6e9dfd51d1124e8d8498dce894923a0d","status":"accepted",'
      .. '"description":""}]}'
    local ok, why = both_ways(b)
    assert.is_true(ok, why)
    local doc = vpcep.parse(200, b, JSON)
    if HAS_INT then
      assert.are.equal("integer", math.type(doc.connections[1].marker_id))
      assert.are.equal("422321321312321321", string.format("%d", doc.connections[1].marker_id))
    else
      assert.are.equal("422321321312321321", doc.connections[1].marker_id)
    end
  end)

  it("agree on every number form of spec/number_cases.lua, in marker_id, total_count and elsewhere", function()
    for _, row in ipairs(cases.rows) do
      for _, field in ipairs({ "m", "t", "o" }) do
        local ok, why = both_ways(cases.body(row[1], field, false))
        assert.is_true(ok, ("%s as %s: %s"):format(row[1], field, tostring(why)))
      end
    end
  end)

  it("agree on the extreme 64-bit values and just beyond them", function()
    for _, lit in ipairs({ "9223372036854775807", "-9223372036854775808", "9223372036854775808",
                           "-9223372036854775809", "18446744073709551616", "0", "-0", "9007199254740993" }) do
      for _, field in ipairs({ "m", "t" }) do
        local ok, why = both_ways(cases.body(lit, field, false))
        assert.is_true(ok, ("%s as %s: %s"):format(lit, field, tostring(why)))
      end
    end
  end)

  it("agree on 3,000 generated answers, plain ones and odd ones", function()
    local taken, refused = 0, 0
    for i = 1, 3000 do
      local b = body(i % 2 == 0 and "plain" or "odd")
      local ok, why = both_ways(b)
      assert.is_true(ok, ("%s\n  body: %s"):format(tostring(why), b))
      if why == "refused" then refused = refused + 1 else taken = taken + 1 end
    end
    -- both kinds occur, so the comparison covered both outcomes
    assert.is_true(taken > 200, "taken " .. taken)
    assert.is_true(refused > 300, "refused " .. refused)
  end)

  it("agree on answers cut short at every byte", function()
    local b = '{"connections":[{"id":"ep-1","marker_id":422321321312321321,"status":"accepted"}],"total_count":1}'
    for n = 16, #b - 1 do
      local cut = b:sub(1, n)
      local ok1 = pcall(vpcep.parse, 200, cut, JSON)
      assert.is_false(ok1, cut)
      assert.is_true((both_ways(cut)), cut)
    end
  end)
end)
