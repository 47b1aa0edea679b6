#!/usr/bin/env python3
"""The client side of `spotq bench ingest-flood`: one token floods a spotq server with
maximum-size result bundles, all at once, while another pod uploads ordinary ones.

Reads its orders as JSON on stdin (tokens are secrets: never on a command line):
  {"url": "http://127.0.0.1:PORT",
   "flood": {"batch": N, "token": "...", "items": [[id, request_id], ...], "image_bytes": B, "images": 2},
   "other": {"batch": M, "token": "...", "items": [[id, request_id], ...], "image_bytes": B}}
Every upload is retried after the server's Retry-After on 429 and 503, as the worker does,
until it is stored (201, or 200 already stored). Prints one JSON object: per side, how many
were stored, how many 429 and 503 answers came, other statuses, and each answer's time.
"""
import hashlib
import http.client
import io
import json
import os
import sys
import threading
import time
import urllib.parse
import zipfile

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bundle(item_id, request_id, batch, images):
    rows = [{"filename": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "content_type": "image/png"}
            for name, data in images]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("image_generation_queue.json", json.dumps({"id": item_id, "request_id": request_id, "batch_id": batch}))
        archive.writestr("image_generation_files.json", json.dumps(rows))
        for name, data in images:
            archive.writestr(name, data)
    return buffer.getvalue()


def image(size, salt):
    # Incompressible bytes behind a PNG signature: the server checks the signature only.
    return PNG_MAGIC + os.urandom(max(0, size - len(PNG_MAGIC) - len(salt))) + salt


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.stored = 0
        self.already = 0
        self.too_many = 0
        self.unavailable = 0
        self.other = {}
        self.answer_ms = []
        self.retry_after = set()

    def add(self, status, milliseconds, retry_after):
        with self.lock:
            self.answer_ms.append(milliseconds)
            if status == 201:
                self.stored += 1
            elif status == 200:
                self.already += 1
            elif status == 429:
                self.too_many += 1
            elif status == 503:
                self.unavailable += 1
            else:
                self.other[str(status)] = self.other.get(str(status), 0) + 1
            if retry_after is not None:
                self.retry_after.add(retry_after)

    def summary(self):
        ordered = sorted(self.answer_ms)

        def quantile(q):
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None
        return {"stored": self.stored, "already_stored": self.already, "answered_429": self.too_many,
                "answered_503": self.unavailable, "other_statuses": self.other, "answers": len(ordered),
                "answer_ms_p50": quantile(0.5), "answer_ms_max": round(ordered[-1], 1) if ordered else None,
                "retry_after_values": sorted(self.retry_after)}


def upload_until_stored(url, batch, token, body, tally):
    parts = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        started = time.monotonic()
        try:
            connection.request("POST", f"/v1/batches/{batch}/results", body=body,
                               headers={"Authorization": "Bearer " + token, "Content-Type": "application/zip"})
            response = connection.getresponse()
            response.read()
            status, retry_after = response.status, response.getheader("Retry-After")
        except (OSError, http.client.HTTPException):
            # A refusal sent before the body was read may end the connection mid-send.
            status, retry_after = None, None
        finally:
            connection.close()
        elapsed = (time.monotonic() - started) * 1000
        if status is None:
            time.sleep(0.2)
            continue
        tally.add(status, elapsed, retry_after)
        if status in (200, 201):
            return True
        if status in (429, 503):
            time.sleep(float(retry_after or 1))
            continue
        return False
    return False


def main():
    orders = json.load(sys.stdin)
    url = orders["url"]
    flood, other = orders["flood"], orders["other"]
    flood_images = [image(flood["image_bytes"], bytes([n])) for n in range(flood.get("images", 2))]
    flood_bodies = [bundle(i, r, flood["batch"], [(f"{i}_{n:04d}.png", data) for n, data in enumerate(flood_images)])
                    for i, r in flood["items"]]
    other_bodies = [bundle(i, r, other["batch"], [(f"{i}_0001.png", image(other["image_bytes"], b"o"))]) for i, r in other["items"]]
    flood_tally, other_tally = Tally(), Tally()
    start = threading.Barrier(len(flood_bodies) + 1)

    def flood_one(body):
        start.wait()
        upload_until_stored(url, flood["batch"], flood["token"], body, flood_tally)

    def other_pod():
        start.wait()
        for body in other_bodies:
            upload_until_stored(url, other["batch"], other["token"], body, other_tally)

    began = time.monotonic()
    threads = [threading.Thread(target=flood_one, args=(body,)) for body in flood_bodies[:-1]]
    threads.append(threading.Thread(target=other_pod))
    threads.append(threading.Thread(target=flood_one, args=(flood_bodies[-1],)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"seconds": round(time.monotonic() - began, 2),
                      "flood_body_bytes": len(flood_bodies[0]) if flood_bodies else 0,
                      "flood": flood_tally.summary(), "other": other_tally.summary()}))


if __name__ == "__main__":
    main()
