#!/usr/bin/env bash
# `pricescan-ctl loadtest` against wrk (Debian) on the same target, side by side in one run:
# GET /api/version through the stack's Nginx, closed model, the same connections and
# duration, alternated three times. Reports throughput, p50 and p99 and their ratios
# (goal: throughput >= 0.95x wrk's, p50 and p99 within 10 %). oha is not packaged for
# Debian and would have to be built from crates.io; it is left out.
source "$(dirname "$0")/lib.sh"
(cd "$repo" && cargo build --release --locked -q)
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bench_project benchloadtest
export COMPOSE_PROFILES=
cd "$dir"
"$bin" -q start >/dev/null
url="http://127.0.0.1:$HTTP_PORT/api/version"
conns=${CONNS:-8}
secs=${SECS:-15}

ours() {
  "$bin" --json loadtest "$url" -c "$conns" -d "${secs}s" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); l=r["latency"]; print(r["throughput_rps"], l["p50_ms"], l["p99_ms"], r["errors"])'
}
theirs() {
  wrk -t2 -c"$conns" -d"${secs}s" --latency "$url" | python3 -c '
import re, sys
t = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
def ms(p):
    v, unit = re.search(p + r"%\s+([\d.]+)(us|ms|s)", t).groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(rps, ms("50"), ms("99"), errors.group(1) if errors else 0)'
}

ours >/dev/null   # warm both paths once
printf '\n%-28s %10s %10s %10s %8s\n' "GET /api/version, c=$conns, ${secs}s" "req/s" "p50 ms" "p99 ms" "errors"
for round in 1 2 3; do
  read -r o_rps o_p50 o_p99 o_err < <(ours)
  read -r w_rps w_p50 w_p99 w_err < <(theirs)
  printf '%-28s %10.1f %10.2f %10.2f %8s\n' "round $round: loadtest" "$o_rps" "$o_p50" "$o_p99" "$o_err"
  printf '%-28s %10.1f %10.2f %10.2f %8s\n' "round $round: wrk" "$w_rps" "$w_p50" "$w_p99" "$w_err"
  printf '%-28s %10s %10s %10s\n' "round $round: ratio" "$(ratio "$o_rps" "$w_rps")x" "$(ratio "$o_p50" "$w_p50")x" "$(ratio "$o_p99" "$w_p99")x"
done
