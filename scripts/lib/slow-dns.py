#!/usr/bin/env python3
"""A slow DNS server for the tests: answers every A query for NAME.test
after holding it a while, so that lookups overlap, and records how many
names were waiting for an answer at once.

usage: slow-dns.py LISTEN_ADDR HOLD_SECONDS REPORT_FILE

Run inside a test's network namespace (LISTEN_ADDR is its loopback).
The answer to tN.test is 127.0.0.N; AAAA queries get no addresses; other
names get NXDOMAIN. After every query and answer, REPORT_FILE holds one
JSON object: {"most_waiting": ..., "queries": {name: A queries so far}}.
It prints "ready" once its socket is open.
"""
import json
import os
import re
import socket
import struct
import sys
import threading
import time


def question(packet: bytes):
    """(id, flags, qname, qtype, end of question) of a query."""
    ident, flags = struct.unpack("!HH", packet[:4])
    labels, i = [], 12
    while packet[i]:
        n = packet[i]
        labels.append(packet[i + 1:i + 1 + n].decode("ascii", "replace").lower())
        i += 1 + n
    qtype = struct.unpack("!H", packet[i + 1:i + 3])[0]
    return ident, flags, ".".join(labels), qtype, i + 5


def answer(packet: bytes, name: str, qtype: int, end: int) -> bytes:
    ident = packet[:2]
    match = re.fullmatch(r"t(\d{1,3})\.test", name)
    rcode = 0 if match else 3
    records = b""
    count = 0
    if match and qtype == 1:
        records = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([127, 0, 0, int(match[1])])
        count = 1
    flags = 0x8180 | rcode
    return ident + struct.pack("!HHHHH", flags, 1, count, 0, 0) + packet[12:end] + records


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    listen, hold, report = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((listen, 53))
    lock = threading.Lock()
    waiting = {}  # name -> queries not answered yet
    state = {"most_waiting": 0, "queries": {}}

    def write() -> None:
        with open(report + ".new", "w") as f:
            json.dump(state, f)
        os.replace(report + ".new", report)

    def later(packet, peer, name, qtype, end) -> None:
        time.sleep(hold)
        # Done waiting before the answer leaves: once it is sent, the
        # client may ask its next name before this thread runs again, and
        # counting this one too would report a lookup more than it ran.
        with lock:
            waiting[name] -= 1
            if not waiting[name]:
                del waiting[name]
            write()
        sock.sendto(answer(packet, name, qtype, end), peer)

    with lock:
        write()
    print("ready", flush=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        try:
            _, _, name, qtype, end = question(packet)
        except (IndexError, struct.error):
            continue
        with lock:
            waiting[name] = waiting.get(name, 0) + 1
            state["most_waiting"] = max(state["most_waiting"], len(waiting))
            if qtype == 1:
                state["queries"][name] = state["queries"].get(name, 0) + 1
            write()
        threading.Thread(target=later, args=(packet, peer, name, qtype, end), daemon=True).start()


if __name__ == "__main__":
    main()
