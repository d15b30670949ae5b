"""Stand-in PriceScan API for the tests: the same health, metrics and version contract."""
import os
import threading
import time

import pymysql
import redis
from flask import Flask, Response, jsonify, request

# Swarm passes secrets as files: X_FILE names the file that holds X, as the official
# images read them.
for _key, _path in list(os.environ.items()):
    if _key.endswith("_FILE") and _key[:-5] not in os.environ:
        with open(_path) as _f:
            os.environ[_key[:-5]] = _f.read()

app = Flask(__name__)
VERSION = os.environ.get("APP_VERSION", "dev")
BROKEN = os.environ.get("PRICESCAN_BROKEN") == "1"
# The releases that pass /health but fail real traffic, for the deploy analysis tests:
# FAIL_EVERY=20 answers every 20th other request with a 500 (5 %); DELAY_MS adds latency
# to every request.
FAIL_EVERY = int(os.environ.get("PRICESCAN_FAIL_EVERY", "0"))
DELAY = int(os.environ.get("PRICESCAN_DELAY_MS", "0")) / 1000.0
_lock = threading.Lock()
_requests = {}
_served = [0]


def _count(path, status):
    with _lock:
        _requests[(path, status)] = _requests.get((path, status), 0) + 1


def check_mysql():
    conn = pymysql.connect(
        host=os.environ.get("DB_HOST", "pricescan-mysql"),
        port=int(os.environ.get("DB_PORT", "3306")),
        user=os.environ.get("DB_USER", "pricescan"),
        password=os.environ.get("DB_PASSWORD", ""),
        database=os.environ.get("DB_NAME", "pricescan"),
        connect_timeout=2,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        conn.close()


def check_redis():
    client = redis.Redis(
        host=os.environ.get("REDIS_HOST", "pricescan-redis"),
        port=int(os.environ.get("REDIS_PORT", "6379")),
        password=os.environ.get("REDIS_PASSWORD") or None,
        socket_timeout=2,
    )
    client.ping()


@app.before_request
def _misbehave():
    if DELAY:
        time.sleep(DELAY)
    if FAIL_EVERY and request.path != "/health":
        with _lock:
            _served[0] += 1
            fail = _served[0] % FAIL_EVERY == 0
        if fail:
            _count(request.path, 500)
            return jsonify(status="error", version=VERSION), 500
    return None


@app.route("/health")
def health():
    checks = {}
    for name, check in (("mysql", check_mysql), ("redis", check_redis)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # the health endpoint reports, it never raises
            checks[name] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values()) and not BROKEN
    if BROKEN:
        checks["release"] = "error: broken build"
    status = 200 if ok else 503
    _count("/health", status)
    return jsonify(status="ok" if ok else "error", version=VERSION, checks=checks), status


@app.route("/api/version")
def version():
    _count("/api/version", 200)
    return jsonify(version=VERSION, time=time.time())


@app.route("/metrics")
def metrics():
    lines = ["# TYPE pricescan_http_requests_total counter"]
    with _lock:
        for (path, status), n in sorted(_requests.items()):
            lines.append(f'pricescan_http_requests_total{{path="{path}",status="{status}"}} {n}')
    lines.append(f'pricescan_build_info{{version="{VERSION}"}} 1')
    return Response("\n".join(lines) + "\n", mimetype="text/plain")
