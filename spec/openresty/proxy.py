#!/usr/bin/env python3
"""A forward proxy that only tunnels (HTTP CONNECT), for spec/openresty_spec.lua.

    proxy.py --port-file FILE [--auth USER:PASSWORD]

Listens on 127.0.0.1 (a free port, written to FILE once listening), answers
407 to a CONNECT without the right Proxy-Authorization when --auth is given,
405 to anything but CONNECT, and otherwise pipes bytes both ways. Each
tunnel it opens is one line "tunnel HOST:PORT" on stdout (flushed).
"""
import argparse
import base64
import os
import select
import socket
import socketserver
import sys


class Tunnel(socketserver.BaseRequestHandler):
    def handle(self):
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[0] != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if AUTH is not None:
            given = [l.split(":", 1)[1].strip() for l in lines[1:]
                     if l.lower().startswith("proxy-authorization:")]
            if given != ["Basic " + AUTH]:
                self.request.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                     b"Proxy-Authenticate: Basic realm=\"spec\"\r\nContent-Length: 0\r\n\r\n")
                return
        host, _, port = parts[1].rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        print("tunnel %s:%s" % (host, port), flush=True)
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        pair = {self.request: upstream, upstream: self.request}
        try:
            while True:
                ready, _, _ = select.select(list(pair), [], [], 120)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    pair[s].sendall(data)
        except OSError:
            return
        finally:
            upstream.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global AUTH
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--auth")
    args = ap.parse_args()
    AUTH = base64.b64encode(args.auth.encode()).decode() if args.auth else None
    server = Server(("127.0.0.1", 0), Tunnel)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


AUTH = None
if __name__ == "__main__":
    main()
