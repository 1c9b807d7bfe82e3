#!/usr/bin/env python3
"""A hostile host for the tests: answers every echo request it sees with
packets that must not be taken for answers, and floods echo replies.

usage: hostile-icmp.py PROBE_ADDR OTHER_ADDR SECONDS MODE [QUOTED_ADDR...]

Run as root inside a lab namespace (IPv4). PROBE_ADDR is the board,
OTHER_ADDR another lab address to forge or quote. MODE:

  answer  for each echo request from PROBE_ADDR to this host, with identifier
          I and sequence S, and for every sequence s near S (those of the
          board's other probes, to other targets, sent around the same
          time), send back
          - an echo reply (I, s) from this host: the wrong source for the
            probes that went elsewhere,
          - an echo reply with the wrong identifier from OTHER_ADDR,
          - a destination unreachable quoting someone else's echo request
            (another identifier) to OTHER_ADDR,
          - a destination unreachable quoting (I, s) to an address the
            board never probed;
          then a time exceeded whose quote is cut off inside the IP header
          and one quoting a UDP datagram; and flood echo replies (I, s)
          from OTHER_ADDR with sequences nobody is waiting for.
  flood   flood echo replies with random identifiers and sequences, from
          OTHER_ADDR.
  short   for each echo request from PROBE_ADDR to this host, with identifier
          I and sequence S, and for every sequence s from S-8 to S+8, send a
          destination unreachable and a time exceeded that quote only the
          IP header and the 8-byte echo header of (I, s) to each
          QUOTED_ADDR (RFC 792's minimum, too short to hold the board's
          token): what a blind forger who guesses the board's next sequence
          numbers can send about requests to the other targets.

It prints "ready" once its sockets are open.

Floods are held to about 5,000 packets a second: a flood, yet below what
would overflow a socket buffer of the board and so drop honest replies
in the kernel, which is not what the test is about. Runs for SECONDS.
"""
import random
import socket
import struct
import sys
import threading
import time

FLOOD_PPS = 5000


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmp(kind: int, code: int, rest: bytes, data: bytes) -> bytes:
    body = struct.pack("!BBH", kind, code, 0) + rest + data
    return body[:2] + struct.pack("!H", checksum(body)) + body[4:]


def ipv4(src: str, dst: str, payload: bytes, proto: int = 1) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), random.getrandbits(16), 0, 64,
        proto, 0, socket.inet_aton(src), socket.inet_aton(dst),
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def echo_request(src: str, dst: str, ident: int, seq: int) -> bytes:
    return ipv4(src, dst, icmp(8, 0, struct.pack("!HH", ident, seq), b"someone else!!!!"))


def main() -> None:
    if len(sys.argv) < 5 or sys.argv[4] not in ("answer", "flood", "short"):
        sys.exit(__doc__)
    probe, other, seconds, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    quoted = sys.argv[5:]
    end = time.monotonic() + seconds
    send = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    me = None
    seen_ident = []

    def out(packet: bytes) -> None:
        try:
            send.sendto(packet, (probe, 0))
        except OSError:
            pass

    def flood() -> None:
        sent = 0
        start = time.monotonic()
        while time.monotonic() < end:
            if mode == "short":
                return
            if mode == "answer" and not seen_ident:
                time.sleep(0.01)
                continue
            src = other if mode == "answer" else (me or other)
            ident = seen_ident[-1] if mode == "answer" else random.getrandbits(16)
            # Sequence numbers far from any the board has in use.
            seq = random.randrange(40000, 65536)
            out(ipv4(src, probe, icmp(0, 0, struct.pack("!HH", ident, seq), b"flood")))
            sent += 1
            ahead = sent / FLOOD_PPS - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)

    recv = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    recv.settimeout(0.2)
    threading.Thread(target=flood, daemon=True).start()
    print("ready", flush=True)
    if mode == "flood":
        while time.monotonic() < end:
            time.sleep(0.1)
        return

    while time.monotonic() < end:
        try:
            packet, (src, _) = recv.recvfrom(65535)
        except socket.timeout:
            continue
        ihl = (packet[0] & 0x0F) * 4
        if src != probe or len(packet) < ihl + 8 or packet[ihl] != 8:
            continue
        me = socket.inet_ntoa(packet[16:20])
        ident, seq = struct.unpack("!HH", packet[ihl + 4:ihl + 8])
        if mode == "short":
            for s in range(seq - 8, seq + 9):
                for dst in quoted:
                    # IP header + 8 bytes: the request's id, none of its data.
                    quote = echo_request(probe, dst, ident, s & 0xFFFF)[:28]
                    out(ipv4(me, probe, icmp(3, 1, b"\0" * 4, quote)))
                    out(ipv4(me, probe, icmp(11, 0, b"\0" * 4, quote)))
            continue
        seen_ident.append(ident)
        del seen_ident[:-4]
        unprobed = "198.19.3.99"
        for s in range(seq - 8, seq + 9):
            s &= 0xFFFF
            out(ipv4(me, probe, icmp(0, 0, struct.pack("!HH", ident, s), b"wrong source")))
            out(ipv4(other, probe, icmp(0, 0, struct.pack("!HH", ident ^ 0xFFFF, s), b"wrong ident")))
            out(ipv4(me, probe, icmp(3, 1, b"\0" * 4, echo_request(probe, other, ident ^ 0x5555, s))))
            out(ipv4(me, probe, icmp(3, 1, b"\0" * 4, echo_request(probe, unprobed, ident, s))))
        out(ipv4(me, probe, icmp(11, 0, b"\0" * 4, packet[:12])))
        out(ipv4(me, probe, icmp(11, 0, b"\0" * 4, ipv4(probe, other, b"\0" * 8, proto=17))))


if __name__ == "__main__":
    main()
