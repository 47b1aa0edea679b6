#!/usr/bin/env python3
"""A hostile pod, written from the README's "Security" section only: what a pod gets is its
environment, which whoever holds the cloud account key can read (RunPod's
`myself { pods { env } }`). This script reads a live pod's environment that way and
tries, with that pod's own broker credentials, every move the README says a pod might
want: read or purge other queues, forge demand, events for other pods and batches, work
for other batches, dead letters that replay elsewhere, declare, bind, flood connections,
claim another user_id, use the management API.

It prints one JSON object: {"pod": {...}, "attacks": [{"attack", "refused", "detail"}]}.
"refused" is the broker's refusal text, or null when the broker let it through (then the
server must discard it; the test checks that). The pod's AMQP URL goes only to the file
given with --save-login, never to stdout.

usage: hostile_pod.py --api URL --api-key-file FILE --management URL [--item BATCH:ID ...]
                      [--save-login FILE]
       (--item: item ids an attacker guessed, with the batch each is in)
       hostile_pod.py --login-with FILE      (try to log in again; after revocation)
"""
import argparse
import base64
import json
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import pika


def graphql(api, key, query):
    request = urllib.request.Request(api, data=json.dumps({"query": query}).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + key})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


def live_pods(api, key):
    pods = graphql(api, key, "query { myself { pods { id name desiredStatus env } } }")["myself"]["pods"]
    out = []
    for pod in pods:
        env = dict(entry.split("=", 1) for entry in pod.get("env") or [] if "=" in entry)
        if pod["desiredStatus"] == "RUNNING" and "SPOTQ_AMQP_URL" in env:
            out.append({"id": pod["id"], "env": env})
    return out


def parameters(url, ca_pem):
    params = pika.URLParameters(url)
    if url.startswith("amqps://"):
        context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
        params.ssl_options = pika.SSLOptions(context, urllib.parse.urlparse(url).hostname)
    params.connection_attempts = 1
    params.socket_timeout = 10
    return params


class Attacker:
    def __init__(self, url, ca_pem):
        self.params = parameters(url, ca_pem)
        self.connection = None
        self.results = []

    def channel(self):
        if self.connection is None or self.connection.is_closed:
            self.connection = pika.BlockingConnection(self.params)
        channel = self.connection.channel()
        channel.confirm_delivery()
        return channel

    def attempt(self, name, move):
        """Runs move(channel); records the broker's refusal, or None when it let it through."""
        refused = None
        detail = ""
        try:
            channel = self.channel()
            detail = move(channel) or ""
            if channel.is_open:
                channel.close()
        except pika.exceptions.ChannelClosedByBroker as error:
            refused = f"{error.reply_code} {error.reply_text}"
        except pika.exceptions.ConnectionClosedByBroker as error:
            refused = f"{error.reply_code} {error.reply_text}"
            self.connection = None
        except pika.exceptions.AMQPError as error:
            refused = f"{type(error).__name__}: {error}"
            self.connection = None
        self.results.append({"attack": name, "refused": refused, "detail": detail})


