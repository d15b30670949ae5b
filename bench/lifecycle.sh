#!/usr/bin/env bash
# Side by side in one run, on the same 4-service stack (api, mysql, redis, nginx):
#   status            vs docker-compose ps, and vs docker ps (which probes nothing)
#   no-op start       vs no-op docker-compose up -d
#   cold start        vs docker-compose up -d plus waiting until every service is healthy
# Prints medians and ratios. Needs the test images (tests/images/build.sh) and a release build.
source "$(dirname "$0")/lib.sh"
runs=${RUNS:-10}
(cd "$repo" && cargo build --release --locked -q)
bench_project lifecycle
cd "$dir"

t0=$(now); "$bin" -q start >/dev/null; cold_ours=$(echo "($(now) - $t0) * 1000" | bc)
noop_ours=$(median_ms "$runs" "$bin" -q start)
status_ours=$(median_ms "$runs" "$bin" status)
status_stats=$(median_ms 3 "$bin" status --stats)
ps_compose=$(median_ms "$runs" compose ps)
ps_docker=$(median_ms "$runs" docker ps)

# The same stack, created by docker-compose from scratch (data volumes kept, as in ours).
docker ps -aq --filter "label=com.docker.compose.project=$name" | xargs -r docker rm -f >/dev/null
t0=$(now); compose up -d >/tmp/bench-compose-up.log 2>&1 || { cat /tmp/bench-compose-up.log; exit 1; }; wait_all_healthy; cold_compose=$(echo "($(now) - $t0) * 1000" | bc)
noop_compose=$(median_ms "$runs" compose up -d)

row() { printf '%-38s %10.1f %10.1f %8.2f\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
printf '\n%-38s %10s %10s %8s\n' "measure (ms; median of $runs)" "ours" "other" "ratio"
row "status vs docker-compose ps" "$status_ours" "$ps_compose"
row "status vs docker ps" "$status_ours" "$ps_docker"
row "status --stats vs docker ps" "$status_stats" "$ps_docker"
row "no-op start vs docker-compose up -d" "$noop_ours" "$noop_compose"
row "cold start to healthy vs up -d + wait" "$cold_ours" "$cold_compose"
