-- spec/sign_spec.lua: vpcep.sign, the SDK-HMAC-SHA256 signer.
--
-- Expected values come from three places, never from hand-made numbers:
--  * the five published vectors (official SDKs' own tests, API.md);
--  * spec/mock/sdk_signer.py, an independent Python implementation, called
--    through io.popen for every request below marked "python" and for a few
--    hundred random requests;
--  * equivalences that hold by the canonicalisation rules (e.g. "/a" signs
--    like "/a/"), for the cases where no absolute value is needed.
local vpcep = require "vpcep"
local helper = require "spec.helper"

local PYTHON = "/usr/bin/python3"
local SIGNER_DIR = "spec/mock"

local AK, SK = "AccessKey", "SecretKey"
local DATE = "20240101T000000Z"

local function auth(req, cred)
  return vpcep.sign(req, cred or { ak = AK, sk = SK, date = DATE }).Authorization
end

local function get(url, headers, body, method)
  return { method = method or "GET", url = url, headers = headers or {}, body = body }
end

local function sig_of(a)
  return a:match("Signature=(%x+)$")
end

local function signed_of(a)
  return a:match("SignedHeaders=([^,]+),")
end

-- The error raised by f, which must be a vpcep.invalid_argument object.
local einval = helper.einval

---------------------------------------------------------------------------
-- The independent Python signer, fed through a temporary file.

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function have_python()
  local f = io.open(PYTHON, "r")
  if f then f:close() end
  local g = io.open(SIGNER_DIR .. "/sdk_signer.py", "r")
  if g then g:close() end
  return f ~= nil and g ~= nil
end

local PY_DRIVER = [[
import sys
sys.path.insert(0, sys.argv[1])
import sdk_signer
def unhex(s):
    return b"" if s == "-" else bytes.fromhex(s)
for line in open(sys.argv[2]):
    f = line.split()
    if not f:
        continue
    method, path, query, hdrs, body, ak, sk, date = f
    date = None if date == "-" else date  # then taken from X-Sdk-Date
    headers = []
    if hdrs != "-":
        for kv in hdrs.split(","):
            k, v = kv.split(":")
            headers.append((unhex(k).decode("latin-1"), unhex(v).decode("latin-1")))
    # the signer re-encodes a str path/query as UTF-8; header values go
    # into the canonical request as latin-1, so both keep their bytes
    print(sdk_signer.sign(method, unhex(path).decode("utf-8"), unhex(query).decode("utf-8"),
                          headers, unhex(body), ak, unhex(sk), date))
]]

local function h(s) return s == "" and "-" or hex(s) end

-- cases: array of { method, path, query, headers = {{k, v}, ...}, body, ak, sk, date }
-- Returns the Authorization the Python signer computes for each.
local function python_sign(cases)
  local tmp = os.tmpname()
  local drv = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  for _, c in ipairs(cases) do
    local hs = {}
    for _, kv in ipairs(c.headers) do hs[#hs + 1] = h(kv[1]) .. ":" .. h(kv[2]) end
    f:write(table.concat({ c.method, h(c.path), h(c.query), #hs > 0 and table.concat(hs, ",") or "-",
      h(c.body or ""), c.ak, h(c.sk), c.date or "-" }, " "), "\n")
  end
  f:close()
  local d = assert(io.open(drv, "wb"))
  d:write(PY_DRIVER)
  d:close()
  local p = assert(io.popen(PYTHON .. " " .. drv .. " " .. SIGNER_DIR .. " " .. tmp))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  os.remove(tmp)
  os.remove(drv)
  assert.are.equal(#cases, #out)
  return out
end

-- A case for python_sign from a request as vpcep.sign takes it.
local function case_of(req, cred)
  local path, query = req.url:match("^https?://[^/?#]+([^?#]*)%??([^#]*)")
  local headers, names = {}, {}
  for k in pairs(req.headers) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do headers[#headers + 1] = { k, req.headers[k] } end
  if cred.security_token then headers[#headers + 1] = { "X-Security-Token", cred.security_token } end
  return { method = req.method, path = path, query = query, headers = headers, body = req.body,
           ak = cred.ak, sk = cred.sk, date = cred.date }
end

-- Asserts vpcep.sign agrees with the Python signer on every request.
local function agree(reqs, cred)
  cred = cred or { ak = AK, sk = SK, date = DATE }
  local cases = {}
  for i, r in ipairs(reqs) do cases[i] = case_of(r, r.cred or cred) end
  local want = python_sign(cases)
  for i, r in ipairs(reqs) do
    assert.are.equal(want[i], auth(r, r.cred or cred), "request " .. i .. ": " .. r.url)
  end
end

---------------------------------------------------------------------------

describe("vpcep.sign", function()
  describe("published vectors", function()
    it("1: GET with a query", function()
      assert.are.equal("SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, " ..
        "Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624",
        vpcep.sign(get("https://example.huaweicloud.com/path?limit=1", { ["X-Sdk-Date"] = "20060102T150405Z" }, ""),
          { ak = AK, sk = SK }).Authorization)
    end)

    it("2: POST with a body", function()
      local req = get("https://example.huaweicloud.com/path?key=value", { ["X-Sdk-Date"] = "20060102T150405Z" },
        '{"Name":"test","Id":1}\n', "POST")
      assert.are.equal("SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, " ..
        "Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59",
        vpcep.sign(req, { ak = AK, sk = SK }).Authorization)
    end)

    it("3: GET with Host", function()
      local req = get("https://service.endpoint.myhuaweicloud.com/resources?size=1",
        { Host = "service.endpoint.myhuaweicloud.com", ["X-Sdk-Date"] = "20200608T023900Z" })
      assert.are.equal("SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, " ..
        "Signature=cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842",
        vpcep.sign(req, { ak = AK, sk = SK }).Authorization)
    end)

    it("4: POST with Host and a body", function()
      local req = get("https://service.endpoint.myhuaweicloud.com/resources?size=1",
        { Host = "service.endpoint.myhuaweicloud.com", ["X-Sdk-Date"] = "20200608T023900Z" },
        '{"name":"test","id":1}', "POST")
      assert.are.equal("SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, " ..
        "Signature=436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f",
        vpcep.sign(req, { ak = AK, sk = SK }).Authorization)
    end)

    it("5: a VPC list call", function()
      local req = get("https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs" ..
        "?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
        { ["Content-Type"] = "application/json", Host = "service.region.example.com",
          ["X-Sdk-Date"] = "20191115T033655Z" })
      assert.are.equal("SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, " ..
        "Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
        vpcep.sign(req, { ak = "QTWAOYTTINDUT2QVKYUC", sk = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc" })
          .Authorization)
    end)

    it("the same with the date given in cred instead of the header", function()
      local a = vpcep.sign(get("https://example.huaweicloud.com/path?limit=1"),
        { ak = AK, sk = SK, date = "20060102T150405Z" })
      assert.are.equal("5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624", sig_of(a.Authorization))
      assert.are.equal("20060102T150405Z", a["X-Sdk-Date"])
    end)
  end)

  describe("the returned table", function()
    it("is a new table: a copy of the headers plus X-Sdk-Date and Authorization", function()
      local hs = { ["Content-Type"] = "application/json", ["X-Project-Id"] = "p1" }
      local req = get("https://h.example.com/v1", hs)
      local out = vpcep.sign(req, { ak = AK, sk = SK, date = DATE })
      assert.are_not.equal(hs, out)
      assert.are.same({ ["Content-Type"] = "application/json", ["X-Project-Id"] = "p1" }, hs)
      assert.are.equal("application/json", out["Content-Type"])
      assert.are.equal("p1", out["X-Project-Id"])
      assert.are.equal(DATE, out["X-Sdk-Date"])
      assert.matches("^SDK%-HMAC%-SHA256 Access=AccessKey, SignedHeaders=content%-type;x%-project%-id;x%-sdk%-date, " ..
        "Signature=%x+$", out.Authorization)
      assert.are.equal(64, #sig_of(out.Authorization))
      local n = 0
      for _ in pairs(out) do n = n + 1 end
      assert.are.equal(4, n)
    end)

    it("does not add Host", function()
      local out = vpcep.sign(get("https://h.example.com/v1"), { ak = AK, sk = SK, date = DATE })
      assert.is_nil(out.Host)
      assert.is_nil(out.host)
      assert.are.equal("x-sdk-date", signed_of(out.Authorization))
    end)

    it("accepts a request without headers and without body", function()
      local out = vpcep.sign({ method = "GET", url = "https://h.example.com" }, { ak = AK, sk = SK, date = DATE })
      assert.are.equal(DATE, out["X-Sdk-Date"])
      assert.are.equal(auth(get("https://h.example.com/", {}, "")), out.Authorization)
    end)

    it("holds one X-Sdk-Date whatever its case in the request", function()
      local out = vpcep.sign(get("https://h.example.com/", { ["x-sdk-DATE"] = "20200101T000000Z" }),
        { ak = AK, sk = SK, date = DATE })
      local n = 0
      for k, v in pairs(out) do
        if k:lower() == "x-sdk-date" then n = n + 1; assert.are.equal(DATE, v) end
      end
      assert.are.equal(1, n)
    end)

    it("replaces an Authorization already there, and does not sign it", function()
      local a = vpcep.sign(get("https://h.example.com/", { authorization = "old" }), { ak = AK, sk = SK, date = DATE })
      assert.is_nil(a.authorization)
      assert.are.equal(auth(get("https://h.example.com/")), a.Authorization)
    end)
  end)

  describe("date", function()
    it("comes from cred.date first", function()
      local out = vpcep.sign(get("https://h.example.com/", { ["X-Sdk-Date"] = "20200101T000000Z" }),
        { ak = AK, sk = SK, date = DATE })
      assert.are.equal(DATE, out["X-Sdk-Date"])
      assert.are.equal(auth(get("https://h.example.com/")), out.Authorization)
    end)

    it("then from an X-Sdk-Date header, in any case", function()
      local out = vpcep.sign(get("https://h.example.com/", { ["X-SDK-DATE"] = DATE }), { ak = AK, sk = SK })
      assert.are.equal(DATE, out["X-SDK-DATE"])
      assert.are.equal(auth(get("https://h.example.com/")), out.Authorization)
    end)

    it("else now, in UTC", function()
      local before = os.time()
      local out = vpcep.sign(get("https://h.example.com/"), { ak = AK, sk = SK })
      local d = out["X-Sdk-Date"]
      assert.matches("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ$", d)
      local t = { year = tonumber(d:sub(1, 4)), month = tonumber(d:sub(5, 6)), day = tonumber(d:sub(7, 8)),
                  hour = tonumber(d:sub(10, 11)), min = tonumber(d:sub(12, 13)), sec = tonumber(d:sub(14, 15)) }
      -- os.time reads t as local time; the UTC offset of now corrects that.
      local now = os.time()
      local offset = os.time(os.date("!*t", now)) - now
      local secs = os.time(t) - offset
      assert.is_true(math.abs(secs - before) <= 60, "date " .. d .. " is not now")
      assert.are.equal(auth(get("https://h.example.com/"), { ak = AK, sk = SK, date = d }), out.Authorization)
    end)

    it("is validated strictly", function()
      for _, d in ipairs({ "", "2024-01-01T00:00:00Z", "20240101T000000", "20240101t000000Z",
        "20240101T000000z", "20241301T000000Z", "20240230T000000Z", "20230229T000000Z", "20240100T000000Z",
        "20240101T240000Z", "20240101T006000Z", "20240101T000060Z", "2024010 T000000Z", "20240101T000000Z ",
        "+2024101T000000Z" }) do
        einval(function() vpcep.sign(get("https://h.example.com/"), { ak = AK, sk = SK, date = d }) end)
        einval(function() vpcep.sign(get("https://h.example.com/", { ["X-Sdk-Date"] = d }), { ak = AK, sk = SK }) end)
      end
      -- a leap day is a real date
      assert.is_string(auth(get("https://h.example.com/"), { ak = AK, sk = SK, date = "20240229T235959Z" }))
      assert.is_string(auth(get("https://h.example.com/"), { ak = AK, sk = SK, date = "20000229T000000Z" }))
      einval(function() auth(get("https://h.example.com/"), { ak = AK, sk = SK, date = "19000229T000000Z" }) end)
    end)
  end)

  describe("security token", function()
    it("is added as X-Security-Token and signed", function()
      local cred = { ak = AK, sk = SK, date = DATE, security_token = "tok-123" }
      local out = vpcep.sign(get("https://h.example.com/v1"), cred)
      assert.are.equal("tok-123", out["X-Security-Token"])
      assert.are.equal("x-sdk-date;x-security-token", signed_of(out.Authorization))
      assert.are.equal(auth(get("https://h.example.com/v1", { ["X-Security-Token"] = "tok-123" })), out.Authorization)
    end)

    it("replaces a token already in the headers, keeping one entry", function()
      local out = vpcep.sign(get("https://h.example.com/v1", { ["x-security-token"] = "old" }),
        { ak = AK, sk = SK, date = DATE, security_token = "new" })
      assert.are.equal("new", out["x-security-token"])
      assert.is_nil(out["X-Security-Token"])
    end)
  end)

  describe("canonicalisation (equivalences)", function()
    local function same(u1, u2, h1, h2)
      assert.are.equal(auth(get(u1, h1)), auth(get(u2, h2)), u1 .. " vs " .. u2)
    end
    local function differ(u1, u2)
      assert.are_not.equal(auth(get(u1)), auth(get(u2)), u1 .. " vs " .. u2)
    end

    it("appends a trailing slash; an empty path is /", function()
      same("https://h.example.com/a/b", "https://h.example.com/a/b/")
      same("https://h.example.com", "https://h.example.com/")
      same("https://h.example.com?x=1", "https://h.example.com/?x=1")
      differ("https://h.example.com/a", "https://h.example.com/a//")
    end)

    it("decodes and re-encodes path segments", function()
      same("https://h.example.com/a~b-c_d.e", "https://h.example.com/%61%7E%62%2d%63%5F%64%2E%65")
      same("https://h.example.com/a%3ab", "https://h.example.com/a:b")
      same("https://h.example.com/%E4%B8%AD", "https://h.example.com/\228\184\173")
      -- %2F is a separator once decoded, as in the official signers
      same("https://h.example.com/a%2Fb", "https://h.example.com/a/b")
      differ("https://h.example.com/a%20b", "https://h.example.com/a+b")
    end)

    it("ignores the port, the host and a fragment", function()
      same("https://h.example.com:8443/a?x=1#frag", "http://other.example.com/a?x=1")
    end)

    it("sorts the query by key, then value, keeping repeated keys", function()
      same("https://h.example.com/?b=2&a=1&a=0", "https://h.example.com/?a=0&a=1&b=2")
      differ("https://h.example.com/?a=0&a=1", "https://h.example.com/?a=1")
      same("https://h.example.com/?a&b=", "https://h.example.com/?b&a=")
      same("https://h.example.com/?a=1&&b=2&", "https://h.example.com/?a=1&b=2")
      same("https://h.example.com/?=x&a=1", "https://h.example.com/?a=1")
    end)

    it("decodes the query and writes spaces as %20; '+' stays a plus", function()
      same("https://h.example.com/?q=a%20b", "https://h.example.com/?q=a%20b")
      same("https://h.example.com/?q=a+b", "https://h.example.com/?q=a%2Bb")
      differ("https://h.example.com/?q=a+b", "https://h.example.com/?q=a%20b")
      same("https://h.example.com/?q=%7e", "https://h.example.com/?q=~")
      same("https://h.example.com/?q=a=b", "https://h.example.com/?q=a%3Db")
      -- everything after the first '?' is the query, a second '?' included
      same("https://h.example.com/??a=1", "https://h.example.com/?%3Fa=1")
    end)

    it("lower-cases, trims and sorts headers", function()
      same("https://h.example.com/", "https://h.example.com/", { ["X-B"] = "  v  ", ["x-a"] = "\tw" },
        { ["x-b"] = "v", ["X-A"] = "w" })
      local out = vpcep.sign(get("https://h.example.com/", { ["X-B"] = " v", ["x-a"] = "w", Zeta = "z" }),
        { ak = AK, sk = SK, date = DATE })
      assert.are.equal("x-a;x-b;x-sdk-date;zeta", signed_of(out.Authorization))
      assert.are.equal(" v", out["X-B"]) -- the copy keeps the value as given
    end)

    it("skips header names with '_' but copies them", function()
      local out = vpcep.sign(get("https://h.example.com/", { X_Custom = "1", ["X-A"] = "2" }),
        { ak = AK, sk = SK, date = DATE })
      assert.are.equal("x-a;x-sdk-date", signed_of(out.Authorization))
      assert.are.equal("1", out.X_Custom)
      assert.are.equal(auth(get("https://h.example.com/", { ["X-A"] = "2" })), out.Authorization)
    end)

    it("hashes the body as bytes", function()
      local a = auth(get("https://h.example.com/", {}, "a\0b", "POST"))
      local b = auth(get("https://h.example.com/", {}, "a\0c", "POST"))
      local c = auth(get("https://h.example.com/", {}, "a", "POST"))
      assert.are_not.equal(a, b)
      assert.are_not.equal(a, c)
      assert.are.equal(auth(get("https://h.example.com/", {}, nil, "POST")),
        auth(get("https://h.example.com/", {}, "", "POST")))
    end)
  end)

  describe("agrees with the independent Python signer", function()
    local py = have_python()
    local function pit(name, f)
      if py then it(name, f) else pending(name .. " (no python3 or spec/mock/sdk_signer.py)") end
    end

    pit("on one request for each rule", function()
      local R = "!*'();:@&=+$,/?#[]"
      agree({
        get("https://h.example.com/v1/p/vpc-endpoint-services/s/connections/action", {}, '{"action":"receive"}',
          "POST"),
        get("https://h.example.com/a/b"),
        get("https://h.example.com/a/b/"),
        get("https://h.example.com"),
        get("https://h.example.com/%7Euser/a%20b/%E4%B8%AD%E6%96%87/x.y_z-w"),
        get("https://h.example.com/\228\184\173/\195\169"),
        get("https://h.example.com/a:b@c!d$e&f'g(h)i*j+k,l;m=n"),
        get("https://h.example.com/?b=2&a=1&a=0&c=&d"),
        get("https://h.example.com/?B=1&a=1&_=2&~=3&-=4"),
        get("https://h.example.com/?q=a%20b&r=a+b&s=%2B&t=%zz&u=%4"),
        get("https://h.example.com/?k=" .. R:gsub(".", function(c)
          return string.format("%%%02X", c:byte()) end)),
        get("https://h.example.com/?k=!*'();:@$,/?[]"),
        get("https://h.example.com/?name=\228\184\173\230\150\135&x=%C3%A9"),
        get("https://h.example.com/?limit=10&offset=0&sort_key=create_at&sort_dir=desc&status=accepted"),
        get("https://h.example.com/", { ["X-B"] = "  v  ", ["x-a"] = "\tw", Host = "h.example.com" }),
        get("https://h.example.com/", { X_Skip = "1", ["Content-Type"] = "application/json" }),
        get("https://h.example.com/", { ["X-Value"] = "a  b\tc", ["X-Utf8"] = "\195\169t\195\169" }),
        get("https://h.example.com/", {}, "a\0b\255\n", "PUT"),
        get("https://h.example.com/", { ["X-Security-Token"] = "tok" }, nil, "DELETE"),
      })
    end)

    pit("with a security token", function()
      local r = get("https://h.example.com/v1/x?y=1", { ["X-Project-Id"] = "p" })
      r.cred = { ak = "MYAK", sk = "my secret sk", date = "20191231T235959Z", security_token = "sec.tok-en" }
      agree({ r })
    end)

    pit("when the date comes from the request's X-Sdk-Date header", function()
      local reqs = {}
      for i, name in ipairs({ "X-Sdk-Date", "x-sdk-date", "X-SDK-DATE" }) do
        local r = get("https://h.example.com/v1/x?k=" .. i, { [name] = "2024010" .. i .. "T235959Z", ["X-A"] = "a" })
        r.cred = { ak = AK, sk = SK }
        reqs[i] = r
      end
      agree(reqs)
    end)

    -- Past a few KiB the signer's scratch moves from the stack to the heap;
    -- past 16 headers vpcep.sign reads them into a userdata, and so the
    -- Authorization past 512 bytes.
    pit("on large requests", function()
      local many, long = {}, {}
      for i = 1, 40 do many["X-Header-" .. i] = "value " .. i end
      for i = 1, 8 do long["X-" .. string.rep(string.char(96 + i), 90)] = string.rep("v", 200) end
      local q = {}
      for i = 1, 400 do q[i] = "k" .. (i % 37) .. "=%E4%B8%AD" .. i end
      local body = string.rep("{\"a\":\"\0\255\"}", 8000)
      agree({
        get("https://h.example.com/v1/" .. string.rep("seg/", 1500) .. "end", {}),
        get("https://h.example.com/?" .. table.concat(q, "&"), many),
        get("https://h.example.com/big", long, body, "POST"),
        get("https://h.example.com/" .. string.rep("%41%2a", 2000) .. "?" .. table.concat(q, "&"), many, body, "PUT"),
      })
    end)

    pit("on 300 random requests", function()
      math.randomseed(20240101)
      local function pick(t) return t[math.random(#t)] end
      local seg_chars = { "a", "Z", "0", "-", "_", ".", "~", "!", "*", "'", "(", ")", ";", ":", "@", "&",
        "=", "+", "$", ",", "[", "]", "%20", "%41", "%7e", "%25", "%zz", "%", "%E4%B8%AD", "\195\169", "%FF" }
      local q_chars = { "a", "B", "9", "-", "_", ".", "~", "!", "*", "'", "(", ")", ";", ":", "@", "$", ",",
        "/", "?", "[", "]", "+", "%2B", "%20", "%26", "%3D", "%23", "%00", "%zz", "%", "\228\184\173", "%E9" }
      local function str(chars, max)
        local t = {}
        for i = 1, math.random(0, max) do t[i] = pick(chars) end
        return table.concat(t)
      end
      local reqs = {}
      for n = 1, 300 do
        local segs = {}
        for i = 1, math.random(0, 4) do segs[i] = str(seg_chars, 6) end
        local path = #segs > 0 and "/" .. table.concat(segs, "/") or ""
        if math.random(3) == 1 then path = path .. "/" end
        local pairs_ = {}
        for i = 1, math.random(0, 5) do
          local k = str(q_chars, 4)
          pairs_[i] = math.random(4) == 1 and k or (k .. "=" .. str(q_chars, 5))
          if math.random(4) == 1 and i > 1 then pairs_[i] = pairs_[i - 1] end
        end
        local url = "https://h" .. n .. ".example.com" .. path
        -- the Python signer strips a leading '?' off the query it is given
        if #pairs_ > 0 then url = url .. "?x" .. table.concat(pairs_, "&") end
        if math.random(5) == 1 then url = url .. "#frag" end
        local headers = {}
        for i = 1, math.random(0, 4) do
          local name = pick({ "X-A", "x-b", "Content-Type", "X_Under", "Host", "X-Project-Id", "Accept" }) .. i
          headers[name] = pick({ "", " ", "v", "  spaced  ", "\ttab", "a b", "\195\169", "x;y=z" })
        end
        local body = math.random(2) == 1 and "" or str({ "{", "}", "\0", "\n", "a", "\255", " " }, 20)
        local r = get(url, headers, body, pick({ "GET", "POST", "PUT", "DELETE", "PATCH" }))
        r.cred = { ak = "AK" .. n, sk = "SK-" .. n .. "/+=", date = string.format("2024%02d%02dT%02d%02d%02dZ",
          math.random(12), math.random(28), math.random(0, 23), math.random(0, 59), math.random(0, 59)),
          security_token = math.random(3) == 1 and ("tok" .. n) or nil }
        reqs[n] = r
      end
      agree(reqs)
    end)
  end)

  describe("bad input", function()
    local good = function() return get("https://h.example.com/v1?x=1", { ["X-A"] = "1" }, "b", "POST") end
    local cred = function() return { ak = AK, sk = SK, date = DATE } end

    it("refuses a malformed request", function()
      local cases = {
        function() return nil end,
        function() return "GET https://h/" end,
        function() local r = good(); r.method = nil; return r end,
        function() local r = good(); r.method = "get"; return r end,
        function() local r = good(); r.method = ""; return r end,
        function() local r = good(); r.method = "GE T"; return r end,
        function() local r = good(); r.method = 1; return r end,
        function() local r = good(); r.url = nil; return r end,
        function() local r = good(); r.url = "ftp://h/"; return r end,
        function() local r = good(); r.url = "h.example.com/v1"; return r end,
        function() local r = good(); r.url = "https://"; return r end,
        function() local r = good(); r.url = "https:///path"; return r end,
        function() local r = good(); r.url = "https://:443/path"; return r end,
        function() local r = good(); r.url = "https://h/a b"; return r end,
        function() local r = good(); r.url = "https://h/a\nb"; return r end,
        function() local r = good(); r.url = "https://h/a\0b"; return r end,
        function() local r = good(); r.headers = "X-A: 1"; return r end,
        function() local r = good(); r.headers = { "X-A: 1" }; return r end,
        function() local r = good(); r.headers = { ["X-A"] = 1 }; return r end,
        function() local r = good(); r.headers = { ["X-A"] = true }; return r end,
        function() local r = good(); r.headers = { ["X A"] = "1" }; return r end,
        function() local r = good(); r.headers = { [""] = "1" }; return r end,
        function() local r = good(); r.headers = { ["X-A:"] = "1" }; return r end,
        function() local r = good(); r.headers = { ["X-A"] = "1\r\nX-B: 2" }; return r end,
        function() local r = good(); r.headers = { ["X-A"] = "1\n" }; return r end,
        function() local r = good(); r.headers = { ["X-A"] = "1\0" }; return r end,
        function() local r = good(); r.headers = { ["X-A"] = "1", ["x-a"] = "2" }; return r end,
        function() local r = good(); r.headers = { ["X-Sdk-Date"] = DATE, ["x-sdk-date"] = DATE }; return r end,
        function() local r = good(); r.body = 42; return r end,
        function() local r = good(); r.body = {}; return r end,
      }
      for i, mk in ipairs(cases) do
        local err = einval(function() vpcep.sign(mk(), cred()) end)
        assert.is_nil(err.message:find(SK, 1, true), "case " .. i)
      end
    end)

    it("refuses malformed credentials, never echoing the secret", function()
      local secret = "VerySecretSK0123456789"
      local cases = {
        function() return nil end,
        function() return "AK:SK" end,
        function() return { sk = secret } end,
        function() return { ak = "", sk = secret } end,
        function() return { ak = 1, sk = secret } end,
        function() return { ak = "A\nK", sk = secret } end,
        function() return { ak = "A K", sk = secret } end,
        function() return { ak = "A,K", sk = secret } end,
        function() return { ak = AK } end,
        function() return { ak = AK, sk = "" } end,
        function() return { ak = AK, sk = secret .. "\n" } end,
        function() return { ak = AK, sk = secret .. "\0x" } end,
        function() return { ak = AK, sk = secret .. "\127" } end,
        function() return { ak = AK, sk = 12345 } end,
        function() return { ak = AK, sk = secret, security_token = "" } end,
        function() return { ak = AK, sk = secret, security_token = "t\r\n" .. secret } end,
        function() return { ak = AK, sk = secret, security_token = 7 } end,
        function() return { ak = AK, sk = secret, date = 20240101 } end,
        function() return { ak = AK, sk = secret, date = secret } end,
      }
      for i, mk in ipairs(cases) do
        local err = einval(function() vpcep.sign(good(), mk()) end)
        assert.is_nil(err.message:find(secret, 1, true), "case " .. i)
        assert.is_nil(tostring(err):find(secret, 1, true), "case " .. i)
      end
    end)

    it("says which field is wrong, without its value", function()
      local function msg(r, c) return einval(function() vpcep.sign(r, c or cred()) end).message end
      local function with(field, v) local r = good(); r[field] = v; return r end
      local function hdrs(t) return with("headers", t) end
      assert.are.equal("sign: request.method must be an upper-case HTTP method", msg(with("method", "get")))
      assert.are.equal("sign: request.method must be a string", msg(with("method", 1)))
      assert.are.equal("sign: request.url must start with http:// or https://", msg(with("url", "ftp://h/")))
      assert.are.equal("sign: request.url has no host", msg(with("url", "https:///p")))
      assert.are.equal("sign: request.url must not contain spaces or control characters",
        msg(with("url", "https://h/ ")))
      assert.are.equal("sign: request.body must be a string or nil", msg(with("body", 1)))
      assert.are.equal("sign: headers must map strings to strings", msg(hdrs({ ["X-A"] = 1 })))
      assert.are.equal("sign: header name 'X A' is not an HTTP token", msg(hdrs({ ["X A"] = "1" })))
      assert.are.equal("sign: header 'X-A' has a control character in its value", msg(hdrs({ ["X-A"] = "1\n" })))
      assert.are.equal("sign: header 'x-a' is given twice (names are case-insensitive)",
        msg(hdrs({ ["X-A"] = "1", ["x-A"] = "2" })))
      assert.are.equal("sign: header X-Sdk-Date must be YYYYMMDDTHHMMSSZ (UTC)",
        msg(hdrs({ ["X-Sdk-Date"] = "2024" }), { ak = AK, sk = SK }))
      assert.are.equal("sign: credentials need sk", msg(good(), { ak = AK }))
      assert.are.equal("sign: sk must be a non-empty string without control characters",
        msg(good(), { ak = AK, sk = "" }))
      -- a name is quoted up to its first NUL, and at most 160 bytes of it
      assert.are.equal("sign: header name 'X' is not an HTTP token", msg(hdrs({ ["X\0Y"] = "1" })))
      local name = string.rep("n", 200) .. " x"
      assert.are.equal("sign: header name '" .. string.rep("n", 160) .. "...' is not an HTTP token",
        msg(hdrs({ [name] = "1" })))
    end)

    it("reports the first fault in a fixed order: credentials, method, types, url, headers", function()
      local function msg(r, c) return einval(function() vpcep.sign(r, c) end).message end
      local bad_ak = { ak = "A K", sk = SK, date = DATE }
      local r = { method = "get", url = "ftp://h/", headers = { ["X A"] = "1" }, body = 1 }
      assert.matches("^sign: ak ", msg(r, bad_ak))
      assert.matches("^sign: request%.method must be an upper%-case", msg(r, cred()))
      r.method = "GET"
      assert.matches("^sign: request%.body ", msg(r, cred()))
      r.body = nil
      assert.matches("^sign: request%.url must start", msg(r, cred()))
      r.url = "https://h/"
      assert.matches("^sign: header name ", msg(r, cred()))
    end)

    it("leaves the request untouched when it fails", function()
      local r = good()
      r.headers["x-a"] = "dup"
      einval(function() vpcep.sign(r, cred()) end)
      assert.are.same({ ["X-A"] = "1", ["x-a"] = "dup" }, r.headers)
    end)
  end)
end)
