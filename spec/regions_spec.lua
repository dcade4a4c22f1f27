-- spec/regions_spec.lua: the service host of each region, seen through
-- vpcep.new{ region = ... } and client:prepare(...).url.
--
-- The list is the VPCEP region file of the official SDKs
-- (huaweicloud-sdk-java-v3 VpcepRegion.java, huaweicloud-sdk-nodejs-v3).
local vpcep = require "vpcep"
local helper = require "spec.helper"

local REGIONS = {
  "ae-ad-1", "af-north-1", "af-south-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
  "ap-southeast-4", "cn-east-2", "cn-east-3", "cn-east-4", "cn-east-5", "cn-north-1", "cn-north-11",
  "cn-north-2", "cn-north-4", "cn-north-9", "cn-south-1", "cn-south-2", "cn-south-4", "cn-southwest-2",
  "eu-west-0", "eu-west-101", "la-north-2", "la-south-2", "me-east-1", "my-kualalumpur-1", "na-mexico-1",
  "ru-moscow-1", "ru-northwest-2", "sa-brazil-1", "tr-west-1",
}

local function client(region)
  return vpcep.new { region = region, project_id = "p", token = "t" }
end

local function url_of(region)
  local c = client(region)
  local url = c:prepare("receive", "svc", "ep").url
  c:close()
  return url
end

local einval = helper.einval

describe("regions", function()
  it("cn-north-4 works", function()
    local url = url_of("cn-north-4")
    assert.are.equal("https://vpcep.cn-north-4.myhuaweicloud.com/v1/p/vpc-endpoint-services/svc/connections/action",
      url)
  end)

  it("every region of the service has its host", function()
    for _, r in ipairs(REGIONS) do
      local domain = r == "eu-west-101" and "myhuaweicloud.eu" or "myhuaweicloud.com"
      local prefix = "https://vpcep." .. r .. "." .. domain .. "/"
      local url = url_of(r)
      assert.are.equal(prefix, url:sub(1, #prefix), r)
    end
  end)

  it("eu-west-101 lives under .myhuaweicloud.eu", function()
    local host = url_of("eu-west-101"):match("^https://([^/]+)/")
    assert.are.equal("vpcep.eu-west-101.myhuaweicloud.eu", host)
    assert.matches("%.myhuaweicloud%.eu$", host)
  end)

  it("an unknown region is refused, pointing at endpoint", function()
    for _, r in ipairs({ "xx-nowhere-1", "cn-north-44", "CN-NORTH-4", "cn-north-4 ", "", "eu-west-10" }) do
      local err = einval(function() client(r) end)
      assert.matches("endpoint", err.message, 1, true)
    end
  end)

  it("a region that is not a string is refused", function()
    einval(function() client(4) end)
    einval(function() client({}) end)
  end)
end)
