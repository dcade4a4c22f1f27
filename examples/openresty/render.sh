#!/bin/sh
# render.sh PREFIX PORT ENDPOINT PROJECT_ID VPCEP_CPATH [APPROVE_SERVICE [APPROVE_EVERY [APPROVE_DOMAINS [APPROVE_OTHERS]]]]
# Writes PREFIX/nginx.conf from the template beside this script and makes the
# folders nginx needs; then: nginx -p PREFIX -c PREFIX/nginx.conf
#   VPCEP_CPATH       where vpcep.so is, as a Lua cpath entry (the LuaJIT build:
#                     "$PWD/build/luajit/?.so", or /usr/local/lib/lua/5.1/?.so from luarocks)
#   APPROVE_SERVICE   a service whose pending connections a timer reconciles (none: no timer)
#   APPROVE_EVERY     its period in seconds (default 60)
#   APPROVE_DOMAINS   accept only from these accounts (domain ids, comma-separated; default all)
#   APPROVE_OTHERS    leave (default) or reject the pending connections of other accounts
# Environment: VPCEP_LPATH (default: this checkout's lua/?.lua), VPCEP_TRUST
# (default /etc/ssl/certs/ca-certificates.crt), VPCEP_RESOLVER (a DNS server's
# address; default: none, enough for an endpoint given as an IP address).
set -e
here=$(cd "$(dirname "$0")" && pwd)
prefix=$1 port=$2 endpoint=$3 project=$4 cpath=$5
service=${6:-} every=${7:-60} domains=${8:-} others=${9:-leave}
usage="usage: $0 PREFIX PORT ENDPOINT PROJECT_ID VPCEP_CPATH [APPROVE_SERVICE [APPROVE_EVERY [APPROVE_DOMAINS [APPROVE_OTHERS]]]]"
[ -n "$cpath" ] || { echo "$usage" >&2; exit 2; }
case $others in leave|reject) ;; *) echo "$0: APPROVE_OTHERS must be leave or reject" >&2; exit 2 ;; esac
lpath=${VPCEP_LPATH:-$(cd "$here/../.." && pwd)/lua/?.lua}
trust=${VPCEP_TRUST:-/etc/ssl/certs/ca-certificates.crt}
resolver=""
[ -z "${VPCEP_RESOLVER:-}" ] || resolver="resolver $VPCEP_RESOLVER ipv6=off;"
mkdir -p "$prefix/logs" "$prefix/tmp"
esc() { printf '%s' "$1" | sed 's/[\\&|]/\\&/g'; }
sed -e "s|@PORT@|$(esc "$port")|g" \
    -e "s|@EXAMPLE_DIR@|$(esc "$here")|g" \
    -e "s|@VPCEP_LPATH@|$(esc "$lpath")|g" \
    -e "s|@VPCEP_CPATH@|$(esc "$cpath")|g" \
    -e "s|@ENDPOINT@|$(esc "$endpoint")|g" \
    -e "s|@PROJECT_ID@|$(esc "$project")|g" \
    -e "s|@TRUST@|$(esc "$trust")|g" \
    -e "s|@RESOLVER@|$(esc "$resolver")|g" \
    -e "s|@APPROVE_SERVICE@|$(esc "$service")|g" \
    -e "s|@APPROVE_EVERY@|$(esc "$every")|g" \
    -e "s|@APPROVE_DOMAINS@|$(esc "$domains")|g" \
    -e "s|@APPROVE_OTHERS@|$(esc "$others")|g" \
    "$here/nginx.conf" > "$prefix/nginx.conf"
