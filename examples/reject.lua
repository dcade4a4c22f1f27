-- examples/reject.lua: reject endpoint connections to a VPC endpoint service.
--   lua examples/reject.lua SERVICE_ID ENDPOINT_ID...
-- Settings come from the environment: see examples/settings.lua.
dofile((arg[0]:match("^(.*)/") or ".") .. "/action.lua")("reject")