def event(kind, batch, pod_id, item=None, state=None, detail=None):
    body = {"version": 1, "event_key": "hostile-" + uuid.uuid4().hex, "kind": kind, "batch_id": batch,
            "pod": {"provider": "runpod", "id": pod_id}, "detail": detail or {},
            "occurred_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if item is not None:
        body["item_id"] = item
    if state is not None:
        body["state"] = state
    return json.dumps(body).encode()


OWN_USER = None  # set once the pod's login is known: forged events carry it, as the README says events must


def publish(exchange, key, body, headers=None, user_id=None):
    def move(channel):
        channel.basic_publish(exchange, key, body, pika.BasicProperties(
            content_type="application/json", delivery_mode=2, headers=headers, user_id=user_id or OWN_USER), mandatory=False)
    return move


def attack(args):
    with open(args.api_key_file) as key_file:
        api_key = key_file.read().strip()
    pods = live_pods(args.api, api_key)
    if not pods:
        sys.exit("hostile_pod: no running pod with a broker URL in its environment")
    me = pods[0]
    env = me["env"]
    batch = int(env["SPOTQ_BATCH_ID"])
    others = [pod for pod in pods[1:] if pod["env"].get("SPOTQ_BATCH_ID") != env["SPOTQ_BATCH_ID"]]
    victim = (others or pods[1:] or [{"id": "some-other-pod", "env": {"SPOTQ_BATCH_ID": str(batch + 1)}}])[0]
    other_batch = int(victim["env"].get("SPOTQ_BATCH_ID", batch + 1))
    if other_batch == batch:
        other_batch = batch + 1
    if args.save_login:
        with open(args.save_login, "w") as file:
            json.dump({"url": env["SPOTQ_AMQP_URL"], "ca": env.get("SPOTQ_AMQP_CA_PEM")}, file)
    guessed = [tuple(int(part) for part in pair.split(":", 1)) for pair in args.item or []]
    global OWN_USER
    OWN_USER = urllib.parse.unquote(urllib.parse.urlparse(env["SPOTQ_AMQP_URL"]).username)
    foreign = [item for item_batch, item in guessed if item_batch == other_batch] or [item for item_batch, item in guessed if item_batch != batch] or [1]
    a = Attacker(env["SPOTQ_AMQP_URL"], env.get("SPOTQ_AMQP_CA_PEM"))

    def get(queue):
        return lambda channel: str(channel.basic_get(queue, auto_ack=False)[0] is not None)

    a.attempt("consume spotq.enqueue (website requests)", get("spotq.enqueue"))
    a.attempt("purge spotq.enqueue", lambda channel: str(channel.queue_purge("spotq.enqueue")))
    a.attempt(f"consume another batch's queue spotq.batch.{other_batch}", get(f"spotq.batch.{other_batch}"))
    a.attempt("purge spotq.dead", lambda channel: str(channel.queue_purge("spotq.dead")))
    a.attempt("consume spotq.events.recorder", get("spotq.events.recorder"))
    a.attempt("consume spotq.demand", get("spotq.demand"))
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    a.attempt("forge a demand snapshot from the future (metrics.demand)", publish(
        "spotq.events", "metrics.demand", json.dumps({"version": 1, "taken_at": future, "batches": [], "unplanned": []}).encode()))
    for item in foreign[:1]:
        a.attempt(f"final image.failed for item {item} of batch {other_batch}, on its key", publish(
            "spotq.events", f"image.failed.{other_batch}", event("image.failed", other_batch, me["id"], item, detail={"reason": "hostile", "final": True})))
        a.attempt(f"final image.failed for item {item} of batch {other_batch}, on this pod's key", publish(
            "spotq.events", f"image.failed.{batch}", event("image.failed", other_batch, me["id"], item, detail={"reason": "hostile", "final": True})))
        a.attempt(f"final image.failed for item {item} claimed to be in this pod's batch", publish(
            "spotq.events", f"image.failed.{batch}", event("image.failed", batch, me["id"], item, detail={"reason": "hostile", "final": True})))
    a.attempt(f"gpu_failed for pod {victim['id']}, on its batch's key", publish(
        "spotq.events", f"pod.gpu_failed.{other_batch}", event("state", other_batch, victim["id"], state="gpu_failed")))
    a.attempt(f"gpu_failed for pod {victim['id']}, on this pod's key", publish(
        "spotq.events", f"pod.gpu_failed.{batch}", event("state", batch, victim["id"], state="gpu_failed")))
    a.attempt(f"heartbeats for pod {victim['id']}", publish(
        "spotq.events", f"pod.heartbeat.{batch}", event("pod.heartbeat", batch, victim["id"])))
    a.attempt("publish as the server (user_id guest)", publish(
        "spotq.events", f"pod.heartbeat.{batch}", event("pod.heartbeat", batch, me["id"]), user_id="guest"))
    work = json.dumps({"version": 1, "item_id": foreign[0], "request_id": "hostile", "workflow": {}}).encode()
    a.attempt(f"work into batch {other_batch} through spotq.work", publish("spotq.work", f"spotq.batch.{other_batch}", work))
    a.attempt(f"work into batch {other_batch} through spotq.pod.retry", publish("spotq.pod.retry", f"spotq.batch.{other_batch}", work))
    own_item = ([item for item_batch, item in guessed if item_batch == batch] or [foreign[0]])[0]
    own_work = json.dumps({"version": 1, "item_id": own_item, "batch_id": batch, "request_id": "hostile-work", "workflow": {}}).encode()
    a.attempt(f"its own workflow for item {own_item} into this pod's batch through spotq.pod.retry", publish("spotq.pod.retry", f"spotq.batch.{batch}", own_work))
    origin = {"x-spotq-reason": "hostile", "x-spotq-origin-exchange": "spotq.enqueue", "x-spotq-origin-routing-key": "image.request",
              "x-spotq-origin-queue": "spotq.enqueue"}
    request = json.dumps({"version": 1, "request_id": "hostile-replay", "checkpoint": "x.safetensors", "workflow": {}}).encode()
    a.attempt("a dead letter bound for spotq.enqueue, through spotq.dlx", publish("spotq.dlx", "", request, headers=origin))
    a.attempt("a dead letter bound for spotq.enqueue, through spotq.pod.dead", publish("spotq.pod.dead", f"spotq.batch.{batch}", request, headers=origin))
    a.attempt("publish into spotq.enqueue through the default exchange", publish("", "spotq.enqueue", request))
    a.attempt("declare a queue", lambda channel: str(channel.queue_declare("hostile-" + uuid.uuid4().hex[:6])))
    a.attempt("bind this pod's batch queue to spotq.events", lambda channel: str(channel.queue_bind(f"spotq.batch.{batch}", "spotq.events", "#")))
    a.attempt("bind another batch's queue to spotq.pod.retry", lambda channel: str(channel.queue_bind(f"spotq.batch.{other_batch}", "spotq.pod.retry", f"spotq.batch.{batch}")))

    # Connections beyond the user's limit (the honest worker holds one).
    flood, flood_refusal = [], None
    try:
        for _ in range(5):
            flood.append(pika.BlockingConnection(a.params))
    except pika.exceptions.AMQPError as error:
        flood_refusal = f"{type(error).__name__}: {error}"
    for connection in flood:
        connection.close()
    a.results.append({"attack": "open 5 more connections", "refused": flood_refusal, "detail": f"{len(flood)} opened"})

    url = urllib.parse.urlparse(env["SPOTQ_AMQP_URL"])
    auth = base64.b64encode(f"{urllib.parse.unquote(url.username)}:{urllib.parse.unquote(url.password)}".encode()).decode()
    try:
        urllib.request.urlopen(urllib.request.Request(args.management.rstrip("/") + "/api/queues", headers={"Authorization": "Basic " + auth}), timeout=10)
        management = None
    except urllib.error.HTTPError as error:
        management = f"HTTP {error.code}"
    a.results.append({"attack": "the management API with the pod's login", "refused": management, "detail": ""})
    if a.connection is not None and a.connection.is_open:
        a.connection.close()
    print(json.dumps({"pod": {"id": me["id"], "batch": batch, "victim": victim["id"], "other_batch": other_batch}, "attacks": a.results}))


def login(args):
    with open(args.login_with) as file:
        saved = json.load(file)
    try:
        connection = pika.BlockingConnection(parameters(saved["url"], saved.get("ca")))
        connection.close()
        print(json.dumps({"login": "accepted"}))
    except pika.exceptions.AMQPError as error:
        print(json.dumps({"login": "refused", "detail": f"{type(error).__name__}: {error}"}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--api")
    parser.add_argument("--api-key-file", help="a file holding the account key (a key is never put on a command line)")
    parser.add_argument("--management", default="http://127.0.0.1:15672")
    parser.add_argument("--item", action="append")
    parser.add_argument("--save-login")
    parser.add_argument("--login-with")
    args = parser.parse_args()
    if args.login_with:
        login(args)
    else:
        attack(args)


if __name__ == "__main__":
    main()
