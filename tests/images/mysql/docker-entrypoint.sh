#!/bin/bash
# Same contract as the official image's entrypoint, reduced to what PriceScan uses.
set -euo pipefail

datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock

# X_FILE names a file that holds X (swarm secrets), as in the official image.
for var in MYSQL_ROOT_PASSWORD MYSQL_PASSWORD MYSQL_USER MYSQL_DATABASE; do
  file_var="${var}_FILE"
  if [ -n "${!file_var:-}" ] && [ -z "${!var:-}" ]; then
    export "$var"="$(cat "${!file_var}")"
  fi
done

sql_quote() { printf "%s" "${1//\'/\'\'}"; }

init_database() {
  : "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD must be set}"
  echo "entrypoint: initialising $datadir"
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
    --auth-root-authentication-method=normal >/dev/null
  mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$socket" &
  local pid=$! i
  for i in $(seq 60); do
    mariadb-admin --socket="$socket" ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  # SQL goes through stdin so that no password ever appears in a process's argv.
  {
    # mariadb-install-db also creates password-less root@127.0.0.1, root@::1 and
    # root@<hostname>, which would shadow root@'%' for TCP logins; the official image has
    # only root@localhost and root@'%'.
    echo "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'$(hostname)', ''@'localhost', ''@'$(hostname)';"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$(sql_quote "$MYSQL_ROOT_PASSWORD")';"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY '$(sql_quote "$MYSQL_ROOT_PASSWORD")';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "${MYSQL_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
    fi
    if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
      echo "CREATE USER '$(sql_quote "$MYSQL_USER")'@'%' IDENTIFIED BY '$(sql_quote "$MYSQL_PASSWORD")';"
      [ -n "${MYSQL_DATABASE:-}" ] && echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$(sql_quote "$MYSQL_USER")'@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$socket" -uroot
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) echo "entrypoint: running $f"; MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mariadb --socket="$socket" -uroot ${MYSQL_DATABASE:+"$MYSQL_DATABASE"} < "$f" ;;
      # Sourced, as the official image sources a script that is not executable.
      *.sh) echo "entrypoint: running $f"; . "$f" ;;
    esac
  done
  kill "$pid"
  wait "$pid" || true
  echo "entrypoint: initialisation done"
}

if [ "${1:0:1}" = "-" ]; then
  set -- mysqld "$@"
fi
if [ "$1" = "mysqld" ] || [ "$1" = "mariadbd" ]; then
  shift
  if [ ! -d "$datadir/mysql" ]; then
    init_database
  fi
  exec mariadbd --user=mysql --datadir="$datadir" --socket="$socket" "$@"
fi
exec "$@"
