#!/usr/bin/env bash
# Restoring ROWS rows (default 1 000 000) under a read load through Nginx, side by side in one
# run:
#   pricescan-ctl restore ID --only mysql --yes
#   docker stop api; zstd -dc dump | docker exec -i mysql mysql; docker start api (by hand)
# For each: the command's wall time, and the window in which GETs through Nginx failed (first
# to last failure) with the number of failed and served requests. The stand-in API has no
# write endpoint, so writes are not measured separately: during the window they fail as GETs do.
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

# load SECONDS: GETs through Nginx from 2 threads for at most SECONDS (or until the stop file
# appears); prints "failed ok window_s".
load() {
  python3 - "$API_PORT" "$1" <<'PY'
import sys, threading, time, http.client, os
port, limit = int(sys.argv[1]), float(sys.argv[2])
stop_file = "/tmp/bench-restore.stop"
fails, oks, lock = [], [0], threading.Lock()
end = time.time() + limit
def worker():
    while time.time() < end and not os.path.exists(stop_file):
        t = time.time()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/api/version")
            ok = c.getresponse().status == 200
            c.close()
        except Exception:
            ok = False
        with lock:
            if ok: oks[0] += 1
            else: fails.append(t)
        if not ok: time.sleep(0.01)
threads = [threading.Thread(target=worker) for _ in range(2)]
[t.start() for t in threads]; [t.join() for t in threads]
window = (max(fails) - min(fails)) if fails else 0.0
print(len(fails), oks[0], f"{window:.2f}")
PY
}

# measure CMD...: runs CMD under the load; prints "wall_s failed ok window_s".
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

read -r w_ours f_ours o_ours win_ours < <(measure "$bin" restore "$id" --only mysql --yes)
sleep 1
manual() {
  docker stop "$api_c" >/dev/null
  zstd -dc /tmp/bench-restore.sql.zst | docker exec -i "$mysql_c" sh -c 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysql -uroot -h127.0.0.1'
  docker start "$api_c" >/dev/null
  while [ "$(docker inspect --format '{{.State.Health.Status}}' "$api_c")" != healthy ]; do sleep 0.2; done
  # Nginx resolves the API's name only when it loads its configuration.
  docker exec "$name-pricescan-nginx-1" nginx -s reload
}
read -r w_cli f_cli o_cli win_cli < <(measure manual)
rm -f /tmp/bench-restore.sql.zst /tmp/bench-restore.stop /tmp/bench-restore.load

printf '\n%-56s %8s %10s %8s %8s\n' "restore of $rows rows under GET load through Nginx" "wall s" "GET fail s" "failed" "served"
printf '%-56s %8.2f %10s %8s %8s\n' "pricescan-ctl restore --only mysql --yes" "$w_ours" "$win_ours" "$f_ours" "$o_ours"
printf '%-56s %8.2f %10s %8s %8s\n' "docker stop api; zstd -dc | docker exec -i mysql; start" "$w_cli" "$win_cli" "$f_cli" "$o_cli"
printf 'ratio of GET failure windows: %s\n' "$(ratio "$win_ours" "$win_cli")"
echo "(pricescan-ctl's wall time includes its pre-restore backup, the hash check and the row-count check)"
