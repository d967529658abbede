#!/usr/bin/env python3
"""Traffic probe for vcpe tests: servers that report the peer they see, clients that
report what happened. Bounded: every client has a timeout, servers are killed by the test.

  probe.py serve-tcp PORT READYFILE     reply "peer=IP" to each connection
  probe.py serve-udp PORT READYFILE [ADDRESS]
                                        reply "peer=IP" to each datagram (from ADDRESS)
  probe.py tcp HOST PORT TIMEOUT        print "ok <reply>", "refused" or "timeout"
  probe.py udp HOST PORT TIMEOUT        the same over UDP
  probe.py serve-sink PORT READYFILE    read each connection to its end, reply with its SHA-256
  probe.py send HOST PORT BYTES SEED [MARKER]
                                        send BYTES pseudo-random bytes (MARKER at every 4 KiB),
                                        print "intact" if the server's SHA-256 matches, else
                                        "corrupt" or an error
  probe.py serve-echo PORT READYFILE    echo each connection's bytes back
  probe.py serve-source PORT READYFILE  read "BYTES SEED" and send that many pseudo-random bytes
  probe.py fetch HOST PORT BYTES SEED   ask serve-source for BYTES, print "intact" if they are
                                        the expected ones, else "corrupt" or an error
  probe.py stream HOST PORT BYTES SEED SECONDS
                                        like send, spread evenly over SECONDS
  probe.py hold HOST PORT GOFILE        one connection: an exchange, then GOFILE.held is
                                        written; when GOFILE appears (20 s at most) another
                                        exchange; print "kept" or "broken <why>"
"""
import hashlib
import os
import random
import socket
import sys
import threading
import time


def ready(path):
    with open(path, "w") as f:
        f.write("ready\n")


def tcp_listener(port, readyfile):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    ready(readyfile)
    return s


def serve_tcp(port, readyfile):
    s = tcp_listener(port, readyfile)
    while True:
        c, addr = s.accept()
        try:
            c.sendall(f"peer={addr[0]}\n".encode())
        finally:
            c.close()


def serve_udp(port, readyfile, address="0.0.0.0"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, port))
    ready(readyfile)
    while True:
        _, addr = s.recvfrom(2048)
        s.sendto(f"peer={addr[0]}\n".encode(), addr)


def serve_sink(port, readyfile):
    s = tcp_listener(port, readyfile)
    while True:
        c, _ = s.accept()
        h = hashlib.sha256()
        while True:
            chunk = c.recv(1 << 16)
            if not chunk:
                break
            h.update(chunk)
        c.sendall(h.hexdigest().encode())
        c.close()


def serve_echo(port, readyfile):
    s = tcp_listener(port, readyfile)

    def echo(c):
        with c:
            while chunk := c.recv(4096):
                c.sendall(chunk)

    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def hold(host, port, gofile):
    try:
        s = socket.create_connection((host, port), timeout=5)
        for word in (b"before\n", b"after\n"):
            s.sendall(word)
            if s.recv(64) != word:
                print("broken no echo of " + word.decode().strip())
                return
            if word == b"before\n":
                open(gofile + ".held", "w").close()
                deadline = time.monotonic() + 20
                while not os.path.exists(gofile) and time.monotonic() < deadline:
                    time.sleep(0.02)
        print("kept")
    except OSError as e:
        print(f"broken {e}")


def read_to_end(s, size=256):
    got = bytearray()
    while True:
        chunk = s.recv(size)
        if not chunk:
            return bytes(got)
        got += chunk


def verdict(s, data):
    """After sending `data`: the sink's SHA-256 of what it read says whether it arrived whole."""
    s.shutdown(socket.SHUT_WR)
    print("intact" if read_to_end(s).decode() == hashlib.sha256(data).hexdigest() else "corrupt")


def send(host, port, nbytes, seed, marker=None):
    data = bytearray(random.Random(seed).randbytes(nbytes))
    if marker:
        m = marker.encode()
        for at in range(0, nbytes - len(m), 4096):
            data[at:at + len(m)] = m
    data = bytes(data)
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(data)
    verdict(s, data)


def serve_source(port, readyfile):
    def source(c):
        with c:
            line = b""
            while not line.endswith(b"\n"):
                chunk = c.recv(64)
                if not chunk:
                    return
                line += chunk
            nbytes, seed = (int(x) for x in line.split())
            c.sendall(random.Random(seed).randbytes(nbytes))
    srv = tcp_listener(port, readyfile)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=source, args=(c,), daemon=True).start()


def fetch(host, port, nbytes, seed):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(f"{nbytes} {seed}\n".encode())
    got = read_to_end(s, 1 << 16)
    print("intact" if got == random.Random(seed).randbytes(nbytes) else f"corrupt ({len(got)} bytes)")


def stream(host, port, nbytes, seed, seconds):
    data = random.Random(seed).randbytes(nbytes)
    s = socket.create_connection((host, port), timeout=10)
    step = 1 << 16
    chunks = max(1, nbytes // step)
    start = time.monotonic()
    for i, at in enumerate(range(0, nbytes, step)):
        s.sendall(data[at:at + step])
        delay = start + seconds * (i + 1) / chunks - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    verdict(s, data)


def client(kind, host, port, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        if kind == "udp":
            s.send(b"ping")
        reply = s.recv(256).decode().strip()
        print(f"ok {reply}")
    except ConnectionRefusedError:
        print("refused")
    except (socket.timeout, TimeoutError):
        print("timeout")
    except OSError as e:
        print(f"error {e.errno}")


def main():
    cmd = sys.argv[1]
    if cmd == "serve-tcp":
        serve_tcp(int(sys.argv[2]), sys.argv[3])
    elif cmd == "serve-udp":
        serve_udp(int(sys.argv[2]), sys.argv[3], *sys.argv[4:5])
    elif cmd == "serve-sink":
        serve_sink(int(sys.argv[2]), sys.argv[3])
    elif cmd == "serve-echo":
        serve_echo(int(sys.argv[2]), sys.argv[3])
    elif cmd == "serve-source":
        serve_source(int(sys.argv[2]), sys.argv[3])
    elif cmd == "fetch":
        fetch(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "stream":
        stream(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
    elif cmd == "hold":
        hold(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] if len(sys.argv) > 6 else None)
    else:
        client(cmd, sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))


if __name__ == "__main__":
    main()
