#!/usr/bin/env python3
"""Sustained signed-event ingest against a running portsentry-controller.

Simulates SENSORS sensors, each enrolled with a one-time token (made beforehand with
`portsentry-controller sensors add`), each with its own Ed25519 key, over keep-alive HTTPS
connections, WORKERS processes in all. Every batch is signed exactly as a real sensor signs
it (domain, sensor id, strictly increasing sequence, timestamp, SHA-256 of the body) and the
controller verifies and stores each one. Prints one JSON line with the measured figures.

usage: ingest_bench.py URL CA_FILE TOKENS_FILE --seconds N --batch N --workers N
"""
import argparse
import hashlib
import http.client
import json
import multiprocessing as mp
import random
import ssl
import time
import urllib.parse

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

DOMAIN = "portsentry-batch-v1"
KINDS = [("syn", "tripwire"), ("fin", "tripwire"), ("udp", "udp"), ("connect", "handshake")]


def connect(url, ca):
    u = urllib.parse.urlparse(url)
    ctx = ssl.create_default_context(cafile=ca)
    return http.client.HTTPSConnection(u.hostname, u.port or 443, context=ctx, timeout=30)


def enroll(url, ca, token, index):
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    c = connect(url, ca)
    c.request("POST", "/v1/enroll", body=json.dumps({"token": token, "public_key": raw.hex(), "version": "bench"}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    reply = json.loads(r.read())
    if r.status != 200:
        raise SystemExit(f"enrollment {index} refused: {reply}")
    return reply["sensor"], key


def bodies(batch, count=8):
    """A few distinct batch bodies, reused: event ids are sensor:sequence:index, so every
    batch still stores `batch` new rows."""
    out = []
    for b in range(count):
        events = []
        for i in range(batch):
            kind, evidence = KINDS[(b + i) % len(KINDS)]
            events.append({"blocked": None, "destination": f"10.0.{b}.{i % 250 + 1}", "evidence": evidence,
                           "ignored": False, "port": 1 + (i * 7) % 65000,
                           "protocol": "UDP" if kind == "udp" else "TCP",
                           "source": f"203.0.{random.randrange(256)}.{random.randrange(1, 255)}",
                           "time_ns": time.time_ns(), "triggered": True, "type": kind})
        body = json.dumps({"events": events}, separators=(",", ":"), sort_keys=True).encode()
        out.append((body, hashlib.sha256(body).hexdigest()))
    return out


def worker(args, sensors, deadline, results):
    payloads = bodies(args.batch)
    conns = {}
    seq = {}
    batches = events = errors = 0
    latencies = []
    while time.time() < deadline:
        for name, key in sensors:
            if time.time() >= deadline:
                break
            body, digest = payloads[batches % len(payloads)]
            seq[name] = seq.get(name, 0) + 1
            ts = int(time.time() * 1000)
            signed = f"{DOMAIN}\n{name}\n{seq[name]}\n{ts}\n{digest}".encode()
            headers = {"Content-Type": "application/json", "X-Portsentry-Sensor": name,
                       "X-Portsentry-Sequence": str(seq[name]), "X-Portsentry-Timestamp": str(ts),
                       "X-Portsentry-Digest": digest, "X-Portsentry-Signature": key.sign(signed).hex()}
            c = conns.get(name) or connect(args.url, args.ca)
            conns[name] = c
            started = time.perf_counter()
            try:
                c.request("POST", "/v1/events", body=body, headers=headers)
                r = c.getresponse()
                reply = r.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                conns.pop(name, None)
                continue
            latencies.append(time.perf_counter() - started)
            if r.status == 200 and b'"stored"' in reply:
                batches += 1
                events += args.batch
            else:
                errors += 1
    results.put((batches, events, errors, latencies))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("ca")
    p.add_argument("tokens")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args()
    tokens = [t.strip() for t in open(args.tokens) if t.strip()]
    sensors = [enroll(args.url, args.ca, t, i) for i, t in enumerate(tokens)]
    groups = [sensors[i::args.workers] for i in range(args.workers)]
    results = mp.Queue()
    start = time.time()
    deadline = start + args.seconds
    procs = [mp.Process(target=worker, args=(args, g, deadline, results)) for g in groups if g]
    for pr in procs:
        pr.start()
    collected = [results.get() for _ in procs]
    for pr in procs:
        pr.join()
    elapsed = time.time() - start
    batches = sum(r[0] for r in collected)
    events = sum(r[1] for r in collected)
    errors = sum(r[2] for r in collected)
    lat = sorted(x for r in collected for x in r[3])
    pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None
    print(json.dumps({"sensors": len(sensors), "workers": len(procs), "batch": args.batch, "seconds": round(elapsed, 2),
                      "batches": batches, "events": events, "errors": errors,
                      "events_per_second": round(events / elapsed), "latency_ms_p50": pct(0.5),
                      "latency_ms_p99": pct(0.99)}))


if __name__ == "__main__":
    main()
