#!/usr/bin/env python3
"""A webhook receiver for the tests: listens on HOST:PORT, answers every
POST with 200 and appends its body, on one line, to FILE. Prints "ready"
once it listens. Standard library only.

    webhook-receiver.py HOST:PORT FILE [--tls-cert CERT --tls-key KEY]

With --tls-cert and --tls-key it speaks HTTPS with that certificate
chain (PEM) and key; a handshake the client breaks off (a certificate it
does not trust) is no request and writes nothing."""
import argparse
import http.server
import ssl

parser = argparse.ArgumentParser()
parser.add_argument("listen")
parser.add_argument("file")
parser.add_argument("--tls-cert")
parser.add_argument("--tls-key")
args = parser.parse_args()
if bool(args.tls_cert) != bool(args.tls_key):
    parser.error("--tls-cert and --tls-key go together")
host, port = args.listen.rsplit(":", 1)
out = args.file


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


class Server(http.server.HTTPServer):
    def handle_error(self, request, client_address):
        # A failed handshake is the client's verdict, not the receiver's.
        pass


server = Server((host, int(port)), Receiver)
if args.tls_cert:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
