#!/usr/bin/env python3
"""A webhook receiver for the tests: listens on HOST:PORT, answers every
POST with 200 and appends its body, on one line, to FILE. Prints "ready"
once it listens. Standard library only."""
import http.server
import sys

host, port = sys.argv[1].rsplit(":", 1)
out = sys.argv[2]


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(out, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer((host, int(port)), Receiver)
print("ready", flush=True)
server.serve_forever()
