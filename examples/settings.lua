-- examples/settings.lua: the client options the examples take from the
-- environment, so no secret ever shows on a command line.
--
--   VPCEP_ENDPOINT               scheme://host[:port] (else VPCEP_REGION, default cn-north-4)
--   HUAWEICLOUD_SDK_PROJECT_ID   the project
--   VPCEP_TOKEN                  an IAM token; without it the module signs with
--                                HUAWEICLOUD_SDK_AK / _SK / _SECURITY_TOKEN
--   VPCEP_CAFILE                 a CA bundle for a private endpoint
return function()
  local endpoint = os.getenv("VPCEP_ENDPOINT")
  return {
    project_id = os.getenv("HUAWEICLOUD_SDK_PROJECT_ID"),
    endpoint = endpoint,
    region = not endpoint and (os.getenv("VPCEP_REGION") or "cn-north-4") or nil,
    token = os.getenv("VPCEP_TOKEN"),
    cafile = os.getenv("VPCEP_CAFILE"),
  }
end
