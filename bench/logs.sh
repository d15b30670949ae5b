#!/usr/bin/env bash
# One container with 300 000 log lines, read side by side in one run:
#   pricescan-ctl logs -s X --no-color   vs   docker logs X   vs   docker-compose logs X
# Prints wall time (median) and peak RSS of each, and the ratios to docker logs.
source "$(dirname "$0")/lib.sh"
runs=${RUNS:-5}
lines=${LINES_TOTAL:-300000}
(cd "$repo" && cargo build --release --locked -q)
name=benchlogs
dir=$(mktemp -d /tmp/pricescan-bench-logs.XXXXXX)
trap 'bench_cleanup' EXIT
cat > "$dir/logs.yml" <<YAML
services:
  chatty:
    image: pricescan-test/base:bookworm
    command: ["python3", "-c", "import sys\nw = sys.stdout.write\nfor i in range($lines): w('%d GET /api/prices?q=item%d 200 0.0%d\\\\n' % (i, i, i % 97))"]
    restart: "no"
YAML
cd "$dir"
export COMPOSE_PROJECT_NAME=$name
"$bin" -q -f logs.yml setup --skip-images >/dev/null
"$bin" -q -f logs.yml start --no-wait >/dev/null
container=$name-chatty-1
while [ "$(docker inspect --format '{{.State.Status}}' "$container")" != exited ]; do sleep 0.2; done

measure() { # label cmd... → "median_ms peak_kb lines"
  local times=() peak=0 count
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' -o /tmp/bench-logs-time "$@" 2>/dev/null | wc -l > /tmp/bench-logs-count
    local out; out=$(tail -1 /tmp/bench-logs-time)
    times+=("$(echo "${out% *} * 1000" | bc)")
    [ "${out#* }" -gt "$peak" ] && peak=${out#* }
  done
  count=$(cat /tmp/bench-logs-count)
  echo "$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') $peak $count"
}
read -r t_ours m_ours n_ours < <(measure "$bin" -f logs.yml logs -s chatty --no-color)
read -r t_docker m_docker n_docker < <(measure docker logs "$container")
read -r t_compose m_compose n_compose < <(measure docker-compose -f logs.yml -p "$name" logs --no-color chatty)

printf '\n%-28s %10s %12s %10s %8s\n' "reader ($lines lines)" "wall ms" "peak RSS KiB" "lines" "x docker"
printf '%-28s %10.0f %12s %10s %8.2f\n' "pricescan-ctl logs" "$t_ours" "$m_ours" "$n_ours" "$(ratio "$t_ours" "$t_docker")"
printf '%-28s %10.0f %12s %10s %8.2f\n' "docker logs" "$t_docker" "$m_docker" "$n_docker" 1
printf '%-28s %10.0f %12s %10s %8.2f\n' "docker-compose logs" "$t_compose" "$m_compose" "$n_compose" "$(ratio "$t_compose" "$t_docker")"
