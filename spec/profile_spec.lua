-- spec/profile_spec.lua: profile = NAME, a section of the official SDKs'
-- credentials file (HUAWEICLOUD_SDK_CREDENTIALS_FILE, else
-- ~/.huaweicloud/credentials): the format read, each key, every malformed
-- file, section and value refused before anything is sent, and that the
-- keys found really sign requests the mock accepts. Each case runs in a
-- child with exactly the environment it names (spec/env_child.lua); no error
-- text ever holds a value of the file.
local helper = require "spec.helper"
local run = require "spec.env_child"

local D = helper.defaults

local AK = "PROFAK00000000000001"
local SK = "prof-secret-sk-Qw83hh"
local ST = "prof-sec-token-Zx55kk"
local PID = "p-from-profile-7"
-- every value written into a file here; none may show in any error
local secrets = { SK, ST, "other-sk-Ty61", "dup-sk-Jk22", "odd-line-Vv09", "nul-line-Ww10" }
local no_secret = helper.no_secret(secrets)
local AK_IN_ERRORS = helper.no_secret { AK }

local SOURCE = "return vpcep._source(OPTS)"
local ACCEPT = "local sid = OPTS.sid; OPTS.sid = nil; local c = vpcep.new(OPTS); "
  .. "local r = c:accept(sid, 'e1'); c:close(); return { status = r[1].status }"

local mock, home, file, alt
setup(function()
  mock = helper.start()
  home = helper.tmpdir()
  assert(helper.run("mkdir -p " .. helper.shell_quote(home .. "/.huaweicloud")))
  file = home .. "/.huaweicloud/credentials"
  alt = home .. "/alt-credentials"
end)
teardown(function()
  mock:stop()
  helper.run("rm -rf " .. helper.shell_quote(home))
end)
before_each(function()
  mock:reset()
  mock:auth { ak = AK, sk = SK }
  mock:service { project_id = PID, endpoints = { { id = "e1" } } }
  os.remove(file)
  os.remove(alt)
end)

local function write(path, text) helper.write_file(path, text) end

local function source(env, opts)
  local e = { HOME = home }
  for k, v in pairs(env or {}) do e[k] = v end
  local o = { endpoint = mock.url }
  for k, v in pairs(opts or {}) do o[k] = v end
  local out = run(e, o, SOURCE)
  if out.err_code then
    no_secret(out.err_message)
    no_secret(out.err_string)
  end
  return out
end

-- expects vpcep.invalid_argument whose message holds each of the words
local function refused(env, opts, ...)
  local out = source(env, opts)
  assert.are.equal("vpcep.invalid_argument", out.err_code, out.err_string)
  for _, w in ipairs { ... } do
    assert.is_truthy(out.err_message:find(w, 1, true), w .. " not in: " .. out.err_message)
  end
  AK_IN_ERRORS(out.err_message)
  return out
end

local BASIC = "[basic]\nak = " .. AK .. "\nsk = " .. SK .. "\nproject_id = " .. PID .. "\n"

