#!/usr/bin/env python3
"""A TCP relay in front of spotq server that kills a worker in the middle of an upload.

    upload_cutter.py --listen PORT --target PORT [--cut-after N]

Pods talk to the server through it. It passes everything through unchanged, except the
upload (a POST to .../results) after the first N: of that one it forwards the request head
and half the body, then SIGKILLs the process on the other end of the connection (the
`spotq worker`), and closes both sides, so the server sees a body cut short. It prints
one line per event on stdout ("listening", "cut pid=... path=... sent=.../...").
Used by the chaos suite; Linux only (it finds the client process through /proc).
"""
import argparse
import os
import signal
import socket
import threading
import time

lock = threading.Lock()
state = {"uploads": 0, "cut": False}


def say(text):
    with lock:
        print(text, flush=True)


def pid_of_client(peer_port, listen_port):
    """The pid owning the loopback socket 127.0.0.1:peer_port -> 127.0.0.1:listen_port."""
    local = "0100007F:%04X" % peer_port
    remote = "0100007F:%04X" % listen_port
    inode = None
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                inode = fields[9]
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir("/proc/%s/fd" % pid):
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == target:
                    return int(pid)
        except OSError:
            continue
    return None


def pump(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    hang_up(sink, source)


def hang_up(*sockets, close=False):
    """Ends the connections: shutdown() sends the FIN and wakes a recv() blocked in another
    thread, which a plain close() would not (the blocked call holds the socket open)."""
    for s in sockets:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if close:
            try:
                s.close()
            except OSError:
                pass


def read_head(client, buffer):
    while b"\r\n\r\n" not in buffer:
        data = client.recv(65536)
        if not data:
            return None, buffer
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def serve(client, args):
    peer_port = client.getpeername()[1]
    upstream = socket.create_connection(("127.0.0.1", args.target))
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
    buffer = b""
    try:
        while True:
            head, buffer = read_head(client, buffer)
            if head is None:
                break
            lines = head.decode("latin-1").split("\r\n")
            method, path = (lines[0].split(" ") + ["", ""])[:2]
            headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
            if "chunked" in headers.get("transfer-encoding", "").lower():
                upstream.sendall(head + buffer)  # not ours to parse: pass the rest through
                pump(client, upstream)
                return
            length = int(headers.get("content-length", "0") or "0")
            while len(buffer) < length:
                data = client.recv(65536)
                if not data:
                    break
                buffer += data
            body, buffer = buffer[:length], buffer[length:]
            cut = False
            if method == "POST" and path.endswith("/results"):
                with lock:
                    state["uploads"] += 1
                    cut = not state["cut"] and state["uploads"] > args.cut_after
                    if cut:
                        state["cut"] = True
            if not cut:
                upstream.sendall(head + body)
                continue
            half = max(1, len(body) // 2)
            upstream.sendall(head + body[:half])
            time.sleep(0.2)  # the server has the partial body in hand
            pid = pid_of_client(peer_port, args.listen)
            command = ""
            if pid is not None:
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        command = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
                except OSError:
                    pass
            if pid is not None and " worker" in command:
                os.kill(pid, signal.SIGKILL)
                say("cut pid=%d path=%s sent=%d/%d" % (pid, path, half, len(body)))
            else:
                say("cut-failed pid=%s command=%r path=%s" % (pid, command, path))
            break
    except OSError:
        pass
    hang_up(client, upstream, close=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--cut-after", type=int, default=0, help="uploads to pass before cutting one")
    args = parser.parse_args()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.listen))
    server.listen(64)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    say("listening on 127.0.0.1:%d -> 127.0.0.1:%d" % (args.listen, args.target))
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client, args), daemon=True).start()


if __name__ == "__main__":
    main()
