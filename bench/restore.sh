#!/usr/bin/env bash
# Restoring ROWS rows (default 1 000 000) under load through Nginx, side by side in one run:
#   pricescan-ctl restore ID --only mysql --yes
#   $BASELINE_BIN restore ... (when set: an older build, e.g. the stop/load/start path)
#   docker stop api; zstd -dc dump | docker exec -i mysql mysql; docker start api (by hand)
# For each: the command's wall time; the window in which GETs through Nginx failed (first to
# last failure) with the failed and served counts; and the window in which writes (POSTs)
# got 503 from Nginx's read-only mode. The stand-in API answers POSTs with 405, so a 405 is a
# write that reached the API, and a 503 one that was refused rather than lost.
source "$(dirname "$0")/lib.sh"
rows=${ROWS:-1000000}
(cd "$repo" && cargo build --release --locked -q)
command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq zstd >/dev/null; }
bench_project benchrestore
export API_DRAIN=1s
cd "$dir"
"$bin" -q start >/dev/null
mysql_c=$name-pricescan-mysql-1
api_c=$name-pricescan-api-1
sql() { docker exec "$mysql_c" sh -c "MYSQL_PWD=\"\$MYSQL_ROOT_PASSWORD\" mariadb -uroot pricescan -e \"$1\""; }
sql "CREATE TABLE prices (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40), shop VARCHAR(20), price DECIMAL(10,2), seen DATETIME)"
sql "INSERT INTO prices (item, shop, price, seen) SELECT CONCAT('item-', seq), 'shop-a', seq / 100, NOW() FROM seq_1_to_$rows"
"$bin" -q backup --only mysql
id=$(ls backups | head -1)
cp "backups/$id/mysql.sql.zst" /tmp/bench-restore.sql.zst

# load SECONDS: 2 GET threads and 1 POST thread through Nginx for at most SECONDS (or until
# the stop file appears); prints "get_failed get_ok get_window_s post_503 post_503_window_s".
load() {
  python3 - "$API_PORT" "$1" <<'PY'
import sys, threading, time, http.client, os
port, limit = int(sys.argv[1]), float(sys.argv[2])
stop_file = "/tmp/bench-restore.stop"
fails, refused, oks, lock = [], [], [0], threading.Lock()
end = time.time() + limit
def status(method):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request(method, "/api/version")
        code = c.getresponse().status
        c.close()
        return code
    except Exception:
        return 0
def getter():
    while time.time() < end and not os.path.exists(stop_file):
        t = time.time(); ok = status("GET") == 200
        with lock:
            if ok: oks[0] += 1
            else: fails.append(t)
        if not ok: time.sleep(0.01)
def poster():
    while time.time() < end and not os.path.exists(stop_file):
        t = time.time(); code = status("POST")
        if code == 503:
            with lock: refused.append(t)
        time.sleep(0.02)
threads = [threading.Thread(target=getter) for _ in range(2)] + [threading.Thread(target=poster)]
[t.start() for t in threads]; [t.join() for t in threads]
span = lambda xs: (max(xs) - min(xs)) if xs else 0.0
print(len(fails), oks[0], f"{span(fails):.2f}", len(refused), f"{span(refused):.2f}")
PY
}

# measure CMD...: runs CMD under the load; prints "wall_s" and what load printed.
measure() {
  rm -f /tmp/bench-restore.stop
  load 600 > /tmp/bench-restore.load & local loader=$!
  sleep 2
  local t0; t0=$(now)
  "$@" >/dev/null 2>&1
  local wall; wall=$(echo "$(now) - $t0" | bc)
  sleep 2; touch /tmp/bench-restore.stop; wait $loader
  echo "$wall $(cat /tmp/bench-restore.load)"
}

row() { printf '%-56s %7.2f %10s %7s %7s %10s\n' "$1" "$2" "$5" "$3" "$4" "$7"; }
header() { printf '\n%-56s %7s %10s %7s %7s %10s\n' "restore of $rows rows under load through Nginx" "wall s" "GET fail s" "failed" "served" "503 write s"; }
ours=$(measure "$bin" restore "$id" --only mysql --yes)
base=""
if [ -n "${BASELINE_BIN:-}" ]; then sleep 1; base=$(measure "$BASELINE_BIN" restore "$id" --only mysql --yes); fi
sleep 1
manual() {
  docker stop "$api_c" >/dev/null
  zstd -dc /tmp/bench-restore.sql.zst | docker exec -i "$mysql_c" sh -c 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysql -uroot -h127.0.0.1'
  docker start "$api_c" >/dev/null
  while [ "$(docker inspect --format '{{.State.Health.Status}}' "$api_c")" != healthy ]; do sleep 0.2; done
  # Nginx resolves the API's name only when it loads its configuration.
  docker exec "$name-pricescan-nginx-1" nginx -s reload
}
cli=$(measure manual)
rm -f /tmp/bench-restore.sql.zst /tmp/bench-restore.stop /tmp/bench-restore.load

header
row "pricescan-ctl restore --only mysql --yes" $ours
[ -z "$base" ] || row "baseline: $BASELINE_BIN" $base
row "docker stop api; zstd -dc | docker exec -i mysql; start" $cli
read -r _ _ _ win_ours _ _ <<<"$ours"; read -r _ _ _ win_cli _ _ <<<"$cli"
[ "$win_cli" = "0.00" ] || printf 'ratio of GET failure windows, ours / by hand: %s\n' "$(ratio "$win_ours" "$win_cli")"
echo "(pricescan-ctl's wall time includes its pre-restore backup, the hash check and the row-count checks)"
