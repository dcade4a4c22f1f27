#!/bin/sh
# run.sh: starts a private nginx on 127.0.0.1 (a free port, a temp prefix)
# answering canned JSON, then runs bench/bench.lua (which starts the Python
# mock itself for the delayed bulk test), then stops nginx.
#   BUILD=build/lua5.4 LUA=lua5.4 sh bench/run.sh
set -e
LUA=${LUA:-lua5.4}
BUILD=${BUILD:-build/$LUA}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX_BIN" ] || { echo "run.sh: nginx not found (apt-get install nginx-light)" >&2; exit 1; }
. bench/pin.sh
dir=$(mktemp -d /tmp/vpcep-bench.XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ok='{"connections":[{"id":"ep-0001","marker_id":422321321312321321,"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:01Z","domain_id":"6e9dfd51d1124e8d8498dce894923a0d","status":"accepted","description":""}]}'
missing='{"error_code":"EndPoint.0005","error_msg":"The requested resource does not exist."}'
mkdir -p "$dir/logs"
cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$port;
    location ~ ^/v1/[^/]+/vpc-endpoint-services/missing/ {
      default_type application/json;
      add_header X-Request-Id 0123456789abcdef0123456789abcdef always;
      return 404 '$missing';
    }
    location / {
      default_type application/json;
      add_header X-Request-Id 0123456789abcdef0123456789abcdef always;
      return 200 '$ok';
    }
  }
}
CONF
"$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf" -g "daemon off; $BENCH_NGINX_PIN" &
pid=$!
i=0
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
  i=$((i + 1))
  [ $i -lt 100 ] || { echo "run.sh: nginx did not start" >&2; cat "$dir/logs/error.log" >&2; exit 1; }
  sleep 0.05
done
echo "clients: ${BENCH_ON_CLIENT:-not pinned}; nginx: ${BENCH_NGINX_PIN:-not pinned}"
echo "machine: $(nproc) CPUs, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
echo "nginx: $("$NGINX_BIN" -v 2>&1), libcurl: $(curl-config --version 2>/dev/null || pkg-config --modversion libcurl)"
BENCH_NGINX="http://127.0.0.1:$port" BENCH_FLOOR="$BUILD/bench-floor" \
  LUA_CPATH="$BUILD/?.so;;" LUA_PATH="./?.lua;;" $BENCH_ON_CLIENT "$LUA" bench/bench.lua
BENCH_NGINX="http://127.0.0.1:$port" BUILD="$BUILD" LUA="$LUA" sh bench/callgrind.sh
BUILD="$BUILD" LUA="$LUA" NGINX_BIN="$NGINX_BIN" sh bench/https.sh
NGINX_BIN="$NGINX_BIN" LUA_CPATH="$BUILD/?.so;;" LUA_PATH="./?.lua;;" $BENCH_ON_CLIENT "$LUA" bench/bulk10k.lua
