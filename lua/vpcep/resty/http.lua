-- vpcep.resty.http: one HTTP/1.1 exchange over an nginx cosocket, for the
-- requests a vpcep plan hands out (op:request(i)). It carries bytes and
-- keeps time; it judges nothing but HTTP framing: the answer goes back to
-- the plan, which reads it exactly as the blocking client does.
--
--   local ok, status, body, headers = http.exchange(req, pool_size)
--   local ok, code, message = http.exchange(req, pool_size)   -- ok == false
--
-- code is what op:fail takes (vpcep.connect, vpcep.timeout, vpcep.tls,
-- vpcep.transport, vpcep.bad_response). A body longer than req.max_body
-- comes back as an answer just over max_body bytes (the plan refuses it,
-- with its status, as libcurl's path does), or as vpcep.bad_response when
-- Content-Length announces it. Messages hold socket errors and host names,
-- never a header value.
-- luacheck: std +ngx_lua
local ngx = ngx

local M = {}

M.MAX_HEAD = 300 * 1024   -- status line and headers together (libcurl's limit)
M.MAX_HEADER = 100 * 1024 -- one header line (libcurl's)
M.MAX_LINE = 8 * 1024     -- one chunk-size or trailer line
M.MAX_INFO = 10           -- 1xx heads before the answer
M.IDLE_MS = 30000         -- a kept-alive connection idles this long in its pool
local BLOCK = 64 * 1024   -- read size for heads and bodies without a length

local function now()
  ngx.update_time()
  return ngx.now()
end

-- An exchange: its socket and the time its request must be done by.
local Ex = {}
Ex.__index = Ex

-- Milliseconds left, at least 1 (0 would mean "nginx's default" to a cosocket).
function Ex:ms_left()
  local ms = math.floor((self.deadline - now()) * 1000)
  return ms < 1 and 1 or ms
end

-- Every following socket operation ends by the deadline.
function Ex:arm()
  local ms = self:ms_left()
  self.sock:settimeouts(ms, ms, ms)
end

-- scheme, host (no brackets), port, target ("/path?query"), or nil.
local function split_url(url)
  local scheme, authority, target = url:match("^(https?)://([^/?#]+)(.*)$")
  if not scheme then return nil end
  local host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if target == "" then target = "/" end
  return scheme, host, port, target
end
M.split_url = split_url

-- A proxy as vpcep.resty takes it: "http://[user:password@]host[:port][/]"
-- or "host:port" (port 1080 when none, as libcurl) -> { host=, port=, auth= } | nil.
-- It is used through HTTP CONNECT, for https and http endpoints alike.
function M.parse_proxy(s)
  if type(s) ~= "string" then return nil end
  local rest = s:match("^[Hh][Tt][Tt][Pp]://(.*)$")
  if not rest and not s:find("://", 1, true) then rest = s end
  if not rest then return nil end
  rest = rest:gsub("/$", "")
  local userinfo, hostport = rest:match("^(.*)@([^@]*)$")
  hostport = hostport or rest
  local host, port = hostport:match("^%[([^%]]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:/%[%]@]+):?(%d*)$") end
  if not host then return nil end
  local p = { host = host, port = tonumber(port) or 1080 }
  if userinfo then p.auth = "Basic " .. ngx.encode_base64(ngx.unescape_uri(userinfo)) end
  return p
end

local function is_ip(host)
  return host:find("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

-- The pool a connection is kept in: everything that makes two connections
-- interchangeable (a verified one never serves an unverified call, nor the reverse).
local function pool_key(ex, req)
  -- a tunnel is kept per proxy (its address and credentials, hashed)
  local via = req.proxy and ":via:" .. ngx.md5(req.proxy) or ""
  if ex.scheme == "http" then return "vpcep:http:" .. ex.host .. ":" .. ex.port .. via end
  return table.concat({ "vpcep:https", ex.host, ex.port, req.verify and "verify" or "noverify",
                        req.cafile or "" }, ":") .. via
end

-- A failure: false, code, message [, fresh]; a timeout is vpcep.timeout whatever else.
local function failed(err, code, message, fresh)
  if err == "timeout" then return false, "vpcep.timeout", message .. " (timeout)" end
  return false, code, message .. " (" .. tostring(err) .. ")", fresh
end

-- Connects, or takes a kept-alive connection, and does the TLS handshake
-- on a new one. -> true | false, code, message
-- Cosockets have no per-socket CA: with cafile given, say where nginx's
-- trust comes from (both ways a refused certificate is reported).
local function cafile_hint(req)
  return req.verify and req.cafile and
    "; vpcep.resty verifies against lua_ssl_trusted_certificate, which must name cafile" or ""
end

function Ex:open(req, pool_size)
  local ex = self
  ex.sock = ngx.socket.tcp()
  local ct = math.min(math.floor((req.connect_timeout or 10) * 1000), ex:ms_left())
  ex.sock:settimeouts(ct < 1 and 1 or ct, ex:ms_left(), ex:ms_left())
  local where = ex.host .. ":" .. ex.port
  local px = ex.proxy
  local host, port = px and px.host or ex.host, px and px.port or ex.port
  -- nothing is ever kept in the ":new" pool, so a connection made there is new
  local pool = pool_key(ex, req) .. (ex.new and ":new" or "")
  local ok, err = ex.sock:connect(host, port, { pool = pool, pool_size = pool_size })
  if not ok then
    return failed(err, "vpcep.connect", "cannot connect to " .. (px and "the proxy " or "") .. host .. ":" .. port)
  end
  ex.reused = (ex.sock:getreusedtimes() or 0) > 0
  if px and not ex.reused then
    local tunnelled, code, message = ex:tunnel(px)
    if not tunnelled then
      ex.sock:close()
      return false, code, message
    end
  end
  if ex.scheme == "https" and not ex.reused then
    ex:arm()
    -- the name is sent (SNI) and checked only for a host name: nginx
    -- checks DNS names, which an IP address never matches
    local sni = not is_ip(ex.host) and ex.host or nil
    -- pcall: lua-nginx-module has raised ("assertion failed!") where it should have answered
    local pok, session, herr = pcall(ex.sock.sslhandshake, ex.sock, false, sni, req.verify and true or false)
    if not pok or not session then
      ex.sock:close()
      return failed(pok and herr or session, "vpcep.tls", "TLS handshake with " .. where .. " failed"
        .. cafile_hint(req))
    end
    ex.tls_fresh = true
  end
  return true
end

function Ex:request_text(req)
  local lines = { req.method .. " " .. self.target .. " HTTP/1.1" }
  local has_host = false
  for name, value in pairs(req.headers or {}) do
    local lower = name:lower()
    if lower == "host" then has_host = true end
    if lower ~= "content-length" and lower ~= "connection" and lower ~= "transfer-encoding" then
      lines[#lines + 1] = name .. ": " .. value
    end
  end
  if not has_host then
    local default = self.port == (self.scheme == "https" and 443 or 80)
    local h = self.host:find(":", 1, true) and "[" .. self.host .. "]" or self.host
    lines[#lines + 1] = "Host: " .. h .. (default and "" or ":" .. self.port)
  end
  if req.body or req.method == "POST" or req.method == "PUT" then
    lines[#lines + 1] = "Content-Length: " .. #(req.body or "")
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = req.body or ""
  return table.concat(lines, "\r\n")
end

-- Up to the blank line ending a head, at most MAX_HEAD bytes.
-- -> head | nil, err, got_any
function Ex:read_head()
  local reader = self.sock:receiveuntil("\r\n\r\n")
  local parts, size = {}, 0
  while true do
    self:arm()
    local data, err, partial = reader(BLOCK)
    if not data then
      if not err then return table.concat(parts) end
      return nil, err, size > 0 or (partial ~= nil and #partial > 0)
    end
    size = size + #data
    if size > M.MAX_HEAD then return nil, "too large" , true end
    parts[#parts + 1] = data
  end
end

-- status, headers (names lowercased; a name sent more than once holds its
-- values in order), version (11 for HTTP/1.1) | nil
local function parse_head(head)
  local status_line, rest = head:match("^([^\r\n]*)\r?\n?(.*)$")
  local major, minor, status = status_line:match("^HTTP/(%d)%.(%d) ([1-5]%d%d)")
  if not status then return nil end
  local headers, last = {}, nil
  for line in (rest .. "\r\n"):gmatch("([^\r\n]*)\r?\n") do
    if #line > M.MAX_HEADER then return nil, "an answer header line is longer than " .. M.MAX_HEADER .. " bytes" end
    local name, value = line:match("^([^:%s]+):[ \t]*(.-)[ \t]*$")
    if name then
      name = name:lower()
      local old = headers[name]
      if old == nil then headers[name] = value
      elseif type(old) == "table" then old[#old + 1] = value
      else headers[name] = { old, value } end
      last = name
    elseif line:find("^[ \t]") and last and type(headers[last]) == "string" then
      headers[last] = headers[last] .. " " .. line:match("^%s*(.-)%s*$") -- obsolete line folding
    end
  end
  return tonumber(status), headers, tonumber(major) * 10 + tonumber(minor)
end

local function first(v) return type(v) == "table" and v[1] or v end

-- Asks the proxy for a tunnel to the endpoint (HTTP CONNECT). -> true | false, code, message
function Ex:tunnel(px)
  local target = (self.host:find(":", 1, true) and "[" .. self.host .. "]" or self.host) .. ":" .. self.port
  local lines = { "CONNECT " .. target .. " HTTP/1.1", "Host: " .. target }
  if px.auth then lines[#lines + 1] = "Proxy-Authorization: " .. px.auth end
  self:arm()
  local sent, err = self.sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n")
  if not sent then return failed(err, "vpcep.connect", "cannot ask the proxy for " .. target) end
  -- a proxy that answers but opens no tunnel is vpcep.transport, as in libcurl's path
  local head, herr = self:read_head()
  if not head then return failed(herr, "vpcep.transport", "the proxy opened no tunnel to " .. target) end
  local status = parse_head(head)
  if not status or status < 200 or status > 299 then
    return false, "vpcep.transport", "the proxy refused a tunnel to " .. target .. " ("
      .. (status and "status " .. status or "not an HTTP answer") .. ")"
  end
  return true
end

-- One line (without its CRLF) of at most MAX_LINE bytes. -> line | nil, err
function Ex:read_line()
  local reader = self.sock:receiveuntil("\r\n")
  self:arm()
  local data, err = reader(M.MAX_LINE + 1)
  if not data then return nil, err or "malformed" end
  if #data > M.MAX_LINE then return nil, "line too long" end
  local more, err2 = reader(1)
  if more then return nil, "line too long" end
  if err2 then return nil, err2 end
  return data
end

function Ex:receive(n)
  self:arm()
  return self.sock:receive(n)
end

-- A body just over max bytes: what tells the plan the answer was too large.
local function too_large(parts, size, max)
  return table.concat(parts) .. string.rep(" ", max + 1 - size)
end

-- A chunked body. -> body, over_max | nil, err
function Ex:read_chunked(max)
  local parts, size = {}, 0
  while true do
    local line, err = self:read_line()
    if not line then return nil, err end
    local hex = line:match("^(%x+)[ \t]*;") or line:match("^(%x+)[ \t]*$")
    if not hex or #hex > 15 then return nil, "malformed chunk size" end
    local n = tonumber(hex, 16)
    if n == 0 then break end
    if size + n > max then return too_large(parts, size, max), true end
    local data, e2 = self:receive(n)
    if not data then return nil, e2 end
    local crlf, e3 = self:receive(2)
    if not crlf then return nil, e3 end
    if crlf ~= "\r\n" then return nil, "malformed chunk" end
    parts[#parts + 1] = data
    size = size + n
  end
  for _ = 1, 100 do -- the trailer: lines up to an empty one
    local line, err = self:read_line()
    if not line then return nil, err end
    if line == "" then return table.concat(parts), false end
  end
  return nil, "too many trailer lines"
end

-- A body that ends when the server closes. -> body, over_max | nil, err
function Ex:read_to_close(max)
  local parts, size = {}, 0
  while true do
    local data, err, partial = self:receive(BLOCK)
    data = data or partial
    if data and #data > 0 then
      parts[#parts + 1] = data
      size = size + #data
      if size > max then return table.concat(parts), true end
    end
    if err == "closed" then return table.concat(parts), false end
    if err then return nil, err end
  end
end

-- A body of Content-Length bytes. -> body, false | nil, err | nil, nil, code, message
function Ex:read_length(cl, max)
  if type(cl) == "table" then
    for i = 2, #cl do
      if cl[i] ~= cl[1] then return nil, nil, "vpcep.transport", "conflicting Content-Length in the answer" end
    end
    cl = cl[1]
  end
  if not cl:find("^%d+$") or #cl > 15 then
    return nil, nil, "vpcep.transport", "invalid Content-Length in the answer"
  end
  local n = tonumber(cl)
  if n > max then return nil, nil, "vpcep.bad_response", "answer too large" end
  if n == 0 then return "", false end
  local data, err = self:receive(n)
  if not data then return nil, err end
  return data, false
end

-- The answer's head, past any 1xx. -> status, headers, version | nil, code, message, got_any
function Ex:answer_head()
  for _ = 1, M.MAX_INFO do
    local head, err, any = self:read_head()
    if not head then
      if err == "too large" then
        -- the server's doing, as the blocking client says (vpcep.bad_response)
        return nil, "vpcep.bad_response", "answer headers larger than " .. M.MAX_HEAD .. " bytes", true
      end
      if not any then
        local _, code, message = failed(err, "vpcep.transport", "no answer from " .. self.host)
        return nil, code, message, false
      end
      local _, code, message = failed(err, "vpcep.transport", "answer head cut short")
      return nil, code, message, true
    end
    local status, headers, version = parse_head(head)
    if not status then
      -- parse_head names only a header line over the limit: the server's doing
      return nil, headers and "vpcep.bad_response" or "vpcep.transport", headers or "the answer is not HTTP/1.x",
        true
    end
    if status == 101 then return nil, "vpcep.transport", "the server switched protocols", true end
    if status >= 200 then return status, headers, version end
  end
  return nil, "vpcep.transport", "too many 1xx answers", true
end

-- The answer. -> true, status, body, headers, keep | false, code, message, got_any
function Ex:read_answer(req)
  local status, headers, version, any = self:answer_head()
  if not status then return false, headers, version, any end
  local max = req.max_body or 4 * 1024 * 1024
  local conn = (first(headers.connection) or ""):lower()
  local keep = (version >= 11 and not conn:find("close", 1, true)) or conn:find("keep-alive", 1, true) ~= nil
  local te = headers["transfer-encoding"]
  local body, over, code, message
  if req.method == "HEAD" or status == 204 or status == 304 then
    body, over = "", false
  elseif te and (type(te) == "table" and table.concat(te, ",") or te):lower():find("chunked%s*$") then
    body, over = self:read_chunked(max)
  elseif te or not headers["content-length"] then
    keep = false
    body, over = self:read_to_close(max)
  else
    body, over, code, message = self:read_length(headers["content-length"], max)
  end
  if code then return false, code, message, true end
  if not body then
    local _, c, m = failed(over, "vpcep.transport", "answer cut short")
    return false, c, m, true
  end
  return true, status, body, headers, keep and not over
end

-- One try over one connection (a new one when new is true).
-- -> true, status, body, headers | false, code, message, try_a_new_connection
local function try(req, pool_size, deadline, new)
  local scheme, host, port, target = split_url(req.url or "")
  if not scheme then return false, "vpcep.connect", "cannot use the URL of the request" end
  local proxy = req.proxy and M.parse_proxy(req.proxy)
  if req.proxy and not proxy then return false, "vpcep.connect", "cannot use the proxy of the request" end
  local ex = setmetatable({ scheme = scheme, host = host, port = port, target = target,
                            deadline = deadline, new = new, proxy = proxy }, Ex)
  local opened, code, message = ex:open(req, pool_size)
  if not opened then return false, code, message end
  ex:arm()
  local sent, err = ex.sock:send(ex:request_text(req))
  if not sent then
    ex.sock:close()
    if ex.tls_fresh and err == "closed" then
      -- lua-nginx-module has reported a refused certificate this way: a
      -- handshake that "succeeded" on a connection already closed
      return false, "vpcep.tls", "TLS handshake with " .. host .. ":" .. port .. " failed" .. cafile_hint(req)
        .. " (closed)"
    end
    return failed(err, "vpcep.transport", "cannot send the request to " .. host, ex.reused)
  end
  local ok, status, body, headers, keep = ex:read_answer(req)
  if not ok then
    ex.sock:close()
    -- a kept-alive connection that the server had closed: a new one gets
    -- the request, once, as libcurl does (status is the code here, headers
    -- whether any byte came)
    return false, status, body, ex.reused and status == "vpcep.transport" and not headers
  end
  if keep and not new then
    ex.sock:setkeepalive(M.IDLE_MS, pool_size)
  else
    ex.sock:close()
  end
  return true, status, body, headers
end

-- Carries req (a plan's request) within req.timeout.
function M.exchange(req, pool_size)
  local deadline = now() + (req.timeout or 60)
  local ok, a, b, c = try(req, pool_size, deadline, false)
  if not ok and c == true then
    ok, a, b, c = try(req, pool_size, deadline, true)
  end
  if ok then return true, a, b, c end
  return false, a, b
end

return M
