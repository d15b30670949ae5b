# Rendered by `pricescan-ctl setup` from templates/gunicorn/gunicorn.conf.py.
# Values come from the container's environment so that .env.prod stays the one source.
import os

bind = "0.0.0.0:8000"
workers = int(os.environ.get("GUNICORN_WORKERS", "${GUNICORN_WORKERS:-4}"))
threads = int(os.environ.get("GUNICORN_THREADS", "${GUNICORN_THREADS:-2}"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "${GUNICORN_TIMEOUT:-30}"))
graceful_timeout = timeout
keepalive = 5
max_requests = ${GUNICORN_MAX_REQUESTS:-1000}
max_requests_jitter = max_requests // 10
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = "*"
