#!/usr/bin/env bash
# On the swarm lab (tests/swarm/lab.sh, brought up when it is not), side by side in one run:
#   1. a deploy of the API (2 tasks, v1 <-> v2) under a GET load through Nginx (4 workers):
#      `pricescan-ctl deploy --image` vs `docker service update --image --update-order
#      start-first --update-failure-action rollback --detach` plus the same waiting, until the
#      swarm reports the update completed; failed requests and time, two rounds each;
#   2. a backup of ROWS rows (default 1 000 000) on the data node (node 2), reached through
#      ssh:// (the lab's sshd) vs through its local socket (SWARM_NODE_ENGINES).
source "$(dirname "$0")/lib.sh"
rows=${ROWS:-1000000}
(cd "$repo" && cargo build --release --locked -q)
swarm_project "benchswops$$"
n2=unix:///tmp/pslab/n2/d.sock
cd "$dir"
id2=$(docker -H $n2 info --format '{{.Swarm.NodeID}}')
# Every node's engine by its socket, for the deploy's image check on each node.
SWARM_NODE_ENGINES=$(for i in 1 2 3; do printf '%s=unix:///tmp/pslab/n%s/d.sock,' "$(docker -H unix:///tmp/pslab/n$i/d.sock info --format '{{.Swarm.NodeID}}')" "$i"; done)
export SWARM_NODE_ENGINES
"$bin" -q setup --target swarm --data-node "$id2" --skip-images >/dev/null
"$bin" -q start >/dev/null
"$bin" -q scale api=2 >/dev/null
api=${name}_pricescan-api
nginx_node=$(docker service ps -q --filter desired-state=running ${name}_pricescan-nginx | head -1 | xargs docker inspect --format '{{.NodeID}}')
host=$(docker node inspect "$nginx_node" --format '{{.Status.Addr}}')

# load SECONDS: 4 workers through Nginx on its node; prints "ok failed"
load() { load_at "$host" "$HTTP_PORT" "$1"; }
update_state() { docker service inspect "$api" --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}'; }
docker_update() {
  local deadline=$((SECONDS + 300))
  docker service update --detach -q --image "$1" --update-order start-first --update-failure-action rollback "$api" >/dev/null
  sleep 0.5
  until [ "$(update_state)" = completed ]; do
    [ $SECONDS -lt $deadline ] || { echo "docker service update did not complete: $(update_state)" >&2; return 1; }
    sleep 0.25
  done
}
# round LABEL CMD...: the command under 80 s of load; prints "label seconds ok failed"
round() {
  local label=$1; shift
  load 80 >/tmp/bench-swops-load & local lp=$!
  sleep 2
  local t0; t0=$(now)
  "$@" >/dev/null 2>/tmp/bench-swops-err || { cat /tmp/bench-swops-err >&2; echo "$label: $* failed" >&2; exit 1; }
  local took; took=$(echo "$(now) - $t0" | bc)
  wait $lp
  echo "$label $took $(cat /tmp/bench-swops-load)"
}
results=()
# Each round: ours v1 -> v2, then docker v2 -> v1.
for _ in 1 2; do
  results+=("$(round ours "$bin" -q deploy --no-backup --image pricescan-test/api:v2)")
  results+=("$(round docker docker_update pricescan-test/api:v1)")
done
"$bin" -q deploy --no-backup --image pricescan-test/api:v1 >/dev/null 2>&1 || true
printf '\n%-62s %8s %8s %8s\n' "deploy of 2 API tasks under load (4 workers, 80 s each)" "took s" "ok" "failed"
for r in "${results[@]}"; do
  read -r who took ok failed <<<"$r"
  case $who in
    ours) what="pricescan-ctl deploy --image" ;;
    docker) what="docker service update --image (start-first, rollback) + wait" ;;
  esac
  printf '%-62s %8.1f %8s %8s\n' "$what" "$took" "$ok" "$failed"
done
ours_t=$(printf '%s\n' "${results[@]}" | awk '$1=="ours"{s+=$2} END {print s/2}')
docker_t=$(printf '%s\n' "${results[@]}" | awk '$1=="docker"{s+=$2} END {print s/2}')
printf '%-62s %8.2f\n' "ratio of the mean times (ours / docker)" "$(ratio "$ours_t" "$docker_t")"

# Backups on the data node: ssh:// against the local socket, the same rows.
mysql_c=$(docker -H $n2 ps -q --filter "label=com.docker.swarm.service.name=${name}_pricescan-mysql" | head -1)
sql() { docker -H $n2 exec "$mysql_c" sh -c "MYSQL_PWD=\"\$(cat \"\$MYSQL_ROOT_PASSWORD_FILE\")\" mariadb -uroot pricescan -e \"$1\""; }
sql "CREATE TABLE prices (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40), shop VARCHAR(20), price DECIMAL(10,2), seen DATETIME)"
sql "INSERT INTO prices (item, shop, price, seen) SELECT CONCAT('item-', seq), 'shop-a', seq / 100, NOW() FROM seq_1_to_$rows"
read -r t_sock m_sock < <(SWARM_NODE_ENGINES="$id2=$n2" median3 "$bin" backup --only mysql)
read -r t_ssh m_ssh < <(SWARM_NODE_ENGINES="$id2=ssh://root@$(docker node inspect "$id2" --format '{{.Status.Addr}}')" median3 "$bin" backup --only mysql)
last=$(ls -d backups/*/ | tail -1)
size=$(du -sk "$last" | cut -f1)
counted=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["row_counts"]["prices"])' "$last/manifest.json")
printf '\n%-62s %8s %12s %8s\n' "backup of $counted rows on the data node ($((size / 1024)) MB compressed; median of 3)" "wall s" "peak RSS KiB" "ratio"
printf '%-62s %8s %12s %8s\n' "through its local socket (SWARM_NODE_ENGINES unix://)" "$t_sock" "$m_sock" "1.00"
printf '%-62s %8s %12s %8.2f\n' "through ssh:// (system ssh, docker system dial-stdio)" "$t_ssh" "$m_ssh" "$(ratio "$t_ssh" "$t_sock")"