describe("profile = NAME", function()
  it("reads the section of ~/.huaweicloud/credentials, and its keys sign requests the mock accepts", function()
    write(file, BASIC)
    local s = source({}, { profile = "basic" })
    assert.is_nil(s.err_code, s.err_string)
    assert.are.equal("aksk", s.kind)
    assert.are.equal("profile", s.auth)
    assert.are.equal(AK, s.ak)
    assert.is_true(s.sk)
    assert.is_nil(s.security_token)
    assert.are.equal(PID, s.project_id)
    assert.are.equal(file, s.profile_path)
    assert.are.equal("basic", s.profile)
    local out = run({ HOME = home }, { endpoint = mock.url, profile = "basic", sid = D.service_id }, ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal("accepted", out.status)
    local log = mock:log()
    assert.are.equal(1, #log)
    assert.is_truthy(helper.header(log[1], "Authorization"):find("Access=" .. AK .. ",", 1, true))
    assert.are.equal(PID, helper.header(log[1], "X-Project-Id"))
  end)

  it("a wrong SK in the file is really used: the mock refuses it", function()
    write(file, "[basic]\nak = " .. AK .. "\nsk = other-sk-Ty61\n")
    local out = run({ HOME = home }, { endpoint = mock.url, profile = "basic", project_id = PID,
                                        sid = D.service_id, retries = 0 }, ACCEPT)
    assert.are.equal("APIGW.0301", out.err_code)
    no_secret(out.err_string)
  end)

  it("the security token of the profile is sent and signed", function()
    mock:auth { security_token = ST }
    write(file, BASIC .. "security_token = " .. ST .. "\n")
    local out = run({ HOME = home }, { endpoint = mock.url, profile = "basic", sid = D.service_id }, ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    local r = mock:log()[1]
    assert.are.equal(ST, helper.header(r, "X-Security-Token"))
    assert.matches("SignedHeaders=[^,]*x%-security%-token", helper.header(r, "Authorization"))
  end)

  it("HUAWEICLOUD_SDK_CREDENTIALS_FILE goes before ~/.huaweicloud/credentials", function()
    write(file, "[basic]\nak = HOMEAK\nsk = other-sk-Ty61\n")
    write(alt, BASIC)
    local s = source({ HUAWEICLOUD_SDK_CREDENTIALS_FILE = alt }, { profile = "basic" })
    assert.are.equal(AK, s.ak)
    assert.are.equal(alt, s.profile_path)
    s = source({}, { profile = "basic", project_id = PID })
    assert.are.equal("HOMEAK", s.ak)
  end)

  it("reads the section named, and only that one; names are exact", function()
    write(file, "[basic]\nak = BASICAK\nsk = other-sk-Ty61\n\n[prod]\nak = " .. AK .. "\nsk = " .. SK
      .. "\n[Prod]\nak = UPPERAK\nsk = other-sk-Ty61\n")
    local function ak(name) return source({}, { profile = name, project_id = PID }).ak end
    assert.are.equal(AK, ak("prod"))
    assert.are.equal("UPPERAK", ak("Prod"))
    assert.are.equal("BASICAK", ak("basic"))
    refused({}, { profile = "PROD" }, "PROD", file)
  end)

  it("takes what the SDKs' files hold: comments, blanks, key: value, any case of keys, CRLF, a BOM", function()
    write(file, "\239\187\191# a comment\r\n; another\r\n\r\n  [ basic ]  \r\n\tAK\t=\t" .. AK
      .. "  \r\nSk: " .. SK .. "\r\nProject_Id =" .. PID .. "\r\nregion = cn-north-4\r\n"
      .. "iam_endpoint = http://127.0.0.1:9/\r\n# sk = odd-line-Vv09\r\n")
    local s = source({}, { profile = "basic" })
    assert.is_nil(s.err_code, s.err_string)
    assert.are.equal(AK, s.ak)
    assert.is_true(s.sk)
    assert.are.equal(PID, s.project_id)
    assert.are.equal("http://127.0.0.1:9", s.iam_endpoint)
    local out = run({ HOME = home }, { endpoint = mock.url, profile = "basic", sid = D.service_id }, ACCEPT)
    assert.is_nil(out.err_code, out.err_string) -- the SK read is exactly the one the mock knows
  end)

  it("a file without a final newline, and a value holding '=' and ':'", function()
    mock:auth { security_token = "a=b:c==" }
    write(file, "[basic]\nak=" .. AK .. "\nsk=" .. SK .. "\nproject_id:" .. PID .. "\nsecurity_token = a=b:c==")
    local out = run({ HOME = home }, { endpoint = mock.url, profile = "basic", sid = D.service_id }, ACCEPT)
    assert.is_nil(out.err_code, out.err_string)
    assert.are.equal("a=b:c==", helper.header(mock:log()[1], "X-Security-Token"))
  end)

  it("an empty value counts as absent", function()
    write(file, BASIC .. "security_token =\n")
    assert.is_nil(source({}, { profile = "basic" }).security_token)
    write(file, "[basic]\nak =\nsk = " .. SK .. "\n")
    refused({}, { profile = "basic" }, "ak and sk go together", "ak is missing")
  end)

  it("an idp section describes a federated source (read at the first call, not here)", function()
    write(file, "[fed]\nidp_id = my-idp\nid_token_file = /var/run/secrets/my token\nproject_id = " .. PID .. "\n")
    local s = source({}, { profile = "fed" })
    assert.is_nil(s.err_code, s.err_string)
    assert.are.equal("idp", s.kind)
    assert.are.equal("profile", s.auth)
    assert.are.equal("my-idp", s.idp_id)
    assert.are.equal("/var/run/secrets/my token", s.id_token_file)
    assert.is_nil(s.ak)
  end)

  describe("the project id", function()
    it("option, then the profile's, then HUAWEICLOUD_SDK_PROJECT_ID", function()
      write(file, BASIC)
      assert.are.equal("p-opt", source({ HUAWEICLOUD_SDK_PROJECT_ID = "p-env" },
                                       { profile = "basic", project_id = "p-opt" }).project_id)
      assert.are.equal(PID, source({ HUAWEICLOUD_SDK_PROJECT_ID = "p-env" }, { profile = "basic" }).project_id)
      write(file, "[basic]\nak = " .. AK .. "\nsk = " .. SK .. "\n")
      assert.are.equal("p-env", source({ HUAWEICLOUD_SDK_PROJECT_ID = "p-env" }, { profile = "basic" }).project_id)
      refused({}, { profile = "basic" }, "project_id is missing")
    end)
  end)

  describe("the IAM endpoint", function()
    it("the profile's goes before HUAWEICLOUD_SDK_IAM_ENDPOINT, which goes before the region's", function()
      write(file, BASIC .. "iam_endpoint = https://iam.example.test:8443\n")
      local env = { HUAWEICLOUD_SDK_IAM_ENDPOINT = " http://127.0.0.1:7/ " }
      assert.are.equal("https://iam.example.test:8443", source(env, { profile = "basic" }).iam_endpoint)
      write(file, BASIC)
      assert.are.equal("http://127.0.0.1:7", source(env, { profile = "basic" }).iam_endpoint)
      assert.are.equal("https://iam.myhuaweicloud.com", source({}, { profile = "basic" }).iam_endpoint)
    end)
  end)

  describe("refused before anything is sent, naming the file and never a value", function()
    after_each(function() assert.are.equal(0, #mock:log()) end)

    it("a missing file, section or HOME", function()
      refused({}, { profile = "basic" }, "basic", file, "does not exist")
      refused({ HUAWEICLOUD_SDK_CREDENTIALS_FILE = alt }, { profile = "basic" }, alt, "does not exist")
      write(file, BASIC)
      refused({}, { profile = "staging" }, "staging", file, "[staging]", "not found")
      local out = run({}, { endpoint = mock.url, profile = "basic" }, SOURCE)
      assert.are.equal("vpcep.invalid_argument", out.err_code)
      assert.matches("HOME", out.err_message)
    end)

    it("a credentials file that is a folder", function()
      refused({ HUAWEICLOUD_SDK_CREDENTIALS_FILE = home }, { profile = "basic" }, home, "not a regular file")
    end)

    it("a bad profile option", function()
      write(file, BASIC)
      for _, bad in ipairs { "", "a]b", "[basic]", " basic", "basic\t", "ba\nsic", string.rep("x", 65) } do
        refused({}, { profile = bad }, "profile")
      end
      refused({}, { profile = 42 }, "profile must be a string")
    end)

    it("a profile with another source", function()
      write(file, BASIC)
      refused({}, { profile = "basic", token = "t", project_id = PID }, "profile", "token")
      refused({}, { profile = "basic", ak = AK, sk = "other-sk-Ty61", project_id = PID }, "profile")
    end)

    local malformed = {
      { "[basic]\nak = " .. AK .. "\nodd-line-Vv09\n", 3, "neither a section, a comment nor key = value" },
      { "[basic]\n = odd-line-Vv09\n", 2, "empty key" },
      { "ak = " .. AK .. "\n[basic]\n", 1, "before any [section]" },
      { "[basic\nak = " .. AK .. "\n", 1, "no ']'" },
      { "[basic] sk = odd-line-Vv09\n", 1, "something after its ']'" },
      { "[]\n", 1, "empty name" },
      { "[ \t ]\n", 1, "empty name" },
      { "[basic]\nak = " .. AK .. "\nsk = nul-line-Ww10\0x\n", 3, "NUL byte" },
      { BASIC .. "SK = dup-sk-Jk22\n", 5, "given twice in the section (sk)" },
      { BASIC .. "[basic]\n", 5, "section appears twice" },
      -- a broken line anywhere makes the whole file refused, as configparser does
      { BASIC .. "[other]\nodd-line-Vv09\n", 6, "neither a section" },
    }
    for i, case in ipairs(malformed) do
      it("malformed file " .. i .. ": " .. case[3], function()
        write(file, case[1])
        refused({}, { profile = "basic" }, file, "line " .. case[2] .. ": ", case[3])
      end)
    end

    it("a key given twice in another section, or an unknown key twice, is not ours to judge", function()
      write(file, BASIC .. "color = a\ncolor = b\n[other]\nsk = x\nsk = y\n")
      assert.are.equal(AK, source({}, { profile = "basic" }).ak)
    end)

    local bad_values = {
      { "[basic]\nak = " .. AK .. "\n", "ak and sk go together: sk is missing" },
      { "[basic]\nsk = " .. SK .. "\n", "ak and sk go together: ak is missing" },
      { "[basic]\nsecurity_token = " .. ST .. "\n", "security_token needs ak and sk" },
      { "[basic]\nidp_id = x\n", "id_token_file is missing" },
      { "[basic]\nid_token_file = /x\n", "idp_id is missing" },
      { BASIC .. "idp_id = x\nid_token_file = /x\n", "not both" },
      { "[basic]\nproject_id = " .. PID .. "\n", "holds no credentials" },
      { "[basic]\n", "holds no credentials" },
      { "[basic]\nak = A,B\nsk = " .. SK .. "\n", "ak must not contain a comma" },
      { "[basic]\nak = " .. AK .. "\nsk = " .. SK .. " # my key\n", "sk holds a control character or a space" },
      { "[basic]\nak = " .. AK .. "\nsk = " .. SK .. "\nsecurity_token = " .. ST .. "\tx\n", "security_token holds" },
      { "[basic]\nak = " .. AK .. "\nsk = " .. SK .. "\nsecurity_token = " .. string.rep("s", 16385) .. "\n",
        "security_token is too long" },
      { "[basic]\nak = " .. string.rep("A", 257) .. "\nsk = " .. SK .. "\n", "ak is too long" },
      { "[basic]\nak = " .. AK .. "\nsk = " .. SK .. "\nproject_id = p/../x\n", "project_id is no project id" },
      { BASIC .. "iam_endpoint = iam.example.com\n", "iam_endpoint must start with https:// or http://" },
      { BASIC .. "iam_endpoint = https://iam.example.com/v3\n", "iam_endpoint must be scheme://host[:port]" },
      { BASIC .. "iam_endpoint = https://:99\n", "iam_endpoint has no host" },
      { BASIC .. "idp_id = a b\n", "idp_id holds" },
    }
    for i, case in ipairs(bad_values) do
      it("bad section " .. i .. ": " .. case[2], function()
        write(file, case[1])
        refused({}, { profile = "basic" }, file, "[basic]", case[2])
      end)
    end
  end)
end)
