"""Runs inside the lab's network namespace: relays ssh to a guest, or waits for guests' sshd.

Standard library only: it is started by ssh's ProxyCommand through nsenter, with any python3.
  relay.py HOST PORT          copy stdin/stdout to HOST:PORT (an ssh ProxyCommand)
  relay.py --wait SECONDS HOST[=SECONDS]...   print "HOST SECONDS" as each HOST's sshd greets, waiting for each
                              its own SECONDS or the first; exit 1 when one did not greet in time
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import time


def relay(host: str, port: int) -> int:
    connection = socket.create_connection((host, port), timeout=10)
    connection.settimeout(None)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(connection, selectors.EVENT_READ)
    # Once ssh has closed our stdin, the guest has this long to close its side. A guest that was
    # stopped never does (its network is gone, no reset comes): without a limit the relay would
    # outlive the lab.
    deadline: float | None = None
    while True:
        events = selector.select(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if not events and deadline is not None:
            return 0
        for key, _events in events:
            if key.fileobj == 0:
                data = os.read(0, 65536)
                if not data:
                    connection.shutdown(socket.SHUT_WR)
                    selector.unregister(0)
                    deadline = time.monotonic() + 30
                    continue
                connection.sendall(data)
            else:
                data = connection.recv(65536)
                if not data:
                    return 0
                os.write(1, data)


def greets(host: str) -> bool:
    try:
        with socket.create_connection((host, 22), timeout=2) as connection:
            connection.settimeout(3)
            return connection.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def wait(timeout: float, hosts: list[str]) -> int:
    started = time.monotonic()
    waiting: dict[str, float] = {}
    for host in hosts:
        address, own = host.split("=", 1) if "=" in host else (host, "")
        waiting[address] = float(own) if own else timeout
    late = False
    while waiting:
        for host, seconds in list(waiting.items()):
            if greets(host):
                print(f"{host} {time.monotonic() - started:.1f}", flush=True)
                del waiting[host]
            elif time.monotonic() - started >= seconds:
                del waiting[host]
                late = True
        if waiting:
            time.sleep(0.3)
    return 1 if late else 0


if __name__ == "__main__":
    if sys.argv[1] == "--wait":
        sys.exit(wait(float(sys.argv[2]), sys.argv[3:]))
    sys.exit(relay(sys.argv[1], int(sys.argv[2])))
