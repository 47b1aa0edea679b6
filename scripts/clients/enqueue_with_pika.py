#!/usr/bin/env python3
"""Publishes image requests to spotq the way a Python website would: with pika,
following only the README ("Enqueue by AMQP"): exchange spotq.enqueue, routing
key image.request, content_type application/json, persistent, publisher
confirms, a version-1 JSON body.

It publishes valid requests and a set of invalid ones, then prints a JSON report
on stdout: {"valid": [request_id, ...], "invalid": [{"label": ..., "expect": ...}]},
where "expect" is a phrase the dead letter's x-spotq-reason header should contain.
The tests run it against a real RabbitMQ and check the rows and the dead letters.

usage: enqueue_with_pika.py AMQP_URL CHECKPOINT LORA [--exchange NAME] [--prefix P] [--count N]
"""
import argparse
import json
import sys

import pika


def workflow(checkpoint, lora, text):
    """A ComfyUI API-format text-to-image workflow loading exactly the item's models."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": lora, "strength_model": 0.8,
                                                      "strength_clip": 0.8, "model": ["4", 0], "clip": ["4", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 25, "cfg": 7.0, "sampler_name": "euler",
                                                   "scheduler": "normal", "denoise": 1, "model": ["10", 0],
                                                   "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "site", "images": ["8", 0]}},
    }


def request(request_id, checkpoint, lora, text):
    return {
        "version": 1,
        "request_id": request_id,
        "checkpoint": checkpoint,
        "loras": [{"file": lora, "strength": 0.8}],
        "prompt": {"positive": text, "negative": "blurry", "seed": 42},
        "workflow": workflow(checkpoint, lora, text),
        "priority": 0,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("checkpoint")
    parser.add_argument("lora")
    parser.add_argument("--exchange", default="spotq.enqueue")
    parser.add_argument("--prefix", default="pika")
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.confirm_delivery()
    properties = pika.BasicProperties(content_type="application/json", delivery_mode=2)

    def publish(body, message_id=None):
        # With confirms on, basic_publish raises if the broker nacks or returns it.
        channel.basic_publish(exchange=args.exchange, routing_key="image.request", body=body,
                              properties=pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                                              message_id=message_id),
                              mandatory=True)

    valid = []
    for index in range(args.count):
        request_id = f"{args.prefix}-{index}"
        publish(json.dumps(request(request_id, args.checkpoint, args.lora, f"a lighthouse, number {index}")), request_id)
        valid.append(request_id)
    # The same request again: a retry after a timeout must not make a second image.
    publish(json.dumps(request(valid[0], args.checkpoint, args.lora, "a lighthouse, number 0")), valid[0])

    invalid = []

    def bad(label, body, expect):
        publish(body)
        invalid.append({"label": label, "expect": expect})

    good = request(f"{args.prefix}-bad", args.checkpoint, args.lora, "x")
    bad("not json", b"<xml>not json</xml>", "not valid JSON")
    bad("unknown version", json.dumps(dict(good, version=2)), "unknown version 2")
    missing = dict(good)
    del missing["workflow"]
    bad("missing workflow", json.dumps(missing), '"workflow" is missing')
    bad("mistyped loras", json.dumps(dict(good, loras="ink")), '"loras" must be a JSON array')
    bad("unknown checkpoint", json.dumps(request(f"{args.prefix}-u", "nope.safetensors", args.lora, "x")),
        'unknown checkpoint "nope.safetensors"')
    bad("unknown field", json.dumps(dict(good, colour="red")), 'unknown field "colour"')
    bad("strength as text", json.dumps(dict(good, loras=[{"file": args.lora, "strength": "0.8"}])),
        "strength must be a number")

    connection.close()
    json.dump({"valid": valid, "invalid": invalid}, sys.stdout)


if __name__ == "__main__":
    main()
