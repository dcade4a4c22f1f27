-- TLS: verification is on by default; an unknown certificate is refused with
-- vpcep.tls; cafile makes it work; verify = false only when asked.
local helper = require "spec.helper"
local vpcep = require "vpcep"
local d = helper.defaults

describe("TLS", function()
  local mock
  setup(function() mock = helper.start{ tls = true } end)
  teardown(function() mock:stop() end)
  before_each(function()
    mock:reset()
    mock:service{ endpoints = { { id = "e1" } } }
  end)

  local function client(o) return helper.client(mock, { timeout = 10, retries = 0 }, o) end

  it("the mock really serves HTTPS", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", mock.url)
    assert.is_string(mock.cafile)
  end)

  it("refuses the self-signed certificate by default (vpcep.tls), sending nothing", function()
    local c = client()
    local ok, err = pcall(c.accept, c, d.service_id, "e1")
    assert.is_false(ok)
    assert.is_true(vpcep.is_error(err))
    assert.equal("vpcep.tls", err.code)
    assert.is_nil(err.status)
    assert.equal(0, #mock:log())
    assert.equal("pendingAcceptance", mock:by_id().e1.status)
  end)

  it("verify = true explicitly refuses it too, and is not retried", function()
    local c = client{ verify = true, retries = 3 }
    local ok, err = pcall(c.connections, c, d.service_id)
    assert.is_false(ok)
    assert.equal("vpcep.tls", err.code)
    assert.equal(1, err.tries)
    assert.equal(0, #mock:log())
  end)

  it("cafile = the mock's certificate makes it work", function()
    local conns = client{ cafile = mock.cafile }:accept(d.service_id, "e1")
    assert.equal("accepted", conns[1].status)
    assert.equal("accepted", mock:by_id().e1.status)
  end)

  it("cafile with a different CA is refused", function()
    local other = helper.make_cert(os.tmpname() .. ".other")
    local c = client{ cafile = other }
    local ok, err = pcall(c.accept, c, d.service_id, "e1")
    os.execute("rm -rf " .. helper.shell_quote(other:match("^(.*)/")))
    assert.is_false(ok)
    assert.equal("vpcep.tls", err.code)
    assert.equal(0, #mock:log())
  end)

  it("cafile that does not exist is an error, never a silent fallback", function()
    local c = client{ cafile = "/nonexistent/ca.pem" }
    local ok, err = pcall(c.accept, c, d.service_id, "e1")
    assert.is_false(ok)
    assert.is_true(vpcep.is_error(err))
    assert.is_true(err.code == "vpcep.tls" or err.code == "vpcep.invalid_argument", err.code)
    assert.equal(0, #mock:log())
  end)

  it("with cafile, the name localhost also matches the certificate", function()
    -- the cert names 127.0.0.1 and localhost; reaching it as localhost works with cafile
    local c = vpcep.new{ project_id = d.project_id, endpoint = "https://localhost:" .. mock.port, token = d.token,
                         cafile = mock.cafile, timeout = 10, retries = 0 }
    local ok, res = pcall(c.accept, c, d.service_id, "e1")
    if ok then
      assert.equal("accepted", res[1].status)
    else
      -- localhost may resolve to ::1 first where nothing listens
      assert.is_true(res.code == "vpcep.connect", tostring(res))
    end
  end)

  it("verify = false works, but only when asked", function()
    local conns = client{ verify = false }:accept(d.service_id, "e1")
    assert.equal("accepted", conns[1].status)
  end)

  it("verify must be a boolean (no truthy strings turn it off)", function()
    for _, v in ipairs{ "false", 0, "no", {} } do
      local ok, err = pcall(client, { verify = v })
      assert.is_false(ok)
      assert.equal("vpcep.invalid_argument", err.code)
    end
  end)

  it("plain HTTP to a TLS port gives an error, not a hang", function()
    local c = vpcep.new{ project_id = d.project_id, endpoint = "http://127.0.0.1:" .. mock.port, token = d.token,
                         timeout = 5, retries = 0 }
    local ok, err = pcall(c.accept, c, d.service_id, "e1")
    assert.is_false(ok)
    assert.is_true(vpcep.is_error(err))
    assert.is_not_equal("vpcep.timeout", err.code)
  end)
end)
