-- examples/accept.lua: accept endpoint connections to a VPC endpoint service.
--   lua examples/accept.lua SERVICE_ID ENDPOINT_ID...
-- Settings come from the environment: see examples/settings.lua.
dofile((arg[0]:match("^(.*)/") or ".") .. "/action.lua")("accept")
