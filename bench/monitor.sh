#!/usr/bin/env bash
# CPU used by the live dashboard at a 1 s interval with 10 containers, side by side with
# `docker stats` (the CLI's own live view) on the same containers, in one run. Both run
# under tmux as on an operator's terminal; CPU comes from /proc (utime + stime).
source "$(dirname "$0")/lib.sh"
secs=${SECONDS_MEASURED:-30}
(cd "$repo" && cargo build --release --locked -q)
command -v tmux >/dev/null || { echo "bench/monitor.sh needs tmux" >&2; exit 1; }
name=benchmon
dir=$(mktemp -d /tmp/pricescan-bench-mon.XXXXXX)
trap 'tmux kill-session -t benchmon-ours 2>/dev/null; tmux kill-session -t benchmon-docker 2>/dev/null; bench_cleanup' EXIT
{
  echo "services:"
  for i in $(seq 1 10); do
    printf '  c%s:\n    image: pricescan-test/base:bookworm\n    command: ["sleep", "3600"]\n    stop_signal: SIGKILL\n' "$i"
  done
} > "$dir/mon.yml"
cd "$dir"
export COMPOSE_PROJECT_NAME=$name
"$bin" -q -f mon.yml setup --skip-images >/dev/null
"$bin" -q -f mon.yml start >/dev/null

ticks=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() { # session command → percent of one core over $secs
  tmux new-session -d -s "$1" -x 160 -y 45 "$2"
  sleep 3
  local pid; pid=$(pgrep -n -f "$3")
  local before; before=$(cpu_of "$pid")
  sleep "$secs"
  local after; after=$(cpu_of "$pid")
  tmux kill-session -t "$1"
  echo "scale=2; ($after - $before) * 100 / $ticks / $secs" | bc
}
ours=$(measure benchmon-ours "$bin -p $name --project-dir $dir -f mon.yml monitor --interval 1s" "pricescan-ctl -p $name --project-dir")
theirs=$(measure benchmon-docker "docker stats $(docker ps -q --filter label=com.docker.compose.project=$name | tr '\n' ' ')" "docker stats")

printf '\n%-40s %12s\n' "live view, 10 containers, ${secs}s" "% of a core"
printf '%-40s %12s\n' "pricescan-ctl monitor --interval 1s" "$ours"
printf '%-40s %12s\n' "docker stats" "$theirs"
