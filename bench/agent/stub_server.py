#!/usr/bin/env python3
"""A stand-in controller + collector for agent benchmarks (Python standard library only).

GET  /api/v1/pinglist/NAME  -> DIR/NAME (404 if missing), with an ETag; 304 on If-None-Match.
POST /api/v1/heartbeat      -> 200 {}
POST /api/v1/results        -> 200 (body read and counted, not decoded)
GET  /stats                 -> {"result_posts": N, "result_bytes": B}

Usage: stub_server.py DIR ADDRESS PORT
"""
import hashlib
import http.server
import json
import os
import sys
import threading

DIR, ADDR, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock = threading.Lock()
stats = {"result_posts": 0, "result_bytes": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", ctype="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stats":
            with lock:
                self.reply(200, json.dumps(stats).encode())
            return
        prefix = "/api/v1/pinglist/"
        if not self.path.startswith(prefix):
            self.reply(404, b'{"error":"not found"}')
            return
        name = os.path.basename(self.path[len(prefix):])
        try:
            with open(os.path.join(DIR, name), "rb") as f:
                body = f.read()
        except OSError:
            self.reply(404, b'{"error":"no pinglist"}')
            return
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.reply(304, headers=[("ETag", etag)])
            return
        self.reply(200, body, "application/xml", [("ETag", etag)])

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        if self.path.endswith("/results"):
            with lock:
                stats["result_posts"] += 1
                stats["result_bytes"] += n
        self.reply(200, b"{}")


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer((ADDR, PORT), Handler).serve_forever()
