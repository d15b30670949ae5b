#!/usr/bin/env bash
# Point-in-time recovery (DESIGN §13), side by side in one run:
#   1. Replay speed: the binlog events of ROWS inserted rows (default 200 000, 1 000 per
#      transaction) replayed by `pricescan-ctl restore --to` (the replay phase, as its
#      "replayed in" line times it), against `mysqlbinlog ... | mysql` by hand on the same
#      files, with the same --rewrite-db into a fresh schema.
#   2. The archiver's footprint: CPU and memory of pricescan-binlog (docker stats) while a
#      writer commits WRITES rows a second (default 200) for 20 s.
source "$(dirname "$0")/lib.sh"
rows=${ROWS:-200000}
writes=${WRITES:-200}
(cd "$repo" && cargo build --release --locked -q)
export BACKUP_PITR=true
bench_project benchpitr
cd "$dir"
"$bin" -q start -s mysql -s binlog >/dev/null
mysql_c=$name-pricescan-mysql-1
binlog_c=$name-pricescan-binlog-1
sql() { docker exec "$mysql_c" sh -c "MYSQL_PWD=\"\$MYSQL_ROOT_PASSWORD\" mariadb -uroot -N pricescan -e \"$1\""; }
sql "CREATE TABLE prices (id INT PRIMARY KEY, item VARCHAR(40), price DECIMAL(10,2), seen DATETIME)"
"$bin" -q backup --only mysql
base=$(ls backups | head -1)
read -r file pos < <(python3 -c "import json,sys; b=json.load(open('backups/$base/manifest.json'))['binlog']; print(b['file'], b['pos'])")
for ((from = 1; from <= rows; from += 1000)); do
  echo "INSERT INTO prices SELECT seq, CONCAT('item-', seq), seq / 100, NOW() FROM seq_${from}_to_$((from + 999));"
done | docker exec -i "$mysql_c" sh -c 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mariadb -uroot pricescan'
sleep 2
target=$(sql "SELECT UTC_TIMESTAMP()" | tr ' ' 'T')Z
files=$(docker exec "$binlog_c" sh -c "ls /archive | grep -E '[.][0-9]+\$'" | awk -v f="$file" '$0 >= f' | sed 's|^|/archive/|' | tr '\n' ' ')
size=$(docker exec "$binlog_c" sh -c "cat $files | wc -c")

# Ours: the replay phase as the restore times it ("replayed in 1.23s").
ours=$("$bin" restore --to "$target" --yes 2>&1 | sed -n 's/^replayed in \([0-9.]*\)s$/\1/p')
# By hand: the same files, the same rewriting, into a schema that holds the base (empty).
sql "SET sql_log_bin = 0; DROP DATABASE IF EXISTS byhand; CREATE DATABASE byhand; CREATE TABLE byhand.prices LIKE pricescan.prices"
stop=$(date -u -d "${target%Z} UTC + 1 second" '+%Y-%m-%d %H:%M:%S')
t0=$(now)
docker exec "$binlog_c" sh -c "TZ=UTC mysqlbinlog --start-position=$pos --stop-datetime='$stop' --database=pricescan --rewrite-db='pricescan->byhand' $files" \
  | docker exec -i "$mysql_c" sh -c 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mariadb -uroot --init-command="SET SESSION sql_log_bin=0"'
t1=$(now)
hand=$(echo "scale=2; ($t1 - $t0) / 1" | bc)
[ "$(sql "SELECT COUNT(*) FROM byhand.prices")" = "$rows" ] || { echo "by hand: wrong row count" >&2; exit 1; }
[ "$(sql "SELECT COUNT(*) FROM pricescan.prices")" = "$rows" ] || { echo "restore: wrong row count" >&2; exit 1; }
echo "replay of $rows rows ($((size / 1024 / 1024)) MiB of binlog): pricescan-ctl ${ours}s, mysqlbinlog | mysql by hand ${hand}s, ratio $(ratio "$ours" "$hand")"

# The archiver under a steady write load.
sql "CREATE TABLE w (seq INT, ts DATETIME)"
python3 - "$mysql_c" "$writes" <<'PY' &
import subprocess, sys, time
container, rate = sys.argv[1], int(sys.argv[2])
p = subprocess.Popen(["docker", "exec", "-i", container, "sh", "-c",
    'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mariadb -uroot pricescan'], stdin=subprocess.PIPE, text=True)
end, seq = time.time() + 20, 0
while time.time() < end:
    seq += 1
    p.stdin.write(f"INSERT INTO w VALUES ({seq}, NOW());\n"); p.stdin.flush()
    time.sleep(1 / rate)
p.stdin.close(); p.wait()
PY
writer=$!
sleep 5
for _ in 1 2 3; do docker stats --no-stream --format '{{.CPUPerc}} {{.MemUsage}}' "$binlog_c"; sleep 4; done \
  | awk '{cpu += $1; mem = $2} END {printf "archiver under '"$writes"' writes/s: %.1f%% CPU (mean of 3 samples), %s memory\n", cpu / NR, mem}'
wait "$writer"
