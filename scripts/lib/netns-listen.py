#!/usr/bin/env python3
"""Serve a host address from a process inside a network namespace.

usage: netns-listen.py HOST:PORT NAMESPACE COMMAND...

Binds a listening TCP socket in the current (host) namespace, hands it to
COMMAND as file descriptor 3 the way systemd socket activation does
(LISTEN_FDS=1, LISTEN_PID=pid), and replaces itself with
`ip netns exec NAMESPACE COMMAND...`. `ip netns exec` switches namespace
and execs without forking, so the pid, and with it LISTEN_PID, stays
right. The command then accepts host connections while every packet it
sends leaves from inside the namespace.
"""
import os
import socket
import sys


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    host, _, port = sys.argv[1].rpartition(":")
    namespace, command = sys.argv[2], sys.argv[3:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as e:
        sys.exit(f"netns-listen: cannot listen on {host}:{port}: {e.strerror}; "
                 "is something else using the port?")
    sock.listen(128)
    if sock.fileno() != 3:
        os.dup2(sock.fileno(), 3)
    os.set_inheritable(3, True)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execvp("ip", ["ip", "netns", "exec", namespace, *command])


if __name__ == "__main__":
    main()
