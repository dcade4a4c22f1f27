-- spec/number_cases.lua: numbers (and other values) a hostile or odd server
-- may write where an answer holds an integer, and what vpcep must make of
-- each. Not a spec by itself (busted only picks *_spec.lua): exact_spec.lua,
-- parse_spec.lua and hostile_spec.lua run these rows through vpcep.parse,
-- both decoding paths, real client calls and child processes.
--
-- A row is { literal, m = want, t = want, o = want }: the JSON text written
-- as a connection's marker_id (m), as total_count (t), and as a field the
-- contract does not name (o). A want is
--   "=D"     the exact integer D: a Lua integer on 5.3+; on 5.1/LuaJIT a
--            number up to 2^53 in magnitude, else the decimal string D
--            (a total_count above 2^53 is refused there instead)
--   false    refused: vpcep.bad_response
--   "f"      the double the literal reads as (tonumber), a float on 5.3+
--   "n"      that number, whatever its subtype (what the JSON library gives)
--   "s:T"    the string T
--   "null"   the JSON library's null
--   "table"  a table (unknown fields are kept as they come)
--   "bool"   the boolean the literal is
local cjson = require "cjson"

local M = {}

local big = "422321321312321321"
M.rows = {
  -- the contract's own example, and other ways to write the same integer
  { big, m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { big .. ".0", m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { big .. ".000", m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { "4.22321321312321321e17", m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { "4.22321321312321321E+17", m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { "4.22321321312321321e+17", m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { "42232132131232132.1e1", m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { "0.422321321312321321e18", m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { big .. "000e-3", m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { big .. "0E-1", m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { big .. "e0", m = "=" .. big, t = "=" .. big, o = "=" .. big },
  { "-" .. big, m = "=-" .. big, t = false, o = "=-" .. big },
  { "-4.22321321312321321e17", m = "=-" .. big, t = false, o = "=-" .. big },
  -- not integers, however close: never rounded to one
  { big .. ".5", m = false, t = false, o = "f" },
  { "4.223213213123213215e17", m = false, t = false, o = "f" },
  { "1.5", m = false, t = false, o = "f" },
  { "-1.5", m = false, t = false, o = "f" },
  { "1.0000000000000001", m = false, t = false, o = "f" },
  { "0.99999999999999999", m = false, t = false, o = "f" },
  { "1e-3", m = false, t = false, o = "f" },
  { "1E-3", m = false, t = false, o = "f" },
  { "1e-400", m = false, t = false, o = "f" },
  { "1234567890123456789e-2", m = false, t = false, o = "f" },
  -- small integers in other forms: a double holds them
  { "1e3", m = "=1000", t = "=1000", o = "f" },
  { "1E3", m = "=1000", t = "=1000", o = "f" },
  { "1e+3", m = "=1000", t = "=1000", o = "f" },
  { "1.0e3", m = "=1000", t = "=1000", o = "f" },
  { "1000.000", m = "=1000", t = "=1000", o = "f" },
  { "100e-2", m = "=1", t = "=1", o = "f" },
  { "0.000000000000000000000000001e27", m = "=1", t = "=1", o = "f" },
  { "1.", m = "=1", t = "=1", o = "f" },                -- cjson takes it; so do we, exactly
  { "0", m = "=0", t = "=0", o = "n" },
  { "0.0", m = "=0", t = "=0", o = "f" },
  { "-0", m = "=0", t = "=0", o = "n" },
  { "-0.0", m = "=0", t = "=0", o = "f" },
  { "0e10", m = "=0", t = "=0", o = "f" },
  { "-1", m = "=-1", t = false, o = "n" },
  { "7", m = "=7", t = "=7", o = "n" },
  { "999999999999999", m = "=999999999999999", t = "=999999999999999", o = "n" },
  -- around 2^53 (where 5.1/LuaJIT switch to strings) and 10^15 (where the prescan starts recording)
  { "1e15", m = "=1000000000000000", t = "=1000000000000000", o = "=1000000000000000" },
  { "1000000000000000", m = "=1000000000000000", t = "=1000000000000000", o = "=1000000000000000" },
  { "9007199254740992", m = "=9007199254740992", t = "=9007199254740992", o = "=9007199254740992" },
  { "9007199254740993", m = "=9007199254740993", t = "=9007199254740993", o = "=9007199254740993" },
  { "9.007199254740993e15", m = "=9007199254740993", t = "=9007199254740993", o = "=9007199254740993" },
  { "1e18", m = "=1000000000000000000", t = "=1000000000000000000", o = "=1000000000000000000" },
  -- the ends of 64 bits, and past them
  { "9223372036854775807", m = "=9223372036854775807", t = "=9223372036854775807", o = "=9223372036854775807" },
  { "9.223372036854775807e18", m = "=9223372036854775807", t = "=9223372036854775807", o = "=9223372036854775807" },
  { "-9223372036854775808", m = "=-9223372036854775808", t = false, o = "=-9223372036854775808" },
  { "9223372036854775808", m = false, t = false, o = "s:9223372036854775808" },
  { "-9223372036854775809", m = false, t = false, o = "s:-9223372036854775809" },
  { "123456789012345678901234567890", m = false, t = false, o = "s:123456789012345678901234567890" },
  { "9.223372036854775808e18", m = false, t = false, o = false },
  { "1e19", m = false, t = false, o = false },
  { "1.5e300", m = false, t = false, o = false },
  { "12345678901234567890.5", m = false, t = false, o = false },
  { "1e400", m = false, t = false, o = false },
  { "-1e400", m = false, t = false, o = false },
  { "1e99999999999999999999999", m = false, t = false, o = false },
  { "1e-99999999999999999999999", m = false, t = false, o = "f" },
  -- not numbers at all
  { '"123"', m = false, t = false, o = "s:123" },
  { '"' .. big .. '"', m = false, t = false, o = "s:" .. big },
  { '""', m = false, t = false, o = "s:" },
  { "true", m = false, t = false, o = "bool" },
  { "false", m = false, t = false, o = "bool" },
  { "{}", m = false, t = false, o = "table" },
  { "[]", m = false, t = false, o = "table" },
  { "[1]", m = false, t = false, o = "table" },
  { '{"a":1}', m = false, t = false, o = "table" },
  { "null", m = "null", t = "null", o = "null" },
  -- not JSON: the whole answer is refused
  { "01", m = false, t = false, o = false },
  { "1.5e", m = false, t = false, o = false },
  { "1e5-3", m = false, t = false, o = false },
  { "-", m = false, t = false, o = false },
  { "4223213213123213210-1", m = false, t = false, o = false },
  { "NaN", m = false, t = false, o = false },
  { "Infinity", m = false, t = false, o = false },
  { "0x10", m = false, t = false, o = false },
}

local HAS_INT = math.type ~= nil
local LIMIT = "9007199254740992" -- 2^53

-- |D| <= 2^53, comparing decimal texts (a double cannot)
local function within_2_53(d)
  local digits = d:gsub("^%-", "")
  return #digits < #LIMIT or (#digits == #LIMIT and digits <= LIMIT)
end

-- The want of a row for field "m", "t" or "o", with 5.1's total_count rule applied.
function M.want(row, field)
  local w = row[field]
  if field == "t" and not HAS_INT and type(w) == "string" and w:sub(1, 1) == "=" and not within_2_53(w:sub(2)) then
    return false
  end
  return w
end

-- Bodies that put the literal in that field. `general` adds an integer a
-- double cannot hold where the contract puts none, which sends the body
-- down the general decoding path.
function M.body(literal, field, general)
  local extra = general and ',"elsewhere":12345678901234567890123' or ""
  if field == "m" then
    return '{"connections":[{"id":"e1","status":"accepted","marker_id":' .. literal .. '}]' .. extra .. '}'
  elseif field == "t" then
    return '{"connections":[{"id":"e1","status":"accepted","marker_id":1}],"total_count":' .. literal .. extra .. '}'
  end
  return '{"connections":[{"id":"e1","status":"accepted","other":' .. literal .. '}]' .. extra .. '}'
end

-- The value of that field in a decoded document.
function M.value(doc, field)
  if field == "t" then return doc.total_count end
  local c = doc.connections[1]
  return field == "m" and c.marker_id or c.other
end

-- Does value v match want w for literal? Returns true, or false and why.
function M.matches(v, w, literal)
  local function show(x)
    if type(x) == "number" and HAS_INT and math.type(x) == "integer" then return string.format("integer %d", x) end
    if type(x) == "number" then return string.format("number %.17g", x) end
    return type(x) .. " " .. tostring(x)
  end
  local ok
  if w == "null" then
    ok = v == cjson.null
  elseif w == "table" then
    ok = type(v) == "table"
  elseif w == "bool" then
    ok = v == (literal == "true")
  elseif w:sub(1, 2) == "s:" then
    ok = v == w:sub(3)
  elseif w == "f" or w == "n" then
    -- (LuaJIT's tonumber gives up on a 23-digit exponent; the JSON library does not)
    local want = tonumber(literal) or cjson.decode("[" .. literal .. "]")[1]
    ok = type(v) == "number" and v == want and (w == "n" or not HAS_INT or math.type(v) == "float")
  else -- "=D"
    local d = w:sub(2)
    if HAS_INT then
      ok = math.type(v) == "integer" and string.format("%d", v) == d
    elseif within_2_53(d) then
      ok = type(v) == "number" and v == tonumber(d) and tostring(v) == tostring(tonumber(d))
    else
      ok = v == d
    end
  end
  if ok then return true end
  return false, ("%s: got %s, wanted %s"):format(literal, show(v), tostring(w))
end

-- Runs vpcep.parse on the row's body: true, or false and why.
function M.check_parse(vpcep, row, field, general)
  local literal, w = row[1], M.want(row, field)
  local ok, res = pcall(vpcep.parse, 200, M.body(literal, field, general), { ["Content-Type"] = "application/json" })
  if w == false then
    if ok then return false, ("%s: taken as %s, wanted a refusal"):format(literal, tostring(M.value(res, field))) end
    if not vpcep.is_error(res) or res.code ~= "vpcep.bad_response" then
      return false, literal .. ": wrong error " .. tostring(res)
    end
    return true
  end
  if not ok then return false, literal .. ": refused: " .. tostring(res) end
  return M.matches(M.value(res, field), w, literal)
end

return M
