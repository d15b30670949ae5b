#!/usr/bin/env bash
# On the swarm lab (tests/swarm/lab.sh, brought up when it is not), side by side in one run:
#   pricescan-ctl status (replicas, tasks with node and health, nodes, /health via Nginx)
#   vs docker service ls + docker service ps for each service (the docker CLI pair).
# With the API at 3 tasks over the three nodes. Prints medians of 10 and the ratio.
source "$(dirname "$0")/lib.sh"
(cd "$repo" && cargo build --release --locked -q)
swarm_project benchswarm
cd "$dir"
"$bin" -q setup --target swarm --data-node "$(docker info --format '{{.Swarm.NodeID}}')" --skip-images >/dev/null
# Waits until every service of namespace $1 runs all its replicas.
wait_converged() {
  local deadline=$((SECONDS + 300))
  while [ $SECONDS -lt $deadline ]; do
    local r
    r=$(docker service ls --filter "label=com.docker.stack.namespace=$1" --format '{{.Replicas}}')
    if [ -n "$r" ] && ! echo "$r" | awk -F/ '$1 != $2 {bad=1} END {exit !bad}'; then return 0; fi
    sleep 0.2
  done
  echo "timeout waiting for $1" >&2; return 1
}
t0=$(now)
"$bin" -q start >/dev/null
start_s=$(echo "$(now) - $t0" | bc)
docker network inspect $(docker network ls -q) >/tmp/bench-swarm-nets.json
# The same four services as a stack file for `docker stack deploy`, from the specs that
# pricescan-ctl created (its configs, secrets and overlay networks, as external objects).
docker service inspect $(docker service ls -q --filter "label=com.docker.stack.namespace=$name") >/tmp/bench-swarm-specs.json
python3 - "$name" >/tmp/bench-swarm-stack.yml <<'PY'
import json, sys
name = sys.argv[1]
specs = json.load(open("/tmp/bench-swarm-specs.json"))
out = {"version": "3.8", "services": {}, "networks": {}, "configs": {}, "secrets": {}, "volumes": {}}
for s in specs:
    spec, c = s["Spec"], s["Spec"]["TaskTemplate"]["ContainerSpec"]
    svc = {"image": c["Image"].split("@")[0], "environment": c.get("Env", []),
           "deploy": {"replicas": 1, "endpoint_mode": "dnsrr",
                      "placement": {"constraints": s["Spec"]["TaskTemplate"].get("Placement", {}).get("Constraints", [])}},
           "networks": {}, "secrets": [], "configs": []}
    if c.get("Args"): svc["command"] = c["Args"]
    h = c.get("Healthcheck")
    if h: svc["healthcheck"] = {"test": h["Test"], "interval": f'{h.get("Interval",0)//10**6}ms',
                                "timeout": f'{h.get("Timeout",0)//10**6}ms', "retries": h.get("Retries", 3),
                                "start_period": f'{h.get("StartPeriod",0)//10**6}ms'}
    for n in s["Spec"]["TaskTemplate"].get("Networks", []):
        net = [k for k in json.load(open("/tmp/bench-swarm-nets.json")) if k["Id"] == n["Target"]][0]["Name"]
        svc["networks"][net] = {"aliases": n.get("Aliases", [])}
        out["networks"][net] = {"external": True}
    for x in c.get("Secrets", []):
        svc["secrets"].append({"source": x["SecretName"], "target": x["File"]["Name"]})
        out["secrets"][x["SecretName"]] = {"external": True}
    for x in c.get("Configs", []):
        svc["configs"].append({"source": x["ConfigName"], "target": x["File"]["Name"]})
        out["configs"][x["ConfigName"]] = {"external": True}
    vols = []
    for m in c.get("Mounts", []):
        if m["Type"] == "volume":
            vols.append(f'{m["Source"]}:{m["Target"]}'); out["volumes"][m["Source"]] = {"external": True}
    if vols: svc["volumes"] = vols
    ports = spec.get("EndpointSpec", {}).get("Ports", [])
    if ports: svc["ports"] = [{"target": p["TargetPort"], "published": p["PublishedPort"], "mode": "host"} for p in ports]
    out["services"][spec["Name"].split("_", 1)[1]] = svc
