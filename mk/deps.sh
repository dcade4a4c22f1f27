#!/bin/sh
# deps.sh GROUP...: makes sure the Debian packages a make target needs are
# installed. As root it installs what is missing with apt-get; otherwise it
# prints the exact command and fails.
set -e
pkgs=""
for group in "$@"; do
  case "$group" in
    build) pkgs="$pkgs gcc libc6-dev make pkg-config libcurl4-openssl-dev libssl-dev lua5.4 liblua5.4-dev lua-cjson lua-argparse ca-certificates" ;;
    lua51) pkgs="$pkgs lua5.1 liblua5.1-0-dev" ;;
    lua53) pkgs="$pkgs lua5.3 liblua5.3-dev" ;;
    luajit) pkgs="$pkgs luajit2 libluajit2-5.1-dev" ;;
    test) pkgs="$pkgs lua-busted lua-socket lua-sec lua-check python3 openssl curl bsdutils" ;;
    rocks) pkgs="$pkgs luarocks unzip" ;;
    check) pkgs="$pkgs valgrind clang libclang-rt-14-dev" ;;
    hosts) pkgs="$pkgs nginx-light libnginx-mod-http-lua libnginx-mod-http-ndk neovim lua-luv" ;;
    bench) pkgs="$pkgs nginx-light libnginx-mod-http-echo" ;;
    *) echo "deps.sh: unknown group $group" >&2; exit 2 ;;
  esac
done
missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed'; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "deps.sh: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends $missing >/dev/null
else
  echo "deps.sh: missing Debian packages; run as root:" >&2
  echo "  apt-get install$missing" >&2
  exit 1
fi
