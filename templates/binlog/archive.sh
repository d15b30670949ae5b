#!/bin/sh
# pricescan-binlog (DESIGN §13), rendered by `pricescan-ctl setup` from
# templates/binlog/archive.sh. MySQL's own mysqlbinlog, as a replication client in raw mode,
# writes each binary log file under its own name into /archive as the server writes it.
#
# Resuming: after any restart (this container's, MySQL's, the host's) it begins again with
# the newest file it holds. Raw mode fetches that file whole, from its first byte, so a file
# cut off mid-event is completed and no event is written twice. When the server no longer has
# that file (it expired while nothing was archiving), the events in between are lost: the gap
# is appended to /archive/GAPS, which pricescan-ctl reports, and archiving goes on from the
# oldest file the server still has.
#
# A new server (MySQL's data was lost and restored, or its binary log reset) numbers its
# files from 1 again. Its history is not the archive's: the archive so far moves aside to
# /archive/earlier/<UTC time>/, where restores to earlier times still find it, and archiving
# begins with the new server's first file. It is told apart by its numbers (all below the
# archive's newest) or by a file of the archive's name that is shorter than the archived copy.
set -u
archive=/archive
host=$${BINLOG_SOURCE_HOST:-pricescan-mysql}
user=$${BINLOG_USER:-pricescan_binlog}
MYSQL_PWD=$${BINLOG_PASSWORD:-}
if [ -z "$$MYSQL_PWD" ] && [ -n "$${BINLOG_PASSWORD_FILE:-}" ]; then
  MYSQL_PWD=$$(cat "$$BINLOG_PASSWORD_FILE")
fi
export MYSQL_PWD
if [ -z "$$MYSQL_PWD" ]; then
  echo "pricescan-binlog: BINLOG_PASSWORD is empty; run pricescan-ctl setup" >&2
  exit 1
fi
child=""
trap 'if [ -n "$$child" ]; then kill "$$child" 2>/dev/null; wait "$$child"; fi; exit 0' TERM INT

# Binary log files on the server, oldest first: "name<TAB>size" a line.
server_logs() { mysql -h "$$host" -u "$$user" -N -B -e 'SHOW BINARY LOGS' | cut -f1,2; }
# The newest archived file: names end in a sequence number, compared as a number.
newest() { ls "$$archive" | grep -E '\.[0-9]+$$' | awk -F. '{print $$NF "\t" $$0}' | sort -n | tail -n 1 | cut -f2; }
number() { echo "$${1##*.}" | sed 's/^0*//'; }

# Where to begin: the newest archived file, or the server's oldest when there is none.
start_file() {
  logs=$$(server_logs) || return 1
  files=$$(echo "$$logs" | cut -f1)
  have=$$(newest)
  if [ -z "$$have" ]; then
    echo "$$files" | head -n 1
    return 0
  fi
  if new_server; then
    aside="$$archive/earlier/$$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$$aside"
    ls "$$archive" | grep -E '\.[0-9]+$$' | while read -r f; do mv "$$archive/$$f" "$$aside/"; done
    [ -f "$$archive/GAPS" ] && mv "$$archive/GAPS" "$$aside/"
    echo "pricescan-binlog: MySQL's binary log starts over (a new server); the archive so far is kept in $$aside" >&2
    echo "$$files" | head -n 1
    return 0
  fi
  if echo "$$files" | grep -qx "$$have"; then
    echo "$$have"
    return 0
  fi
  next=$$(echo "$$files" | while read -r f; do
    [ "$$(number "$$f")" -gt "$$(number "$$have")" ] && { echo "$$f"; break; }
  done)
  [ -n "$$next" ] || return 1
  echo "$$(date -u +%Y-%m-%dT%H:%M:%SZ) after $$have: the server no longer had it; resumed at $$next" >> "$$archive/GAPS"
  echo "pricescan-binlog: GAP: the server no longer has $$have; archiving resumes at $$next" >&2
  echo "$$next"
}

# Whether the server is not the one the archive came from (see the top).
new_server() {
  last=$$(echo "$$files" | tail -n 1)
  [ -n "$$last" ] || return 1
  [ "$$(number "$$last")" -lt "$$(number "$$have")" ] && return 0
  size=$$(echo "$$logs" | awk -F'\t' -v f="$$have" '$$1 == f {print $$2}')
  [ -n "$$size" ] && [ "$$size" -lt "$$(wc -c < "$$archive/$$have")" ]
}

while :; do
  if ! start=$$(start_file) || [ -z "$$start" ]; then
    echo "pricescan-binlog: cannot list the server's binary logs; trying again in 2s" >&2
    sleep 2
    continue
  fi
  echo "pricescan-binlog: archiving from $$start"
  mysqlbinlog --read-from-remote-server --host="$$host" --user="$$user" \
    --raw --stop-never --result-file="$$archive/" "$$start" &
  child=$$!
  echo "$$child" > /tmp/mysqlbinlog.pid
  wait "$$child"
  code=$$?
  child=""
  echo "pricescan-binlog: mysqlbinlog ended ($$code); reconnecting in 1s" >&2
  sleep 1
done
