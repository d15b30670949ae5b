#!/usr/bin/env bash
# Operator care, side by side with the docker CLI in one run:
# - `doctor` on a healthy stack against the same facts gathered by hand with the docker CLI
#   (published ports, log config of every container, networks, engine version and info);
# - `cleanup --yes` of N dangling images against `docker image prune -f` of as many.
source "$(dirname "$0")/lib.sh"
n=${DANGLING:-10}
(cd "$repo" && cargo build --release --locked -q)
bench_project benchcare
cd "$dir"
"$bin" -q start >/dev/null
"$bin" -q backup >/dev/null
wait_all_healthy

by_hand() {
  local ids; ids=$(docker ps -q --filter "label=com.docker.compose.project=$name")
  docker ps --filter "label=com.docker.compose.project=$name" --format '{{.Names}} {{.Ports}}'
  docker inspect --format '{{.Name}} {{json .HostConfig.LogConfig}} {{.Config.Labels}}' $ids
  docker network inspect "${name}_frontend" "${name}_backend"
  docker version; docker info
  stat -c '%a %U' .env.prod; df -h backups /var/lib/docker; ls backups
}
ours=$(median_ms 5 "$bin" doctor)
theirs=$(median_ms 5 by_hand)

# Dangling images: one tiny build per round, its tag moved on by the next.
dangle() {
  for i in $(seq "$n"); do
    printf 'FROM pricescan-test/api:v1\nLABEL round=%s.%s\n' "$i" "$RANDOM" | docker build -q -t "$name-dangle:x" - >/dev/null 2>&1
  done
  docker rmi "$name-dangle:x" >/dev/null
}
timed_once() { local t0; t0=$(now); "$@" >/dev/null 2>&1; echo "($(now) - $t0) * 1000" | bc; }
dangle; clean_ours=$(timed_once "$bin" cleanup --yes)
dangle; clean_theirs=$(timed_once docker image prune -f)

printf '\n%-52s %12s %12s %8s\n' "" "pricescan" "docker CLI" "ratio"
printf '%-52s %10.1f ms %10.1f ms %8s\n' "doctor vs the same facts by hand (median of 5)" "$ours" "$theirs" "$(ratio "$ours" "$theirs")"
printf '%-52s %10.1f ms %10.1f ms %8s\n' "cleanup --yes vs docker image prune -f ($n dangling)" "$clean_ours" "$clean_theirs" "$(ratio "$clean_ours" "$clean_theirs")"
