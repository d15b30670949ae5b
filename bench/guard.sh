#!/usr/bin/env bash
# The guard (DESIGN §14) against autoheal's method, on one hung API each:
#   - guard: `pricescan-ctl guard` with its defaults heals it (start-first behind Nginx);
#   - autoheal: what willfarrell/autoheal does, a plain `docker restart` of the container once
#     the engine marks it unhealthy (autoheal looks every 5 s).
# For each: the time from the hang to serving again through Nginx (150 s at most), and the
# requests that failed under a 4-worker load through Nginx. A restarted container may come
# back on another address, which Nginx (it resolved the upstream at its last reload) does not
# follow: the script says so when it happens. Then the guard's idle footprint:
# CPU and peak RSS over IDLE_SECONDS (600 unless set).
# Usage: bash bench/guard.sh   (builds target/release/pricescan-ctl first)
source "$(dirname "$0")/lib.sh"
idle=${IDLE_SECONDS:-600}
(cd "$repo" && cargo build --release --locked -q)
bench_project guard
(cd "$dir" && "$bin" -q start >/dev/null)
wait_all_healthy

api() { docker ps -q --filter "label=com.docker.compose.project=$name" --filter "label=com.docker.compose.service=pricescan-api" | head -1; }
hang() { docker kill -s STOP "$1" >/dev/null; docker exec "$1" pkill -STOP -f gunicorn; }
serving() { curl -fs -m 1 -o /dev/null "http://127.0.0.1:$HTTP_PORT/api/version"; }

# recover LABEL: hangs the API under load and reports the seconds until a request through
# Nginx succeeds again, and the load's failures.
recover() {
  local label=$1 id t0 t1 load
  id=$(api)
  load_at 127.0.0.1 "$HTTP_PORT" 150 > /tmp/bench-guard-load &
  load=$!
  sleep 5
  t0=$(now)
  hang "$id"
  sleep 2
  local deadline=$((SECONDS + 150))
  until serving || [ $SECONDS -ge $deadline ]; do sleep 0.2; done
  t1=$(now)
  wait $load
  read -r ok failed < /tmp/bench-guard-load
  if serving; then
    printf '%-9s recovered in %6.1f s   requests: %6d ok, %4d failed\n' "$label" "$(echo "$t1 - $t0" | bc)" "$ok" "$failed"
  else
    printf '%-9s NOT serving 150 s after the hang   requests: %6d ok, %4d failed\n' "$label" "$ok" "$failed"
    echo "          Nginx sends to $(docker logs --tail 1 "$name-pricescan-nginx-1" 2>&1 | grep -o '"upstream":"[^"]*"'); the API now has $(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$(api)")"
  fi
}

autoheal() {
  local id=$1
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = unhealthy ]; do sleep 5; done
  docker restart -t 10 "$id" >/dev/null
}

echo "== a hung API (every Gunicorn process stopped), healed under load =="
(cd "$dir" && exec "$bin" guard >/tmp/bench-guard.log 2>&1) &
guard=$!
sleep 3
recover guard
grep -o 'incident .*resolved.*' /tmp/bench-guard.log | tail -1 || true
"$bin" --project-dir "$dir" --json incidents | python3 -c 'import json,sys; i=json.load(sys.stdin)[0]; print("the guard records: time to recover", i["recovery_seconds"], "s; steps:", "; ".join(s["what"] + (" (%s s)" % s["took_seconds"] if s["took_seconds"] else "") for s in i["timeline"]))'

kill -TERM $guard; wait $guard || true
wait_all_healthy
autoheal "$(api)" &
recover autoheal

echo "== the guard idle for ${idle} s =="
(cd "$dir" && exec "$bin" guard >/tmp/bench-guard-idle.log 2>&1) &
guard=$!
sleep 5
ticks() { awk '{print $14 + $15}' "/proc/$guard/stat"; }
hz=$(getconf CLK_TCK)
c0=$(ticks); peak=0; end=$((SECONDS + idle))
while [ $SECONDS -lt $end ]; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$guard/status"); [ "$rss" -gt "$peak" ] && peak=$rss
  sleep 10
done
c1=$(ticks)
kill -TERM $guard; wait $guard || true
printf 'guard idle: %.3f %% of a core, peak RSS %.1f MiB\n' "$(echo "($c1 - $c0) * 100 / $hz / $idle" | bc -l)" "$(echo "$peak / 1024" | bc -l)"
