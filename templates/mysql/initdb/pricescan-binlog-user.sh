# The replication user of pricescan-binlog (DESIGN §13), rendered by `pricescan-ctl setup`
# from templates/mysql/initdb/pricescan-binlog-user.sh. The image's entrypoint runs it once,
# when it initialises the data directory; `setup` runs the same SQL on a MySQL that already
# has data. It may read the binary log and nothing else. Its password comes from the
# environment and goes to mysql on stdin: it is in no file and no command line.
binlog_password=$${BINLOG_PASSWORD:-}
if [ -z "$$binlog_password" ] && [ -n "$${BINLOG_PASSWORD_FILE:-}" ]; then
  binlog_password=$$(cat "$$BINLOG_PASSWORD_FILE")
fi
root_password=$${MYSQL_ROOT_PASSWORD:-}
if [ -z "$$root_password" ] && [ -n "$${MYSQL_ROOT_PASSWORD_FILE:-}" ]; then
  root_password=$$(cat "$$MYSQL_ROOT_PASSWORD_FILE")
fi
if [ -n "$$binlog_password" ]; then
  binlog_user=$${BINLOG_USER:-pricescan_binlog}
  quoted=$$(printf '%s' "$$binlog_password" | sed "s/'/''/g")
  printf "CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s';\nALTER USER '%s'@'%%' IDENTIFIED BY '%s';\nGRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%s'@'%%';\n" \
    "$$binlog_user" "$$quoted" "$$binlog_user" "$$quoted" "$$binlog_user" \
    | MYSQL_PWD="$$root_password" mysql -uroot
  echo "pricescan: replication user $$binlog_user is ready"
fi
