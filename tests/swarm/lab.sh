#!/usr/bin/env bash
# The swarm lab (DESIGN §11): LAB_NODES (3) dockerd daemons on this machine, each in its own
# network namespace, on a bridge in a namespace of its own, joined into one swarm; node 1 is
# the manager. The host reaches the nodes through its own leg on the bridge (10.231.0.1).
#
#   tests/swarm/lab.sh up       start the nodes, form the swarm, load the test images
#   tests/swarm/lab.sh down     stop the daemons, remove the namespaces and the state
#   tests/swarm/lab.sh kill N   SIGKILL node N's dockerd
#   tests/swarm/lab.sh lose N   a lost server: node N leaves the network and its daemon dies
#
# Nodes 1 and 2 also run an sshd (Debian's openssh-server) in their namespace, so that
# pricescan-ctl reaches their engines at ssh://root@ADDR through the system ssh: a generated
# key, a host config in /etc/ssh/ssh_config.d/pslab.conf for the lab's addresses only, and
# DOCKER_HOST set per key (`docker system dial-stdio` on the far side needs to know the
# node's socket, since every node shares this machine's filesystem).
#
# Pitfalls found here: `ip netns exec` hides the cgroup v1 mounts (remounted below); each
# daemon needs its own config file, data-root, exec-root (short: socket paths), pidfile,
# socket and containerd namespace; overlay2; no IPVS (dnsrr and host-mode ports only).
set -euo pipefail
nodes=${LAB_NODES:-3}
state=/tmp/pslab
net=10.231.0
images=(pricescan-test/api:v1 pricescan-test/api:v2 pricescan-test/api:broken pricescan-test/mysql:8.0
  pricescan-test/redis:7 pricescan-test/nginx:1.25 pricescan-test/prometheus:v2
  pricescan-test/alertmanager:0.25 pricescan-test/grafana-standin:1)

sock() { echo "unix://$state/n$1/d.sock"; }
dk() { local i=$1; shift; docker -H "$(sock "$i")" "$@"; }
addr() { echo "$net.$((10 + $1))"; }

bridge_up() {
  ip netns add pslab-br
  ip netns exec pslab-br ip link add br0 type bridge
  ip netns exec pslab-br ip link set br0 up
  ip netns exec pslab-br ip link set lo up
  # The host's own leg, so tests can reach the nodes' published ports.
  ip link add pslab-h type veth peer name h0 netns pslab-br
  ip netns exec pslab-br ip link set h0 master br0 up
  ip addr add "$net.1/24" dev pslab-h
  ip link set pslab-h up
}

node_up() {
  local i=$1 n="pslab$1" dir="$state/n$1"
  mkdir -p "$dir"
  ip netns add "$n"
  ip link add "pslab-v$i" type veth peer name eth0 netns "$n"
  ip link set "pslab-v$i" netns pslab-br
  ip netns exec pslab-br ip link set "pslab-v$i" master br0 up
  ip netns exec "$n" ip addr add "$(addr "$i")/24" dev eth0
  ip netns exec "$n" ip link set eth0 up
  ip netns exec "$n" ip link set lo up
  echo '{"storage-driver": "overlay2", "log-driver": "json-file"}' >"$dir/daemon.json"
  local cgroups="cpu cpuacct cpuset memory devices freezer blkio pids"
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 nohup ip netns exec "$n" sh -c "
    mount -t tmpfs cgroup_root /sys/fs/cgroup
    for c in $cgroups; do mkdir -p /sys/fs/cgroup/\$c; mount -t cgroup -o \$c cgroup /sys/fs/cgroup/\$c; done
    mkdir -p /sys/fs/cgroup/systemd; mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
    exec dockerd --config-file $dir/daemon.json --data-root $dir/data --exec-root $dir/x \
      --pidfile $dir/pid -H $(sock "$i") --containerd-namespace pslab$i \
      --containerd-plugins-namespace pslab$i-plugins
  " >"$dir/log" 2>&1 &
}

