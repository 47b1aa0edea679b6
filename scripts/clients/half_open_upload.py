#!/usr/bin/env python3
"""Starts an upload and goes silent half-way, like a pod whose host vanished mid-upload.

    half_open_upload.py PORT PATH TOKEN BUNDLE_FILE [--wait SECONDS]

Sends the request head and half of BUNDLE_FILE's bytes to 127.0.0.1:PORT, keeps the
connection open without sending more, and waits up to SECONDS (30) for the server to end
it. Prints "closed after S s" (the server closed the connection, or answered) or "still
open after S s". Used by the chaos suite.
"""
import argparse
import socket
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("port", type=int)
parser.add_argument("path")
parser.add_argument("token")
parser.add_argument("bundle")
parser.add_argument("--wait", type=float, default=30)
args = parser.parse_args()
body = open(args.bundle, "rb").read()
connection = socket.create_connection(("127.0.0.1", args.port))
head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/zip\r\n"
        "Content-Length: %d\r\n\r\n" % (args.path, args.token, len(body))).encode()
connection.sendall(head + body[: len(body) // 2])
started = time.monotonic()
connection.settimeout(args.wait)
try:
    while connection.recv(65536):
        pass
    print("closed after %.1f s" % (time.monotonic() - started))
except socket.timeout:
    print("still open after %.1f s" % (time.monotonic() - started))
except OSError:
    print("closed after %.1f s" % (time.monotonic() - started))
