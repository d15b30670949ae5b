#!/usr/bin/env bash
# On a table of ROWS rows (default 1 000 000), side by side in one run:
#   pricescan-ctl backup --only mysql   vs   docker exec mysqldump ... | zstd -3 > file
#   pricescan-ctl restore --only mysql  vs   zstd -dc file | docker exec -i mysql
# Prints wall time and peak RSS (of pricescan-ctl; of the docker CLI for the other side).
source "$(dirname "$0")/lib.sh"
rows=${ROWS:-1000000}
(cd "$repo" && cargo build --release --locked -q)
command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq zstd >/dev/null; }
bench_project benchbackup
export COMPOSE_PROFILES=
cd "$dir"
"$bin" -q start -s mysql -s redis >/dev/null
mysql_c=$name-pricescan-mysql-1
sql() { docker exec "$mysql_c" sh -c "MYSQL_PWD=\"\$MYSQL_ROOT_PASSWORD\" mariadb -uroot pricescan -e \"$1\""; }
sql "CREATE TABLE prices (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40), shop VARCHAR(20), price DECIMAL(10,2), seen DATETIME)"
sql "INSERT INTO prices (item, shop, price, seen) SELECT CONCAT('item-', seq), 'shop-a', seq / 100, NOW() FROM seq_1_to_$rows"
flags="--single-transaction --quick --routines --events --triggers --hex-blob --no-tablespaces"

read -r t_ours m_ours < <(median3 "$bin" backup --only mysql)
raw_sql=$(zstd -dc "$(ls -d backups/*/ | head -1)mysql.sql.zst" | wc -c)
read -r t_cli m_cli < <(median3 sh -c "docker exec $mysql_c sh -c 'MYSQL_PWD=\"\$MYSQL_ROOT_PASSWORD\" exec mysqldump -uroot -h127.0.0.1 $flags --databases pricescan' | zstd -3 -q > /tmp/bench-dump.sql.zst")
id=$(ls backups | head -1)
read -r r_ours rm_ours < <(timed "$bin" restore "$id" --only mysql --yes)
load_only=$("$bin" -v restore "$id" --only mysql --yes 2>&1 | sed -n 's/.*loading took \([0-9.]*\)s.*/\1/p')
read -r r_cli rm_cli < <(timed sh -c "zstd -dc /tmp/bench-dump.sql.zst | docker exec -i $mysql_c sh -c 'MYSQL_PWD=\"\$MYSQL_ROOT_PASSWORD\" exec mysql -uroot -h127.0.0.1'")
rm -f /tmp/bench-dump.sql.zst

printf '\n%-44s %9s %14s %8s\n' "$rows rows, $((raw_sql / 1000000)) MB of SQL (backup: median of 3)" "wall s" "peak RSS KiB" "ratio"
printf '%-44s %9s %14s %8.2f\n' "pricescan-ctl backup --only mysql" "$t_ours" "$m_ours" "$(ratio "$t_ours" "$t_cli")"
printf '%-44s %9s %14s %8s\n' "docker exec mysqldump | zstd -3" "$t_cli" "$m_cli (docker)" 1
printf '%-44s %9s %14s %8.2f\n' "pricescan-ctl restore --only mysql" "$r_ours" "$rm_ours" "$(ratio "$r_ours" "$r_cli")"
printf '%-44s %9s %14s %8s\n' "zstd -dc | docker exec -i mysql" "$r_cli" "$rm_cli (docker)" 1
printf '%-44s %9s %14s %8.2f\n' "  of which loading the dump" "$load_only" "" "$(ratio "$load_only" "$r_cli")"
echo "(restore includes its pre-restore backup, the hash check and the row-count check)"
