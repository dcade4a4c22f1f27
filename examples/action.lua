-- examples/action.lua: what accept.lua and reject.lua share: read the
-- arguments, make the call, print one line per endpoint.
local vpcep = require "vpcep"
local settings = dofile((arg[0]:match("^(.*)/") or ".") .. "/settings.lua")

return function(verb)
  local service_id = arg[1]
  local endpoints = { select(2, (table.unpack or unpack)(arg)) }
  if not service_id or #endpoints == 0 then
    io.stderr:write(("usage: lua %s SERVICE_ID ENDPOINT_ID...\n"):format(arg[0]))
    os.exit(2)
  end
  local client = vpcep.new(settings())
  local ok, result = pcall(client[verb], client, service_id, endpoints)
  client:close()
  local conns = ok and result or result.results
  if not conns then -- nothing was sent, or no answer at all
    io.stderr:write(tostring(result), "\n")
    os.exit(1)
  end
  for i, c in ipairs(conns) do
    if vpcep.is_error(c) then
      print(("%-40s %s"):format(endpoints[i], tostring(c)))
    else
      print(("%-40s %-18s marker_id=%s"):format(c.id, c.status, tostring(c.marker_id)))
    end
  end
  os.exit(ok and 0 or 1)
end
