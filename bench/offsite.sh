#!/usr/bin/env bash
# Off-site backups against a local SeaweedFS (S3, SigV4), side by side in one run, on a table
# of ROWS rows (default 1 000 000; ROWS=10000000 for the memory check at 10M):
#   pricescan-ctl backup (with its off-site copy, encrypted with age)
#     vs  pricescan-ctl backup (off-site off)  then  rclone copy of the same directory
#   restore --only mysql of a backup that exists only off-site
#     vs  rclone copy of it back  then  restore --only mysql
# Prints wall times (median of 3), peak RSS of pricescan-ctl, and ratios.
source "$(dirname "$0")/lib.sh"
rows=${ROWS:-1000000}
(cd "$repo" && cargo build --release --locked -q)

start_s3 bench

bench_project benchoffsite
trap 'bench_cleanup; kill $weed_pid 2>/dev/null; wait $weed_pid 2>/dev/null; rm -rf "$s3dir"' EXIT
cd "$dir"
"$bin" -q setup --skip-images --backup-key >/dev/null 2>&1
"$bin" -q start -s mysql -s redis >/dev/null
mysql_c=$name-pricescan-mysql-1
sql() { docker exec "$mysql_c" sh -c "MYSQL_PWD=\"\$MYSQL_ROOT_PASSWORD\" mariadb -uroot pricescan -e \"$1\""; }
sql "CREATE TABLE prices (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40), shop VARCHAR(20), price DECIMAL(10,2), seen DATETIME)"
# Prices as they look in production: hashed item keys, many shops, scattered times; this
# compresses about 3:1, so the copy's size matters (uniform rows compress 100:1).
sql "INSERT INTO prices (item, shop, price, seen) SELECT MD5(seq), CONCAT('shop-', seq % 37), ROUND(RAND() * 1000, 2), NOW() - INTERVAL FLOOR(RAND() * 31536000) SECOND FROM seq_1_to_$rows"
export BACKUP_REMOTE_ENDPOINT=$endpoint BACKUP_REMOTE_ACCESS_KEY_ID=$key BACKUP_REMOTE_SECRET_ACCESS_KEY=$secret
remote=s3://bench/ours

timed() { /usr/bin/time -f '%e %M' -o /tmp/bench-offsite-time "$@" >/dev/null 2>/tmp/bench-offsite-err; cat /tmp/bench-offsite-time; }
newest() { ls backups | grep -v partial | sort | tail -1; }
walls_ours=() walls_seq=() peak=0
for _ in 1 2 3; do
  sleep 1
  read -r w m < <(BACKUP_REMOTE_URL=$remote timed "$bin" -v backup); walls_ours+=("$w"); [ "$m" -gt "$peak" ] && peak=$m
  sleep 1
  t0=$(now)
  BACKUP_REMOTE_URL= "$bin" -q backup
  id=$(newest)
  rclone copy "backups/$id" "s3:bench/rclone/$id"
  walls_seq+=("$(echo "$(now) - $t0" | bc)")
done
med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
t_ours=$(med "${walls_ours[@]}") t_seq=$(med "${walls_seq[@]}")
size=$(python3 -c "import json,sys; print(sum(f[\"size\"] for f in json.load(open(sys.argv[1]))[\"files\"]))" "backups/$(newest)/manifest.json")

# Restore: a backup that exists only off-site, against rclone pulling it first.
ours_id=$(BACKUP_REMOTE_URL=$remote "$bin" --json backup list --remote | python3 -c 'import json,sys; print([b["id"] for b in json.load(sys.stdin) if b["complete"]][-1])')
mv "backups/$ours_id" /tmp/bench-offsite-aside
read -r r_ours rm_ours < <(BACKUP_REMOTE_URL=$remote timed "$bin" restore "$ours_id" --only mysql --yes)
rm -rf "backups/$ours_id" /tmp/bench-offsite-aside
seq_id=$(rclone lsf s3:bench/rclone | tail -1 | tr -d /)
rm -rf "backups/$seq_id"
t0=$(now)
rclone copy "s3:bench/rclone/$seq_id" "backups/$seq_id"
BACKUP_REMOTE_URL= "$bin" -q restore "$seq_id" --only mysql --yes
r_seq=$(echo "$(now) - $t0" | bc)

printf '\n%-58s %9s %14s %8s\n' "$rows rows, backup of $((size / 1000000)) MB (median of 3)" "wall s" "peak RSS KiB" "ratio"
printf '%-58s %9s %14s %8.2f\n' "backup with off-site copy (age-encrypted, streamed)" "$t_ours" "$peak" "$(ratio "$t_ours" "$t_seq")"
printf '%-58s %9s %14s %8s\n' "backup (off-site off), then rclone copy" "$t_seq" "" 1
printf '%-58s %9s %14s %8.2f\n' "restore --only mysql from the off-site copy alone" "$r_ours" "$rm_ours" "$(ratio "$r_ours" "$r_seq")"
printf '%-58s %9.2f %14s %8s\n' "rclone copy back, then restore --only mysql" "$r_seq" "" 1
