#!/usr/bin/python3
"""Answers Grafana's health endpoint so the monitoring profile can come up without Grafana."""
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.startswith("/api/health")
        body = json.dumps({"database": "ok", "version": "standin"} if ok else {"message": "stand-in"}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", 3000), Handler).serve_forever()
