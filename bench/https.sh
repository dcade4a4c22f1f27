#!/bin/sh
# https.sh: the HTTPS section of `make bench` (run.sh calls it): a private
# nginx on 127.0.0.1 serving the canned JSON over TLS, with a certificate
# made now by openssl into the build folder ($BUILD/bench-https), then
# bench/https.lua (floor over TLS, token and AK/SK clients, one-shot calls;
# throughput, and instructions under callgrind when valgrind is there).
#   BUILD=build/lua5.4 LUA=lua5.4 sh bench/https.sh
set -e
LUA=${LUA:-lua5.4}
BUILD=${BUILD:-build/$LUA}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX_BIN" ] || { echo "https.sh: nginx not found (apt-get install nginx-light)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "https.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
. bench/pin.sh
certs="$BUILD/bench-https"
mkdir -p "$certs"
# a self-signed certificate for 127.0.0.1, made fresh each run (P-256)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$certs/key.pem" -out "$certs/cert.pem" 2>/dev/null
cafile=$(cd "$certs" && pwd)/cert.pem
dir=$(mktemp -d /tmp/vpcep-bench-https.XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ok='{"connections":[{"id":"ep-0001","marker_id":422321321312321321,"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:01Z","domain_id":"6e9dfd51d1124e8d8498dce894923a0d","status":"accepted","description":""}]}'
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
    listen 127.0.0.1:$port ssl;
    ssl_certificate $(cd "$certs" && pwd)/cert.pem;
    ssl_certificate_key $(cd "$certs" && pwd)/key.pem;
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
until curl -s -o /dev/null --cacert "$cafile" "https://127.0.0.1:$port/"; do
  i=$((i + 1))
  [ $i -lt 100 ] || { echo "https.sh: nginx did not start" >&2; cat "$dir/logs/error.log" >&2; exit 1; }
  sleep 0.05
done
BENCH_HTTPS="https://127.0.0.1:$port" BENCH_CAFILE="$cafile" BENCH_FLOOR="$BUILD/bench-floor" \
  BENCH_LUA="$LUA" LUA_CPATH="$BUILD/?.so;;" LUA_PATH="./?.lua;;" $BENCH_ON_CLIENT "$LUA" bench/https.lua
