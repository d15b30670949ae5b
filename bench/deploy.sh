#!/usr/bin/env bash
# Under the same load loop through Nginx (4 workers on 127.0.0.1, bounded in time), side by
# side in one run: `pricescan-ctl deploy` of a new API image vs
# `docker-compose up -d --force-recreate --no-deps pricescan-api`. Reports failed requests
# and the time from command start to the new version serving.
source "$(dirname "$0")/lib.sh"
(cd "$repo" && cargo build --release --locked -q)
bench_project benchdeploy
export COMPOSE_PROFILES= API_DRAIN=2s
cd "$dir"
"$bin" -q start >/dev/null

# load SECONDS: 4 workers through Nginx's 127.0.0.1 listener; prints "ok failed"
load() { load_at 127.0.0.1 "$API_PORT" "$1"; }
# until_version V: seconds from now until /api/version reports V
until_version() {
  local t0; t0=$(now)
  local deadline=$((SECONDS + 120))
  until curl -fsS "http://127.0.0.1:$API_PORT/api/version" 2>/dev/null | grep -q "\"$1\""; do
    [ $SECONDS -lt $deadline ] || { echo 999; return; }
    sleep 0.05
  done
  echo "$(now) - $t0" | bc
}

load 30 > /tmp/bench-deploy-ours & lp=$!
sleep 2; t0=$(now)
"$bin" -q deploy --image pricescan-test/api:v2 --no-backup &
dp=$!
serving_ours=$(until_version v2); wait $dp; ours_total=$(echo "$(now) - $t0" | bc)
wait $lp; read -r ok_ours failed_ours < /tmp/bench-deploy-ours

# The same stack back on v1, then compose recreates the API under the same load.
"$bin" -q deploy --image pricescan-test/api:v1 --no-backup
load 30 > /tmp/bench-deploy-compose & lp=$!
sleep 2; t0=$(now)
# Compose does not reload Nginx, which would keep the old container's address; an operator
# reloads it right after, so the comparison does too.
nginx_c=$(docker ps -q --filter "label=com.docker.compose.project=$name" --filter label=com.docker.compose.service=pricescan-nginx)
(API_IMAGE=pricescan-test/api:v2 compose up -d --force-recreate --no-deps pricescan-api >/dev/null 2>&1; docker exec "$nginx_c" nginx -s reload) &
cp=$!
serving_compose=$(until_version v2); wait $cp; compose_total=$(echo "$(now) - $t0" | bc)
wait $lp; read -r ok_compose failed_compose < /tmp/bench-deploy-compose

printf '\n%-52s %8s %8s %12s %10s\n' "v1 -> v2 under load (4 workers, 30 s)" "ok" "failed" "v2 serving" "command"
printf '%-52s %8s %8s %11.1fs %9.1fs\n' "pricescan-ctl deploy --image (no backup)" "$ok_ours" "$failed_ours" "$serving_ours" "$ours_total"
printf '%-52s %8s %8s %11.1fs %9.1fs\n' "docker-compose up -d --force-recreate + nginx reload" "$ok_compose" "$failed_compose" "$serving_compose" "$compose_total"
echo "(the new API container's health check needs about 3 s: interval 3s)"
