-- Secrets: the token, SK, security token and any Authorization signature
-- never appear in an error (message, tostring, any field) nor in
-- tostring(client), across every kind of failure, even when the server
-- echoes them back.
local helper = require "spec.helper"
local vpcep = require "vpcep"
local socket = require "socket"
local d = helper.defaults

local TOKEN = "tok-" .. string.rep("S3cr3tT0k3n", 40)         -- 444 bytes
local SK = "sk-Very-Secret-Key-0123456789abcdef"
local STOKEN = "sts-" .. string.rep("TempSecToken", 30)
local SIG = string.rep("0123456789abcdef", 4)                   -- a signature-looking value

describe("secrets", function()
  local mock
  local collected = {}
  setup(function() mock = helper.start() end)
  teardown(function() mock:stop() end)
  before_each(function()
    mock:reset()
    mock:service{ endpoints = { { id = "e1" }, { id = "e2" } } }
    mock:auth{ token = TOKEN, ak = d.ak, sk = SK, security_token = STOKEN }
  end)

  local function clients(o)
    local base = { project_id = d.project_id, endpoint = mock.url, timeout = 5, retries = 0 }
    local a, b = {}, {}
    for k, v in pairs(base) do a[k] = v; b[k] = v end
    a.token = TOKEN
    b.ak, b.sk, b.security_token = d.ak, SK, STOKEN
    for k, v in pairs(o or {}) do a[k] = v; b[k] = v end
    return { vpcep.new(a), vpcep.new(b) }
  end

  -- the texts of an error a user may print or log: message, code, request_id
  -- and tostring, of the error and of each error in err.results
  -- (err.connection is the answer's data, like a successful result)
  local function texts_of(err, out)
    out = out or {}
    out[#out + 1] = tostring(err)
    for _, k in ipairs{ "message", "code", "request_id", "endpoint" } do
      if type(err[k]) == "string" then out[#out + 1] = err[k] end
    end
    for _, r in ipairs(err.results or {}) do
      if vpcep.is_error(r) then texts_of(r, out) end
    end
    return out
  end

  local function assert_clean(s, where, secrets)
    for _, secret in ipairs(secrets or { TOKEN, SK, STOKEN }) do
      assert.is_nil(s:find(secret, 1, true), where .. " holds a secret: " .. s:sub(1, 200))
      -- nor a long piece of one (a cut at the text cap must not leave half a secret)
      assert.is_nil(s:find(secret:sub(1, 24), 1, true), where .. " holds part of a secret: " .. s:sub(1, 200))
    end
    local sig = s:match("Signature=(%x%x%x%x%x%x%x%x+)")
    assert.is_nil(sig, where .. " holds a signature: " .. s:sub(1, 200))
  end

  -- a client's own secrets: a token client cannot know an STS token it never had
  local function secrets_of(c)
    return tostring(c):find("token", 1, true) and { TOKEN } or { SK, STOKEN }
  end

  local function collect(f, c, ...)
    local ok, err = pcall(f, c, ...)
    assert.is_false(ok)
    assert.is_true(vpcep.is_error(err), tostring(err))
    collected[#collected + 1] = err
    local secrets = type(c) == "userdata" and secrets_of(c) or nil
    for _, s in ipairs(texts_of(err)) do assert_clean(s, "an error text", secrets) end
    return err
  end

  local echo = "got X-Auth-Token: " .. TOKEN .. " X-Security-Token: " .. STOKEN .. " sk=" .. SK
    .. " Authorization: SDK-HMAC-SHA256 Access=" .. d.ak .. ", SignedHeaders=host;x-sdk-date, Signature=" .. SIG

  local kinds = {
    { "401 echoing the credentials", { answer = { status = 401,
      json = { error_code = "APIGW.0301", error_msg = echo } } } },
    { "400 nested echo", { answer = { status = 400, json = { error = { code = "EndPoint.0001", message = echo } } } } },
    { "500 HTML echo", { answer = { status = 500, body = "<html>" .. echo .. "</html>",
      headers = { ["Content-Type"] = "text/html" } } } },
    { "200 not JSON echo", { answer = { status = 200, body = "oops " .. echo } } },
    { "failed connection echo", { answer = { status = 200, json = { connections = { { id = "e1", status = "failed",
      error = { { error_code = "E.1", error_message = echo } } } } } } }, "list passes" },
    { "long echo cut at the cap", { answer = { status = 400, json = { error_code = "EndPoint.0001",
      error_msg = string.rep("x", 1900) .. echo } } } },
    { "request id echo", { answer = { status = 404, headers = { ["X-Request-Id"] = TOKEN },
      json = { error_code = "EndPoint.0005", error_msg = "no" } } } },
    { "reset", { reset = true } },
    { "truncate", { truncate = true } },
    { "redirect", { redirect = "http://127.0.0.1:1/?token=" .. TOKEN } },
    { "garbage", { raw = "HTTP/1.1 200 OK\r\n" .. echo .. "\r\n\r\n" } },
    { "too large", { big_body = 8192 } },
  }
  for _, kind in ipairs(kinds) do
    it("no secret in the error of: " .. kind[1], function()
      local rule = kind[2]
      rule.times = 0
      mock:fault(rule)
      for _, c in ipairs(clients{ max_body = 4096 }) do
        collect(c.accept, c, d.service_id, "e1")
        collect(c.accept, c, d.service_id, { "e1", "e2" })
        if kind[3] then
          assert.equal("failed", c:connections(d.service_id)[1].status)  -- the list call does not judge
        else
          collect(c.connections, c, d.service_id)
        end
      end
    end)
  end

  it("no secret in the errors of retried failures", function()
    mock:fault{ times = 0, answer = { status = 503, json = { error_code = "X.503", error_msg = echo } } }
    for _, c in ipairs(clients{ retries = 1 }) do
      local err = collect(c.accept, c, d.service_id, "e1")
      assert.equal(2, err.tries)
    end
  end)

  it("no secret in errors of bad input, timeouts and refused connections", function()
    for _, c in ipairs(clients()) do
      collect(c.accept, c, d.service_id, "bad id/" .. TOKEN:sub(1, 40))
      collect(c.accept, c, d.service_id, "e1", { nope = TOKEN })
      collect(c.connections, c, d.service_id, { status = SK })
    end
    mock:fault{ times = 0, hang_ms = 3000 }
    for _, c in ipairs(clients{ timeout = 0.3 }) do collect(c.accept, c, d.service_id, "e1") end
    local s = assert(socket.bind("127.0.0.1", 0)); local _, port = s:getsockname(); s:close()
    for _, c in ipairs(clients{ endpoint = "http://127.0.0.1:" .. port }) do
      collect(c.accept, c, d.service_id, "e1")
    end
    -- option errors that name a secret-holding option must not echo its value
    for _, o in ipairs{ { token = TOKEN .. "\n" }, { token = TOKEN, ak = "x" }, { ak = d.ak, sk = SK .. "\0" },
                        { ak = d.ak, sk = SK, security_token = STOKEN .. "\r\n" }, { token = TOKEN, bogus = SK } } do
      o.project_id, o.endpoint = d.project_id, mock.url
      collect(vpcep.new, o)  -- checked against all three secrets
    end
    collect(vpcep.accept, { project_id = d.project_id, endpoint = mock.url, token = TOKEN, service_id = d.service_id,
      endpoints = { "e1/" } })
  end)

  it("wrong credentials give 401 without them", function()
    mock:auth{ token = "other-token-value", sk = "other-secret-key-value", security_token = "other-sts" }
    for _, c in ipairs(clients()) do
      local err = collect(c.accept, c, d.service_id, "e1")
      assert.equal(401, err.status)
    end
  end)

  it("vpcep.parse redacts nothing it does not know, but sign errors hold no SK", function()
    local req = { method = "GET\n", url = "https://h/p", headers = {}, body = "" }
    collect(vpcep.sign, req, { ak = d.ak, sk = SK, security_token = STOKEN })
    collect(vpcep.sign, { method = "GET", url = "https://h/p", headers = {}, body = "" },
      { ak = d.ak, sk = SK .. "\n" })
  end)

  it("tostring(client) holds no secret, open or closed", function()
    for _, c in ipairs(clients()) do
      assert_clean(tostring(c), "tostring(client)")
      c:close()
      assert_clean(tostring(c), "tostring(closed client)")
    end
  end)

  it("checked a good number of errors in all", function()
    assert.is_true(#collected >= 80, "only " .. #collected .. " errors collected")
  end)
end)
