#!/usr/bin/env bash
# Deploys judged by live traffic (DESIGN §15), under the same load loop through Nginx (4
# workers on 127.0.0.1): how many requests a bad release answered before it was switched
# back (goal: no more than it answers in the first 10 s of the window), and how long a good
# deploy takes with the analysis (DEPLOY_ANALYSIS=60s) against one without (--analysis 0).
source "$(dirname "$0")/lib.sh"
(cd "$repo" && cargo build --release --locked -q)
bench_project benchanalysis
export COMPOSE_PROFILES= API_DRAIN=2s DEPLOY_ANALYSIS=60s
cd "$dir"
"$bin" -q start >/dev/null

load() { load_at 127.0.0.1 "$API_PORT" "$1"; }

# bad IMAGE: deploys IMAGE under load; prints "answered watched_s rate_per_s failed_seen metric".
bad() {
  load 45 > /tmp/bench-analysis-load & local lp=$!
  sleep 3
  "$bin" --json deploy --image "$1" --no-backup > /tmp/bench-analysis.json 2>/dev/null || true
  wait $lp
  local ok failed; read -r ok failed < /tmp/bench-analysis-load
  python3 - "$failed" <<'PY'
import json, sys
r = json.load(open("/tmp/bench-analysis.json"))["analysis"]
n, secs = r["release"]["requests"], r["watched_s"]
print(n, secs, round(n / secs, 1) if secs else 0, sys.argv[1], r["breach"]["metric"].replace(" ", "_"))
PY
}

printf '\n%-28s %9s %9s %10s %14s %12s %14s\n' "bad release under load" "answered" "watched" "req/s" "first 10 s" "verdict" "5xx clients saw"
for image in flaky slow; do
  read -r n secs rate failed metric < <(bad "pricescan-test/api:$image")
  first10=$(echo "$rate * 10" | bc)
  printf '%-28s %9s %8ss %10s %14.0f %12s %14s\n' "$image" "$n" "$secs" "$rate" "$first10" "$metric" "$failed"
done

# good IMAGE ANALYSIS: seconds the deploy command took under load.
good() {
  load 100 > /tmp/bench-analysis-load & local lp=$!
  sleep 3
  local t0; t0=$(now)
  "$bin" -q deploy --image "$1" --no-backup --analysis "$2" >/dev/null
  local took; took=$(echo "$(now) - $t0" | bc)
  kill $lp 2>/dev/null; wait $lp 2>/dev/null || true
  echo "$took"
}
with=$(good pricescan-test/api:v2 60s)
without=$(good pricescan-test/api:v1 0)
printf '\n%-44s %10s\n' "a passing deploy under load (no backup)" "command"
printf '%-44s %9.1fs\n' "with the analysis (DEPLOY_ANALYSIS=60s)" "$with"
printf '%-44s %9.1fs\n' "without (--analysis 0, as before)" "$without"
echo "ratio: $(ratio "$with" "$without")x (the window is the difference, by design)"
