#!/bin/sh
# render.sh PREFIX PORT ENDPOINT PROJECT_ID VPCEP_CPATH [TIMER_SERVICE TIMER_ENDPOINT]
# Writes PREFIX/nginx.conf from the template beside this script and makes the
# folders nginx needs; then: nginx -p PREFIX -c PREFIX/nginx.conf
set -e
here=$(cd "$(dirname "$0")" && pwd)
prefix=$1 port=$2 endpoint=$3 project=$4 cpath=$5 tservice=${6:-} tendpoint=${7:-}
[ -n "$cpath" ] || { echo "usage: $0 PREFIX PORT ENDPOINT PROJECT_ID VPCEP_CPATH [TIMER_SERVICE TIMER_ENDPOINT]" >&2; exit 2; }
mkdir -p "$prefix/logs" "$prefix/tmp"
esc() { printf '%s' "$1" | sed 's/[\\&|]/\\&/g'; }
sed -e "s|@PORT@|$(esc "$port")|g" \
    -e "s|@EXAMPLE_DIR@|$(esc "$here")|g" \
    -e "s|@VPCEP_CPATH@|$(esc "$cpath")|g" \
    -e "s|@ENDPOINT@|$(esc "$endpoint")|g" \
    -e "s|@PROJECT_ID@|$(esc "$project")|g" \
    -e "s|@TIMER_SERVICE@|$(esc "$tservice")|g" \
    -e "s|@TIMER_ENDPOINT@|$(esc "$tendpoint")|g" \
    "$here/nginx.conf" > "$prefix/nginx.conf"
