#!/usr/bin/env bash
# The recovery point of point-in-time recovery (DESIGN §13) under a steady write load of
# WRITES rows a second (default 200), each acknowledged to the writer before the next:
#   1. MySQL killed and its volume removed: restore --to from the local archive.
#   2. The whole host lost (MySQL, the archiver, the shipper, every volume, the local backups
#      and the journal): restore --to from the bucket alone (SeaweedFS), shipped every
#      BACKUP_PITR_SHIP_INTERVAL (default 10 s).
# The RPO is the time between the last write the writer saw acknowledged and the last write
# the restore brought back. Goals: 1 ≤ 1 s, 2 ≤ the interval + 2 s.
source "$(dirname "$0")/lib.sh"
writes=${WRITES:-200}
(cd "$repo" && cargo build --release --locked -q)
start_s3 rpo
export BACKUP_PITR=true BACKUP_REMOTE_URL=s3://rpo/prod BACKUP_REMOTE_ENDPOINT=$endpoint \
  BACKUP_REMOTE_ACCESS_KEY_ID=$key BACKUP_REMOTE_SECRET_ACCESS_KEY=$secret
shipper=""
finish() { if [ -n "$shipper" ]; then kill -9 "$shipper" 2>/dev/null || true; fi; bench_cleanup; kill $weed_pid 2>/dev/null; wait $weed_pid 2>/dev/null; rm -rf "$s3dir"; }
bench_project benchrpo
trap finish EXIT
cd "$dir"
"$bin" -q setup --skip-images --backup-key >/dev/null 2>&1
mysql_c=$name-pricescan-mysql-1
sql() { docker exec "$mysql_c" sh -c "MYSQL_PWD=\"\$MYSQL_ROOT_PASSWORD\" mariadb -uroot -N pricescan -e \"$1\""; }
up() {
  "$bin" -q start -s mysql -s binlog >/dev/null
}

# write ACKS: inserts (seq, time) at $writes a second, each followed by a SELECT whose answer
# is the acknowledgement; writes "seq unix_time" of each acknowledged row to ACKS until
# MySQL goes away.
write() {
  python3 - "$mysql_c" "$writes" "$1" <<'PY'
import subprocess, sys, time
container, rate, acks = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "w")
p = subprocess.Popen(["docker", "exec", "-i", container, "sh", "-c",
    'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mariadb -uroot -N --unbuffered pricescan'],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
seq, due = 0, time.time()
try:
    while True:
        seq += 1
        p.stdin.write(f"INSERT INTO w VALUES ({seq}, UTC_TIMESTAMP(6)); SELECT {seq};\n")
        p.stdin.flush()
        if p.stdout.readline().strip() != str(seq):
            break
        acks.write(f"{seq} {time.time():.3f}\n"); acks.flush()
        due += 1 / rate
        time.sleep(max(0, due - time.time()))
except (BrokenPipeError, OSError):
    pass
PY
}

# rpo ACKS: seconds between the last acknowledged write and the last one restored.
rpo() {
  local back; back=$(sql "SELECT COALESCE(MAX(seq), 0) FROM w")
  awk -v back="$back" '$1 == back {t = $2} {last = $2; n = $1} END {
    printf "%.2f s (row %d of %d acknowledged came back)", last - t, back, n }' "$1"
}

# restore_latest ACKS: restore --to the time of the last acknowledged write, as an operator
# would after a loss; when the archive ends before it, to the end the refusal names.
restore_latest() {
  local loss out named
  loss=$(date -u -d "@$(tail -n 1 "$1" | cut -d' ' -f2)" +%Y-%m-%dT%H:%M:%SZ)
  out=$("$bin" restore --to "$loss" --yes 2>&1) && return 0
  named=$(echo "$out" | sed -n 's/^hint: restore to \([^ ]*\) or earlier.*/\1/p')
  [ -n "$named" ] || { echo "$out" >&2; return 1; }
  "$bin" -q restore --to "$named" --yes >/dev/null
}

lose_mysql_volume() {
  local volume; volume=$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/var/lib/mysql"}}{{.Name}}{{end}}{{end}}' "$mysql_c")
  docker rm -f "$mysql_c" >/dev/null
  docker volume rm "$volume" >/dev/null
}

# 1. The local archive.
up
sql "CREATE TABLE w (seq INT PRIMARY KEY, ts DATETIME(6))"
"$bin" -q backup --only mysql >/dev/null
write /tmp/bench-rpo-local & writer=$!
sleep 15
docker kill "$mysql_c" >/dev/null
wait $writer || true
lose_mysql_volume
up
restore_latest /tmp/bench-rpo-local
echo "RPO from the local archive after MySQL's volume is lost, $writes writes/s: $(rpo /tmp/bench-rpo-local)"

# 2. The bucket alone. A fresh MySQL numbers its binary log from 1 again: start over with
# a new stack and a new prefix, as an operator would on a new server.
cd /
bench_cleanup
bench_project benchrpo2
trap finish EXIT
export BACKUP_REMOTE_URL=s3://rpo/second
cd "$dir"
"$bin" -q setup --skip-images --backup-key >/dev/null 2>&1
mysql_c=$name-pricescan-mysql-1
up
sql "CREATE TABLE w (seq INT PRIMARY KEY, ts DATETIME(6))"
"$bin" -q backup --only mysql >/dev/null
"$bin" -q backup archive >/dev/null 2>&1 & shipper=$!
write /tmp/bench-rpo-bucket & writer=$!
sleep 35
kill -9 $shipper
docker ps -q --filter "label=com.docker.compose.project=$name" | xargs -r docker kill >/dev/null || true
wait $writer || true
docker ps -aq --filter "label=com.docker.compose.project=$name" | xargs -r docker rm -f >/dev/null
docker volume ls -q --filter "label=com.docker.compose.project=$name" | xargs -r docker volume rm >/dev/null
rm -rf backups .pricescan/binlog-shipped.json
up
"$bin" backup list --remote | grep '^off-site' # the window the bucket alone tells
restore_latest /tmp/bench-rpo-bucket
echo "RPO from the bucket alone after losing the host, shipped every ${BACKUP_PITR_SHIP_INTERVAL:-10s}, $writes writes/s: $(rpo /tmp/bench-rpo-bucket)"
