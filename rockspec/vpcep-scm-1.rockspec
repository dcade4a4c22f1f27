-- vpcep: accept/reject connections to a Huawei Cloud VPC Endpoint service.
-- From the repository root:
--   luarocks --lua-version=5.4 make rockspec/vpcep-scm-1.rockspec
--   luarocks --lua-version=5.1 make rockspec/vpcep-scm-1.rockspec   (also LuaJIT)
-- Needs libcurl and OpenSSL's libcrypto with their headers
-- (Debian: libcurl4-openssl-dev libssl-dev).
rockspec_format = "3.0"
package = "vpcep"
version = "scm-1"

source = {
   url = "git+https://github.com/vpcep/vpcep.git",
}

description = {
   summary = "Huawei Cloud VPC Endpoint client: accept or reject endpoint connections",
   detailed = [[
A Lua module written in C (libcurl, OpenSSL libcrypto) for the VPCEP
"AcceptOrRejectEndpoint" and connection-list calls: IAM token or AK/SK
(SDK-HMAC-SHA256) authentication, concurrent bulk requests, retries, exact
64-bit marker_id, error objects, vpcep.safe (nil, err), vpcep.resty (the same
client over OpenResty's cosockets, never blocking the nginx worker),
transport-agnostic pieces (client:plan, client:prepare, vpcep.parse), and the
`vpcep` command (accept, reject, list, approve-pending) built on it.
Works on Lua 5.1, 5.3, 5.4 and LuaJIT from one source.
]],
   license = "MIT",
   labels = { "huaweicloud", "vpcep", "cloud" },
}

dependencies = {
   "lua >= 5.1, < 5.5",
   "lua-cjson >= 2.1",
   "argparse >= 0.7",   -- the vpcep command's options (vpcep.cli)
}

-- Found as libraries: libcurl's header lives in a multiarch folder on Debian
-- (/usr/include/x86_64-linux-gnu/curl/curl.h), where LuaRocks does not look
-- for headers but the compiler does.
external_dependencies = {
   CURL = { library = "curl" },
   OPENSSL = { library = "crypto" },
}

build = {
   type = "builtin",
   modules = {
      vpcep = {
         sources = {
            "src/buf.c", "src/ccache.c", "src/cli.c", "src/client.c", "src/credentials.c", "src/errors.c", "src/exact.c", "src/json.c", "src/l_flow.c", "src/l_plan.c", "src/l_sign.c", "src/l_source.c", "src/options.c", "src/plan.c", "src/policy.c", "src/pollset.c",
            "src/profile.c", "src/quick.c", "src/regions.c", "src/request.c", "src/response.c", "src/scheduler.c",
            "src/share.c", "src/sign.c", "src/sockets.c", "src/source.c", "src/text.c", "src/transport.c", "src/uv.c", "src/validate.c", "src/vpcep.c",
         },
         defines = { "_POSIX_C_SOURCE=200809L" },
         incdirs = { "src", "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
         libraries = { "curl", "crypto" },
      },
      ["vpcep.cli"] = "lua/vpcep/cli.lua",
      ["vpcep.resty"] = "lua/vpcep/resty.lua",
      ["vpcep.resty.http"] = "lua/vpcep/resty/http.lua",
      ["vpcep.uv"] = "lua/vpcep/uv.lua",
      ["vpcep.reconcile"] = "lua/vpcep/reconcile.lua",
   },
   install = { bin = { vpcep = "bin/vpcep" } },
}
