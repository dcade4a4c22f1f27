-- .luacheckrc: `make lint` (and `make test`) runs luacheck over bin/, lua/,
-- examples/, spec/ and bench/ with these settings.

-- Every file runs on Lua 5.1, 5.3, 5.4 and LuaJIT, and tests for what
-- differs before it uses it (math.type, table.unpack or unpack, jit,
-- loadstring, newproxy): the standard is the union of them all.
std = "max"
max_line_length = 120
include_files = { "bin/vpcep", "**/*.lua", ".luacheckrc" }
exclude_files = { "build/**", "luarocks-tree/**" }

-- busted's describe/it/assert/... in the specs
files["spec/**/*.lua"] = { std = "+busted" }
-- lua-nginx-module's ngx in the OpenResty handler
files["examples/openresty/**/*.lua"] = { std = "+ngx_lua" }
-- Neovim's vim; its g (g:variables) is where a plugin writes
files["examples/neovim/**/*.lua"] = {
  read_globals = { vim = { other_fields = true, fields = { g = { other_fields = true, read_only = false } } } },
}
