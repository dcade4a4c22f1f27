-- Exact integers in answers: the fast path (big integers only where the
-- contract puts them) and the general path (anywhere else) give the same
-- exact values; nothing a double would round is ever returned rounded.
local vpcep = require "vpcep"

local INTS = _VERSION ~= "Lua 5.1" and math.type ~= nil
local function exact(text)          -- what the contract promises for a decimal literal
  if INTS then return math.tointeger(tonumber(text)) or load("return " .. text)() end
  -- above 2^53 (compared as text: a double cannot) the decimal string
  local digits = text:gsub("^%-", "")
  local limit = "9007199254740992"
  if #digits < #limit or (#digits == #limit and digits <= limit) then return tonumber(text) end
  return text
end

local function conn(id, marker) return ('{"id":"%s","status":"accepted","marker_id":%s}'):format(id, marker) end
local function doc(body) return vpcep.parse(200, body, { ["Content-Type"] = "application/json" }) end

describe("exact integers", function()
  it("keeps many big marker_ids exact, in order (fast path)", function()
    local parts, want = {}, {}
    for i = 1, 300 do
      local m = ("422321321312321%03d"):format(i)
      parts[i], want[i] = conn("e" .. i, m), m
    end
    local d = doc('{"connections":[' .. table.concat(parts, ",") .. '],"total_count":1000000000000001}')
    for i = 1, 300 do assert.are.equal(exact(want[i]), d.connections[i].marker_id) end
    assert.are.equal(exact("1000000000000001"), d.total_count)
  end)

  it("keeps a big integer exact in an unknown field too (general path)", function()
    local d = doc('{"connections":[{"id":"e","marker_id":422321321312321321,"extra":{"n":1234567890123456789}}],'
      .. '"big":-9223372036854775807}')
    assert.are.equal(exact("422321321312321321"), d.connections[1].marker_id)
    assert.are.equal(exact("1234567890123456789"), d.connections[1].extra.n)
    assert.are.equal(exact("-9223372036854775807"), d.big)
  end)

  it("handles a marker_id outside the connections array", function()
    local d = doc('{"other":[{"marker_id":422321321312321322}],"connections":[' .. conn("a", "422321321312321321")
      .. ']}')
    assert.are.equal(exact("422321321312321321"), d.connections[1].marker_id)
    assert.are.equal(exact("422321321312321322"), d.other[1].marker_id)
  end)

  it("takes the last of duplicate keys, exactly, as the decoder does", function()
    local d = doc('{"connections":[{"id":"a","marker_id":422321321312321321,"marker_id":422321321312321999},'
      .. conn("b", "422321321312321555") .. ']}')
    assert.are.equal(exact("422321321312321999"), d.connections[1].marker_id)
    assert.are.equal(exact("422321321312321555"), d.connections[2].marker_id)
    d = doc('{"connections":[{"id":"a","marker_id":422321321312321321,"marker_id":5},'
      .. conn("b", "422321321312321555") .. ']}')
    assert.are.equal(exact("5"), d.connections[1].marker_id)
    assert.are.equal(exact("422321321312321555"), d.connections[2].marker_id)
  end)

  it("keeps marker_ids next to small ones and negative ones", function()
    local d = doc('{"connections":[' .. conn("a", "7") .. "," .. conn("b", "-422321321312321321") .. ","
      .. conn("c", "9007199254740992") .. "," .. conn("d", "9007199254740993") .. ']}')
    assert.are.equal(exact("7"), d.connections[1].marker_id)
    assert.are.equal(exact("-422321321312321321"), d.connections[2].marker_id)
    assert.are.equal(exact("9007199254740992"), d.connections[3].marker_id)
    assert.are.equal(exact("9007199254740993"), d.connections[4].marker_id)
    if INTS then assert.are.equal("integer", math.type(d.connections[1].marker_id)) end
  end)

  it("gives an integer beyond 64 bits as its decimal text outside marker_id, never rounded", function()
    local d = doc('{"connections":[{"id":"a","n":123456789012345678901234567890}]}')
    assert.are.equal("123456789012345678901234567890", d.connections[1].n)
  end)

  it("refuses a marker_id beyond 64 bits (the contract says 64-bit)", function()
    for _, m in ipairs({ "123456789012345678901234567890", "9223372036854775808", "-9223372036854775809" }) do
      local ok, err = pcall(doc, '{"connections":[' .. conn("a", m) .. ']}')
      assert.is_false(ok, m)
      assert.are.equal("vpcep.bad_response", err.code, m)
      assert.matches("marker_id", err.message)
    end
  end)

  it("leaves digits inside strings alone", function()
    local d = doc('{"connections":[{"id":"a","description":"4223213213123213210000 \\" 4223213213123213210000",'
      .. '"marker_id":1}]}')
    assert.are.equal('4223213213123213210000 " 4223213213123213210000', d.connections[1].description)
  end)

  it("keeps a big marker_id exact in any form among many (the recorded values stay in order)", function()
    local parts, want = {}, {}
    for i = 1, 40 do
      local m = ("422321321312321%03d"):format(i)
      local lit = m
      if i % 3 == 1 then lit = m:sub(1, 1) .. "." .. m:sub(2) .. "e17" end   -- 4.22321321312321001e17
      if i % 3 == 2 then lit = m .. ".0" end
      parts[i], want[i] = conn("e" .. i, lit), m
    end
    local d = doc('{"connections":[' .. table.concat(parts, ",") .. '],"total_count":4.0e1}')
    for i = 1, 40 do assert.are.equal(exact(want[i]), d.connections[i].marker_id, i) end
    assert.are.equal(exact("40"), d.total_count)
  end)

  it("refuses one marker_id that is no integer among many, wherever it stands", function()
    for _, bad in ipairs({ "1.5", "1.0000000000000001", "422321321312321321.5", '"422321321312321321"', "1e400" }) do
      for _, at in ipairs({ 1, 17, 40 }) do
        local parts = {}
        for i = 1, 40 do parts[i] = conn("e" .. i, i == at and bad or ("422321321312321%03d"):format(i)) end
        local ok, err = pcall(doc, '{"connections":[' .. table.concat(parts, ",") .. ']}')
        assert.is_false(ok, bad .. " at " .. at)
        assert.are.equal("vpcep.bad_response", err.code)
        assert.matches("marker_id", err.message)
      end
    end
  end)

  it("judges the value the decoder keeps of duplicate keys", function()
    local twice = doc('{"connections":[{"id":"a","marker_id":1.5,"marker_id":5}]}')
    assert.are.equal(exact("5"), twice.connections[1].marker_id)
    assert.are.equal(exact("422321321312321321"),
      doc('{"connections":[{"id":"a","marker_id":"x","marker_id":4.22321321312321321e17}]}').connections[1].marker_id)
    assert.is_false(pcall(doc, '{"connections":[{"id":"a","marker_id":5,"marker_id":1.5}]}'))
    assert.is_false(pcall(doc, '{"connections":[{"id":"a","marker_id":422321321312321321,"marker_id":"7"}]}'))
    assert.is_false(pcall(doc, '{"connections":[],"total_count":3,"total_count":1e-3}'))
  end)

  it("leaves marker_id and total_count alone where the contract does not put them", function()
    local d = doc('{"connections":[{"id":"a","sub":{"marker_id":1.5,"total_count":"x"}}],'
      .. '"other":[{"marker_id":1.0000000000000001}],"more":{"total_count":-1}}')
    assert.are.equal(1.5, d.connections[1].sub.marker_id)
    assert.are.equal("x", d.connections[1].sub.total_count)
    assert.are.equal(1.0, d.other[1].marker_id)
    assert.are.equal(-1, d.more.total_count)
  end)

  it("names a byte order mark as such", function()
    local ok, err = pcall(doc, '\239\187\191{"connections":[]}')
    assert.is_false(ok)
    assert.are.equal("vpcep.bad_response", err.code)
    assert.matches("byte order mark", err.message)
    ok, err = pcall(doc, '{"connections":[{"id":"\239\187\191e"}]}')   -- inside a string it is text
    assert.is_true(ok, tostring(err))
  end)

  it("refuses a body with the marker byte or invalid UTF-8 in a string", function()
    for _, body in ipairs({ '{"connections":[{"id":"\255422"}]}', '{"connections":[{"id":"\192\128"}]}',
                            '{"connections":[{"id":"a\0b"}]}' }) do
      local ok, err = pcall(doc, body)
      assert.is_false(ok)
      assert.are.equal("vpcep.bad_response", err.code)
    end
  end)

  describe("every form of number (spec/number_cases.lua)", function()
    local cases = require "spec.number_cases"
    for _, row in ipairs(cases.rows) do
      it(row[1]:sub(1, 40) .. " in marker_id, total_count and elsewhere, on both decoding paths", function()
        for _, field in ipairs({ "m", "t", "o" }) do
          for _, general in ipairs({ false, true }) do
            local ok, why = cases.check_parse(vpcep, row, field, general)
            assert.is_true(ok, ("%s (%s, %s path)"):format(tostring(why), field, general and "general" or "fast"))
          end
        end
      end)
    end
  end)
end)
