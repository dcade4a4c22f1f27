-- examples/policy.lua: a policy for `vpcep reconcile --policy examples/policy.lua`
-- (or client:reconcile(sid, dofile("examples/policy.lua"))): accept our own
-- accounts, reject the accounts we closed, and leave anything else pending
-- for a person to look at. Edit the two lists (domain ids).
local OURS = {
  "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
}
local CLOSED = {
  "ffeeddccbbaa99887766554433221100",
}

local function set(list)
  local s = {}
  for _, d in ipairs(list) do s[d] = true end
  return s
end
local ours, closed = set(OURS), set(CLOSED)

-- conn is the connection as listed: id, domain_id, status, marker_id, ...
return function(conn)
  local d = tostring(conn.domain_id)
  if ours[d] then return "accept", "account " .. d .. " is ours" end
  if closed[d] then return "reject", "account " .. d .. " was closed" end
  return nil, "account " .. d .. " is unknown: left for review"
end
