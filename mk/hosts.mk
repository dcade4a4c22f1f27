# mk/hosts.mk: the hosts vpcep runs in besides plain Lua: LuaRocks, OpenResty
# (nginx + lua-nginx-module), Neovim. See docs/hosts.md.
#
#   make hosts-deps            install every Debian package these targets need
#   make test-hosts            the host specs (rockspec, compat, safe, openresty,
#                              neovim, uv) on every installed Lua ($(LUAS))
#   make rock ROCK_LUA=5.4     luarocks make into ROCK_TREE (default: LuaRocks' own)
#   make openresty-conf NGINX_PREFIX=/tmp/x NGINX_PORT=8080 VPCEP_ENDPOINT=https://...
#                              VPCEP_PROJECT_ID=...: write a ready nginx.conf there

HOST_SPECS := spec/rockspec_spec.lua spec/compat_spec.lua spec/safe_spec.lua \
	spec/openresty_spec.lua spec/neovim_spec.lua spec/uv_spec.lua
ROCK_LUA ?= 5.4
ROCK_TREE ?=
NGINX_PREFIX ?= /tmp/vpcep-nginx
NGINX_PORT ?= 8080
VPCEP_ENDPOINT ?= http://127.0.0.1:8081
VPCEP_PROJECT_ID ?= your-project-id

.PHONY: hosts-deps test-hosts rock openresty-conf

hosts-deps:
	@sh mk/deps.sh build lua51 lua53 luajit test rocks hosts

test-hosts: hosts-deps
	@O=$(O) SPECS="$(HOST_SPECS)" sh mk/test.sh $(LUAS)

# Debian's lua-cjson comes from apt, which LuaRocks does not see: without
# a LuaRocks-installed lua-cjson, this needs --deps-mode=none (or rocks_provided).
rock:
	@sh mk/deps.sh build rocks
	luarocks --lua-version=$(ROCK_LUA) $(if $(ROCK_TREE),--tree $(ROCK_TREE)) \
		make rockspec/vpcep-scm-1.rockspec $(ROCK_FLAGS) \
		CFLAGS="-O2 -fPIC -std=c99 -pedantic -Wall -Wextra"

openresty-conf:
	@$(MAKE) -s LUA=luajit lib
	sh examples/openresty/render.sh $(NGINX_PREFIX) $(NGINX_PORT) $(VPCEP_ENDPOINT) \
		$(VPCEP_PROJECT_ID) $(abspath $(O))/luajit/?.so
	@echo "start: VPCEP_TOKEN=... nginx -p $(NGINX_PREFIX) -c $(NGINX_PREFIX)/nginx.conf"
