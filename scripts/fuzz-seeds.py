#!/usr/bin/env python3
"""Writes the fuzz seed corpora (one folder per FUZZ_TARGET) from the project's own files:
every frame of every committed capture fixture, the shipped configs and ignore file, and the
wire messages the tests use. Usage: fuzz-seeds.py OUTDIR"""
import glob, json, os, struct, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = sys.argv[1]

def write(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# packet: the first byte picks the link type (Sources/Fuzz: ethernet, SLL, SLL2, raw, BSD loopback).
LINK = {1: 0, 113: 1, 276: 2, 101: 3, 12: 3, 14: 3, 0: 4, 108: 4}
for path in sorted(glob.glob(os.path.join(root, "Tests/SensorTests/Fixtures/pcap/*.pcap"))):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    link = LINK.get(struct.unpack(endian + "I", data[20:24])[0])
    if link is None:
        continue
    offset, n = 24, 0
    while offset + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[offset + 8:offset + 12])[0]
        frame = data[offset + 16:offset + 16 + incl]
        offset += 16 + incl
        write("packet", "%s-%04d" % (os.path.basename(path), n), bytes([link]) + frame)
        n += 1

write("sensor-config", "deploy.conf", open(os.path.join(root, "deploy/portsentry.conf"), "rb").read())
write("sensor-config", "legacy-1.2.conf", 'TCP_PORTS="1,11,15,79,111"\nADVANCED_PORTS_TCP="1024"\nBLOCK_TCP="1"\n'
      'KILL_ROUTE="/sbin/route add -host $TARGET$ reject"\nHISTORY_FILE="/var/log/ps.history"\nSCAN_TRIGGER="0"\n')
write("ignore-file", "deploy.ignore", open(os.path.join(root, "deploy/portsentry.ignore"), "rb").read())
write("ignore-file", "mixed", "127.0.0.1\n::1 # loopback\n192.168.0.0/16\r\n2001:DB8::/32\n10.0.0.5/24\n")

src = open(os.path.join(root, "Sources/ControllerCore/Config/ControllerConfig.swift")).read()
documented = src.split('static let documented = """', 1)[1].split('"""', 1)[0]
write("controller-config", "documented.conf", "\n".join(l[8:] for l in documented.splitlines()))
write("controller-config", "postgres.conf", "POSTGRES_HOST = db\nPOSTGRES_TLS = yes\nPROTECT = 192.0.2.1, 2001:db8::/64\nBLOCK_DURATION = 2h\n")

update = {"revision": 3, "base": 2, "issued_ms": 1700000000000,
          "add": [{"prefix": "198.51.100.0/24", "expires": 0}, {"prefix": "2001:db8::1", "expires": 1800000000}],
          "remove": ["203.0.113.7"]}
write("blocklist", "update.json", json.dumps(update, separators=(",", ":")))
write("blocklist", "state.json", json.dumps({"state": {"revision": 3, "issued_ms": 1, "entries": update["add"]},
                                             "sha256": "00" * 32}, separators=(",", ":")))
write("blocklist", "answer", '{"answered_ms":2,"digest":"%s","poll_ms":1,"revision":3,"signature":"%s"}\n' % ("ab" * 32, "cd" * 64)
      + '{"digest":"ef","revision":3,"signature":"00","timestamp":1}\n' + json.dumps(update))

event = {"time_ns": 1700000000000000000, "source": "198.51.100.7", "destination": "192.0.2.10", "protocol": "TCP",
         "port": 79, "type": "syn", "evidence": "tripwire", "blocked": False}
write("batch", "one", bytes([6]) + json.dumps({"events": [event]}, separators=(",", ":")).encode())
write("batch", "three", bytes([9]) + json.dumps({"events": [event, dict(event, source="2001:db8::9", protocol="UDP"),
                                                            dict(event, port=65535, blocked=None)]}).encode())

write("operator", "ban", '{"scope":"198.51.100.0/24","duration":3600,"reason":"scanner"}')
write("operator", "allow", '{"scope":"2001:db8::/64","duration":0}')
write("operator", "heartbeat", json.dumps({"version": "3", "protection": {
    "addresses": ["10.0.0.5"], "networks": ["10.0.0.0/24"], "gateways": ["10.0.0.1"], "resolvers": ["10.0.0.53"],
    "controller": [], "ignored": ["192.0.2.0/24"], "sessions": ["198.51.100.70"], "peers": ["203.0.113.1"], "fleet_skipped": 1}}))
