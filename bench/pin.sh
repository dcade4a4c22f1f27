# pin.sh (sourced by run.sh and https.sh): where each side of a bench runs.
# Unpinned, a client started right after another process exits (the floor)
# was found on nginx's CPU, where a loopback round trip costs about half as
# much, so whichever side ran next looked twice as fast as it is. With two
# CPUs or more (and util-linux's taskset), nginx's worker stays on CPU 0
# and the clients on CPU 1; otherwise both are left where they are.
#   $BENCH_ON_CLIENT cmd...          runs cmd on the clients' CPU
#   nginx -g "daemon off; $BENCH_NGINX_PIN"
if [ -z "${BENCH_PINNED:-}" ]; then
  BENCH_ON_CLIENT=""
  BENCH_NGINX_PIN=""
  if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    BENCH_ON_CLIENT="taskset -c 1"
    BENCH_NGINX_PIN="worker_cpu_affinity 01;"
  fi
  BENCH_PINNED=1
  export BENCH_ON_CLIENT BENCH_NGINX_PIN BENCH_PINNED
fi