wait_node() {
  local i=$1 deadline=$((SECONDS + 60))
  until dk "$i" info >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { tail -20 "$state/n$i/log" >&2; echo "node $i did not start" >&2; exit 1; }
    sleep 0.5
  done
}

up() {
  down >/dev/null 2>&1 || true
  mkdir -p "$state"
  bridge_up
  for i in $(seq "$nodes"); do node_up "$i"; done
  for i in $(seq "$nodes"); do wait_node "$i"; done
  dk 1 swarm init --advertise-addr "$(addr 1)" >/dev/null
  local token
  token=$(dk 1 swarm join-token -q worker)
  for i in $(seq 2 "$nodes"); do
    dk "$i" swarm join --advertise-addr "$(addr "$i")" --token "$token" "$(addr 1):2377" >/dev/null
  done
  # No registry: every node gets the test images from this engine.
  local pids=()
  for i in $(seq "$nodes"); do
    (docker save "${images[@]}" | dk "$i" load -q >/dev/null) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  ssh_up
  echo "lab up: $nodes nodes; manager at $(sock 1); sshd at $(addr 1) and $(addr 2)"
  dk 1 node ls
  touch "$state/ready"
}

ssh_up() {
  local d="$state/ssh"
  mkdir -p "$d" /run/sshd
  chmod 700 "$d"
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$d/id_ed25519"
  for i in 1 2; do
    echo "environment=\"DOCKER_HOST=$(sock "$i")\" $(cat "$d/id_ed25519.pub")" >"$d/keys$i"
    cat >"$d/sshd$i.conf" <<EOF
ListenAddress $(addr "$i")
HostKey $d/host_key
AuthorizedKeysFile $d/keys$i
PermitUserEnvironment DOCKER_HOST
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $d/sshd$i.pid
EOF
    ip netns exec "pslab$i" /usr/sbin/sshd -f "$d/sshd$i.conf"
  done
  cat >/etc/ssh/ssh_config.d/pslab.conf <<EOF
# The swarm lab of pricescan-ctl's tests (tests/swarm/lab.sh); removed by lab.sh down.
Host $net.*
  IdentityFile $d/id_ed25519
  UserKnownHostsFile $d/known_hosts
  StrictHostKeyChecking accept-new
  BatchMode yes
EOF
}

down() {
  for f in "$state"/ssh/sshd*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  rm -f /etc/ssh/ssh_config.d/pslab.conf
  # Containers first, while the daemons still answer; then the daemons, given time to stop.
  for i in $(seq "$nodes"); do
    dk "$i" ps -aq 2>/dev/null | xargs -r docker -H "$(sock "$i")" rm -f >/dev/null 2>&1 || true
    [ -f "$state/n$i/pid" ] && kill "$(cat "$state/n$i/pid")" 2>/dev/null || true
  done
  local deadline=$((SECONDS + 20))
  while pgrep -f "dockerd --config-file $state/" >/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
  pkill -9 -f "dockerd --config-file $state/" 2>/dev/null || true
  # A killed daemon leaves its containerd shims and their containers: end those too.
  for shim in $(pgrep -f "containerd-shim-runc-v2 .*-address $state/" || true); do
    pkill -9 -P "$shim" 2>/dev/null || true
    kill -9 "$shim" 2>/dev/null || true
  done
  pkill -9 -f "containerd --config $state/" 2>/dev/null || true
  for i in $(seq "$nodes"); do
    ip netns del "pslab$i" 2>/dev/null || true
  done
  ip link del pslab-h 2>/dev/null || true
  ip netns del pslab-br 2>/dev/null || true
  # Mounts a killed daemon left under its data-root.
  grep " $state/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$state"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  kill) kill -9 "$(cat "$state/n$2/pid")" ;;
  lose)
    ip netns exec "pslab$2" ip link set eth0 down
    kill -9 "$(cat "$state/n$2/pid")"
    ;;
  *) echo "usage: $0 up|down|kill N|lose N" >&2; exit 2 ;;
esac
