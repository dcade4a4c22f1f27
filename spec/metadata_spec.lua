-- spec/metadata_spec.lua: metadata = true: an ECS agency's temporary keys
-- from the metadata service (PUT /meta-data/latest/api/token, then GET
-- /openstack/latest/securitykey), fetched at the first call, cached per
-- process, refreshed when less than 40 minutes remain; a 401 gets a new
-- metadata token and one more try, unless no agency is configured. The
-- metadata service here is the mock on 127.0.0.1 (metadata_endpoint): no
-- test ever sends anything to the real metadata address.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local D = helper.defaults
local SID = D.service_id

local mock
local seen = {}

local function meta_opts(extra)
  return helper.merge({ endpoint = mock.url, project_id = D.project_id, metadata = true,
                        metadata_endpoint = mock.url, retries = 0 }, extra)
end

local function creds_error(f, ...)
  local err = helper.raised(f, ...)
  assert.are.equal("vpcep.credentials", err.code, tostring(err))
  assert.is_true(vpcep.is_error(err.cause))
  seen[#seen + 1] = tostring(err)
  seen[#seen + 1] = tostring(err.cause)
  return err
end

local function only(n, keys)
  local out = {}
  for _, k in ipairs(keys) do out[k] = n[k] end
  return out
end

local COUNTS = { "metadata_token", "metadata_securitykey", "vpcep" }

setup(function() mock = helper.start() end)
teardown(function() mock:stop() end)
before_each(function()
  mock:reset()
  vpcep._forget_credentials()
  mock:service { endpoints = { { id = "e1" }, { id = "e2" }, { id = "e3" } } }
end)

describe("metadata = true", function()
  it("fetches nothing at vpcep.new; the first call gets the agency's keys and signs with them", function()
    local c = vpcep.new(meta_opts())
    assert.are.equal(0, #mock:log())
    local r = c:accept(SID, { "e1", "e2" })
    assert.are.equal("accepted", r[2].status)
    assert.are.same({ metadata_token = 1, metadata_securitykey = 1, vpcep = 2 }, only(mock:counts(), COUNTS))
    local log = mock:log()
    assert.are.equal("PUT", log[1].method)
    assert.are.equal("/meta-data/latest/api/token", log[1].path)
    assert.are.equal("21600", helper.header(log[1], "X-Metadata-Token-Ttl-Seconds"))
    assert.are.equal("GET", log[2].method)
    assert.are.equal("/openstack/latest/securitykey", log[2].path)
    assert.matches("^meta%-", helper.header(log[2], "X-Metadata-Token"))
    -- the mock checked the signature with the temporary SK and the security token
    assert.matches("^SDK%-HMAC%-SHA256 Access=TMP", helper.header(log[3], "Authorization"))
    assert.matches("^tmp%-st%-", helper.header(log[3], "X-Security-Token"))
    local info = c:info()
    assert.are.equal("metadata", info.auth)
    assert.is_string(info.expires_at)
    for k, v in pairs(info) do seen[#seen + 1] = k .. "=" .. tostring(v) end
    seen[#seen + 1] = tostring(c)
  end)

  it("a token service answering 404, 405 or 503: the key is asked for without a token", function()
    for _, status in ipairs({ 404, 405, 503 }) do
      mock:reset()
      vpcep._forget_credentials()
      mock:service { endpoints = { { id = "e1" } } }
      mock:iam { metadata_token = status }
      local c = vpcep.new(meta_opts())
      assert.are.equal("accepted", c:accept(SID, "e1")[1].status)
      local log = mock:log()
      assert.is_nil(helper.header(log[2], "X-Metadata-Token"), "status " .. status)
      assert.are.same({ metadata_token = 1, metadata_securitykey = 1, vpcep = 1 }, only(mock:counts(), COUNTS))
    end
  end)

  it("a token service answering anything else is a refusal", function()
    mock:fault { match = { path_contains = "/meta-data/latest/api/token" }, times = 0,
                 answer = { status = 500, body = "oops" } }
    local c = vpcep.new(meta_opts())
    local err = creds_error(c.accept, c, SID, "e1")
    assert.are.equal(500, err.cause.status)
    assert.matches("metadata service token", err.message)
  end)

  it("a 401 for the key: a new metadata token and one more try", function()
    mock:fault { match = { path_contains = "/openstack/latest/securitykey" }, times = 1,
                 answer = { status = 401, json = { message = "token expired" } } }
    local c = vpcep.new(meta_opts())
    assert.are.equal("accepted", c:accept(SID, "e1")[1].status)
    assert.are.same({ metadata_token = 2, metadata_securitykey = 2, vpcep = 1 }, only(mock:counts(), COUNTS))
  end)

  it("a second 401 is the error (one more try only)", function()
    mock:fault { match = { path_contains = "/openstack/latest/securitykey" }, times = 0,
                 answer = { status = 401, json = { message = "token expired" } } }
    local c = vpcep.new(meta_opts())
    local err = creds_error(c.accept, c, SID, "e1")
    assert.are.equal(401, err.cause.status)
    assert.are.same({ metadata_token = 2, metadata_securitykey = 2, vpcep = 0 }, only(mock:counts(), COUNTS))
  end)

  it("no agency configured: the 401 is final at once", function()
    mock:iam { agency = false }
    local c = vpcep.new(meta_opts())
    local err = creds_error(c.accept, c, SID, "e1")
    assert.matches("Please configure Cloud Service Agency first", err.message)
    assert.are.same({ metadata_token = 1, metadata_securitykey = 1, vpcep = 0 }, only(mock:counts(), COUNTS))
  end)

  it("5xx, slow, unreachable and malformed answers", function()
    mock:fault { match = { path_contains = "securitykey" }, times = 1, answer = { status = 502, body = "bad gateway" } }
    local c = vpcep.new(meta_opts())
    assert.are.equal(502, creds_error(c.accept, c, SID, "e1").cause.status)

    mock:fault { match = { path_contains = "securitykey" }, times = 1, delay_ms = 1500 }
    c = vpcep.new(meta_opts { timeout = 0.3 })
    assert.are.equal("vpcep.timeout", creds_error(c.accept, c, SID, "e1").cause.code)

    c = vpcep.new(meta_opts { metadata_endpoint = "http://127.0.0.1:" .. helper.free_port() })
    local err = creds_error(c.accept, c, SID, "e1")
    assert.are.equal("vpcep.connect", err.cause.code)
    assert.matches("the metadata service did not answer", err.message)

    mock:iam { malformed = "metadata_securitykey" }
    c = vpcep.new(meta_opts())
    assert.are.equal("vpcep.bad_response", creds_error(c.accept, c, SID, "e1").cause.code)

    mock:iam { malformed = false }
    mock:fault { match = { path_contains = "securitykey" }, times = 1,
                 answer = { status = 200, json = { credential = { access = "AK1", secret = "sk-sk-sk",
                                                                  securitytoken = "st-st-st" } } } }
    c = vpcep.new(meta_opts())
    assert.matches("expires_at", creds_error(c.accept, c, SID, "e1").message)
    assert.are.equal(0, mock:counts().vpcep)
  end)

  it("is never contacted without metadata = true", function()
    local c = vpcep.new(helper.aksk_opts(mock, { metadata_endpoint = mock.url }))
    c:accept(SID, "e1")
    assert.are.same({ metadata_token = 0, metadata_securitykey = 0, vpcep = 1 }, only(mock:counts(), COUNTS))
  end)
end)

describe("metadata keys: cache, refresh and 401", function()
  it("one fetch for every client of the process", function()
    for _ = 1, 3 do vpcep.new(meta_opts()):accept(SID, "e1") end
    assert.are.same({ metadata_token = 1, metadata_securitykey = 1, vpcep = 3 }, only(mock:counts(), COUNTS))
  end)

  it("keys with less than 40 minutes left are fetched again at the next call", function()
    mock:iam { key_ttl = 39 * 60 }
    local c = vpcep.new(meta_opts())
    c:accept(SID, "e1")
    c:accept(SID, "e2")
    assert.are.equal(2, mock:counts().metadata_securitykey)
    mock:iam { key_ttl = 3600 }
    c:accept(SID, "e3")
    c:accept(SID, "e3")
    assert.are.equal(3, mock:counts().metadata_securitykey)
  end)

  it("a 401 from the service (keys revoked): fetched again once, the refused requests resent once", function()
    local c = vpcep.new(meta_opts())
    c:accept(SID, { "e1", "e2" })
    mock:revoke()
    mock:clear_counts()
    local r = c:reject(SID, { "e1", "e2" })
    assert.are.equal("rejected", r[1].status)
    assert.are.same({ metadata_token = 1, metadata_securitykey = 1, vpcep = 4 }, only(mock:counts(), COUNTS))
  end)

  it("a 1,000-id bulk call fetches the keys once", function()
    mock:iam { key_ttl = 39 * 60 }
    local ids = mock:seed(1000)
    local r = vpcep.new(meta_opts { concurrency = 16 }):accept(SID, ids)
    assert.are.equal(1000, #r)
    assert.are.same({ metadata_token = 1, metadata_securitykey = 1, vpcep = 1000 }, only(mock:counts(), COUNTS))
  end)
end)

it("no temporary SK, security token or metadata token in any text this file got", function()
  local secrets = { "tmp-sk-", "tmp-st-", "meta-" }
  local no_secret = helper.no_secret(secrets)
  assert.is_true(#seen > 10)
  for _, t in ipairs(seen) do no_secret(t) end
end)