print(json.dumps(out))
PY
"$bin" -q stop >/dev/null
docker service ls -q --filter "label=com.docker.stack.namespace=$name" | xargs -r docker service rm >/dev/null
sleep 5
t0=$(now)
docker stack deploy -c /tmp/bench-swarm-stack.yml bench2 >/dev/null
wait_converged bench2
stack_s=$(echo "$(now) - $t0" | bc)
docker stack rm bench2 >/dev/null
sleep 8
"$bin" -q start >/dev/null
"$bin" -q scale api=3 >/dev/null

cli_pair() {
  docker service ls --filter "label=com.docker.stack.namespace=$name" >/dev/null
  for s in $(docker service ls -q --filter "label=com.docker.stack.namespace=$name"); do docker service ps "$s" >/dev/null; done
}
ours=$(median_ms 10 "$bin" status)
theirs=$(median_ms 10 cli_pair)
printf '\n%-58s %10s %8s\n' "swarm lab, 3 nodes, 4 services, API at 3 tasks" "median ms" "ratio"
printf '%-58s %10.1f %8.2f\n' "pricescan-ctl status (+ nodes, health, /health via Nginx)" "$ours" "$(ratio "$ours" "$theirs")"
printf '%-58s %10.1f %8s\n' "docker service ls + docker service ps per service" "$theirs" "1.00"
printf '\n%-58s %10s %8s\n' "start from nothing to every task healthy" "wall s" "ratio"
printf '%-58s %10.1f %8.2f\n' "pricescan-ctl start" "$start_s" "$(ratio "$start_s" "$stack_s")"
printf '%-58s %10.1f %8s\n' "docker stack deploy (same specs) + waiting for it" "$stack_s" "1.00"

# Losing a worker that runs an API task (and neither Nginx nor the data), under 4 GET
# workers through Nginx for 40 s: failed requests and the slowest answer.
nginx_node=$(docker inspect --format '{{.NodeID}}' $(docker service ps -q --filter desired-state=running "${name}_pricescan-nginx" | head -1))
api_nodes=$(for t in $(docker service ps -q --filter desired-state=running "${name}_pricescan-api"); do docker inspect --format '{{.NodeID}}' "$t"; done)
nginx_at=""; victim=""
for i in 1 2 3; do
  id=$(docker -H "unix:///tmp/pslab/n$i/d.sock" info --format '{{.Swarm.NodeID}}')
  [ "$id" = "$nginx_node" ] && nginx_at=10.231.0.$((10 + i))
  if [ "$i" != 1 ] && [ "$id" != "$nginx_node" ] && echo "$api_nodes" | grep -q "$id"; then victim=$i; fi
done
(sleep 5; bash "$repo/tests/swarm/lab.sh" lose "$victim") &
read -r ok failed slowest < <(python3 - "$nginx_at" "$HTTP_PORT" 40 <<'PY'
import sys, threading, time, urllib.request
host, port, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
ok = failed = 0; slowest = 0.0
lock = threading.Lock()
def work():
    global ok, failed, slowest
    end = time.time() + secs
    while time.time() < end:
        t0 = time.time()
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/api/version", timeout=45) as r:
                good = r.status == 200
        except Exception:
            good = False
        with lock:
            if good: ok += 1; slowest = max(slowest, time.time() - t0)
            else: failed += 1
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
print(ok, failed, f"{slowest:.1f}")
PY
)
printf '\n%-58s %10s %8s %10s\n' "worker $victim lost under load (4 GET workers, 40 s)" "ok" "failed" "slowest s"
printf '%-58s %10s %8s %10s\n' "through Nginx on 10.231.0.x, API at 3 tasks" "$ok" "$failed" "$slowest"
echo "(the lab now lacks node $victim: tests/swarm/lab.sh up restores it)"
