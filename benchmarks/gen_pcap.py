#!/usr/bin/env python3
"""Synthetic capture generator for the portsentry replay benchmarks.

Writes classic pcap files (Ethernet link type, microsecond timestamps by default,
snaplen 384 like the live sensor) using only the Python standard library.

  gen_pcap.py mixed   --packets N   --out FILE   realistic traffic mix with a few scanners
  gen_pcap.py spoofed --sources N   --out FILE   spoofed one-packet-per-source SYN flood at
                                                 tripwire port 79, with one real scanner
                                                 (198.51.100.77) SYN-scanning ports 1-1024

Every run with the same arguments and --seed writes the same bytes. IPv4 header
checksums and TCP/UDP/ICMP checksums are correct: payloads are all zero bytes, so the
checksums need only the headers (payload content means nothing to a header-only detector).

Protected host: 192.0.2.10 / 2001:db8::10. Named hosts use documentation ranges.
"""

import argparse
import heapq
import random
import struct
import sys
import time

SNAPLEN = 384
LINKTYPE_ETHERNET = 1
BASE_TIME_NS = 1795568400 * 10**9  # 2026-11-25T01:00:00Z

HOST_MAC = bytes.fromhex("02000000000a")
ROUTER_MAC = bytes.fromhex("020000000001")
ETH_IN_V4 = HOST_MAC + ROUTER_MAC + b"\x08\x00"    # towards the protected host
ETH_OUT_V4 = ROUTER_MAC + HOST_MAC + b"\x08\x00"   # from the protected host
ETH_IN_V6 = HOST_MAC + ROUTER_MAC + b"\x86\xdd"
ETH_OUT_V6 = ROUTER_MAC + HOST_MAC + b"\x86\xdd"

# Portsentry's default tripwires (what the sensor's built-in config watches).
TRIPWIRE_TCP = frozenset([1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 70, 79, 111, 113, 119, 389,
                          512, 513, 514, 515, 540, 543, 544, 873, 989, 990, 992, 1080])
TRIPWIRE_UDP = frozenset([7, 9, 13, 19, 111, 389, 513, 517, 518])

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

_pack = struct.pack
_rec = struct.Struct("<IIII").pack
_ip4 = struct.Struct("!BBHHHBBHII").pack
_tcp = struct.Struct("!HHIIBBHHH").pack
_udp = struct.Struct("!HHHH").pack
_ip6 = struct.Struct("!IHBB16s16s").pack

# Zero payload bytes, pre-sliced: ZEROS[n] is n zero bytes.
ZEROS = [bytes(n) for n in range(SNAPLEN + 1)]


def ip4(text):
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def ip6(text):
    import ipaddress
    return ipaddress.IPv6Address(text).packed


def fold(s):
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def sum16(b):
    if len(b) & 1:
        b += b"\x00"
    return sum(struct.unpack("!%dH" % (len(b) // 2), b))


def fix_ip4_checksum(header):
    """The header with its checksum recomputed (after editing a field)."""
    h = header[:10] + b"\x00\x00" + header[12:]
    return h[:10] + _pack("!H", fold(sum16(h))) + h[12:]


def addr_sum4(src, dst):
    return (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)


class PcapWriter:
    """Buffers records and writes them in large chunks."""

    def __init__(self, path, nanos=False):
        self.f = open(path, "wb", buffering=1 << 20)
        self.nanos = nanos
        magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
        self.f.write(_pack("<IHHiIII", magic, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        self.parts = []
        self.count = 0

    def add(self, t_ns, frame_parts, caplen, origlen):
        sec, sub = divmod(t_ns, 1_000_000_000)
        if not self.nanos:
            sub //= 1000
        parts = self.parts
        parts.append(_rec(sec, sub, caplen, origlen))
        parts.extend(frame_parts)
        self.count += 1
        if len(parts) > 40000:
            self.f.write(b"".join(parts))
            parts.clear()

    def close(self):
        self.f.write(b"".join(self.parts))
        self.parts.clear()
        self.f.close()


# ---------------------------------------------------------------------------------------
# Packet builders. Each returns (parts, caplen, origlen); payloads are zeros.


def tcp4(eth, src, dst, sport, dport, seq, ack, flags, win, paylen, ident, ttl=64):
    tlen = 20 + paylen
    total = 20 + tlen
    s = addr_sum4(src, dst)
    ipc = fold(0x4500 + total + ident + 0x4000 + (ttl << 8) + 6 + s)
    tc = fold(s + 6 + tlen + sport + dport + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16)
              + (ack & 0xFFFF) + 0x5000 + flags + win)
    origlen = 14 + total
    cap = paylen if origlen <= SNAPLEN else SNAPLEN - 54
    return ((eth, _ip4(0x45, 0, total, ident, 0x4000, ttl, 6, ipc, src, dst),
             _tcp(sport, dport, seq, ack, 0x50, flags, win, tc, 0), ZEROS[cap]),
            54 + cap, origlen)


def udp4(eth, src, dst, sport, dport, paylen, ident, ttl=64):
    ulen = 8 + paylen
    total = 20 + ulen
    s = addr_sum4(src, dst)
    ipc = fold(0x4500 + total + ident + 0x4000 + (ttl << 8) + 17 + s)
    uc = fold(s + 17 + ulen + sport + dport + ulen) or 0xFFFF
    origlen = 14 + total
    cap = paylen if origlen <= SNAPLEN else SNAPLEN - 42
    return ((eth, _ip4(0x45, 0, total, ident, 0x4000, ttl, 17, ipc, src, dst),
             _udp(sport, dport, ulen, uc), ZEROS[cap]),
            42 + cap, origlen)


def icmp4_echo(eth, src, dst, reply, ident_echo, seq, ident, ttl=64):
    paylen = 56
    total = 20 + 8 + paylen
    s = addr_sum4(src, dst)
    ipc = fold(0x4500 + total + ident + 0x4000 + (ttl << 8) + 1 + s)
    typ = 0 if reply else 8
    ic = fold((typ << 8) + ident_echo + seq)
    return ((eth, _ip4(0x45, 0, total, ident, 0x4000, ttl, 1, ipc, src, dst),
             _pack("!BBHHH", typ, 0, ic, ident_echo, seq), ZEROS[paylen]),
            14 + total, 14 + total)


def icmp4_port_unreachable(src, dst, quoted_ip, quoted_l4, ident):
    """From the protected host (src) to dst, quoting the datagram dst sent us."""
    body = quoted_ip + quoted_l4[:8]
    ic = fold((3 << 8) + 3 + sum16(body))
    total = 20 + 8 + len(body)
    s = addr_sum4(src, dst)
    ipc = fold(0x45C0 + total + ident + (64 << 8) + 1 + s)
    frame = (ETH_OUT_V4, _ip4(0x45, 0xC0, total, ident, 0, 64, 1, ipc, src, dst),
             _pack("!BBHI", 3, 3, ic, 0), body)
    return frame, 14 + total, 14 + total


def tcp6(eth, src, dst, srcsum, sport, dport, seq, ack, flags, win, paylen, flow=0):
    """srcsum: 16-bit word sum of both IPv6 addresses (precomputed per flow)."""
    tlen = 20 + paylen
    tc = fold(srcsum + 6 + tlen + sport + dport + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16)
              + (ack & 0xFFFF) + 0x5000 + flags + win)
    origlen = 14 + 40 + tlen
    cap = paylen if origlen <= SNAPLEN else SNAPLEN - 74
    return ((eth, _ip6(0x60000000 | flow, tlen, 6, 64, src, dst),
             _tcp(sport, dport, seq, ack, 0x50, flags, win, tc, 0), ZEROS[cap]),
            74 + cap, origlen)


def arp_request(sender, target):
    frame = (b"\xff" * 6 + ROUTER_MAC + b"\x08\x06",
             _pack("!HHBBH6sI6sI", 1, 0x0800, 6, 4, 1, ROUTER_MAC, sender, b"\x00" * 6, target),
             ZEROS[18])
    return frame, 60, 60


# ---------------------------------------------------------------------------------------
# mixed


class Flow:
    __slots__ = ("v6", "client", "server", "sum", "cport", "sport", "cseq", "sseq", "left",
                 "small", "inbound")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def gen_mixed(args):
    rng = random.Random(args.seed)
    n = args.packets
    out = PcapWriter(args.out, args.nanos)
    HOST = ip4("192.0.2.10")
    HOST6 = ip6("2001:db8::10")
    clients = [ip4("198.51.100.%d" % i) for i in range(10, 14)] + \
              [ip4("203.0.113.%d" % i) for i in range(20, 24)]
    clients6 = [ip6("2001:db8:1::%x" % i) for i in range(0x11, 0x15)]
    remotes = [ip4("203.0.113.%d" % i) for i in range(80, 88)]
    resolver = ip4("203.0.113.53")
    ntp = ip4("203.0.113.123")

    def new_flow(kind):
        if kind == "in":
            port = 443 if rng.random() < 0.8 else 22
            return Flow(v6=False, client=rng.choice(clients), server=HOST, sum=0,
                        cport=rng.randint(32768, 60999), sport=port, cseq=rng.getrandbits(32),
                        sseq=rng.getrandbits(32), left=rng.randint(50, 4000), small=port == 22,
                        inbound=True)
        if kind == "out":
            # The protected host is the client: it connects out from an ephemeral port.
            return Flow(v6=False, client=HOST, server=rng.choice(remotes), sum=0,
                        cport=rng.randint(32768, 60999), sport=443 if rng.random() < 0.7 else 80,
                        cseq=rng.getrandbits(32), sseq=rng.getrandbits(32),
                        left=rng.randint(20, 2000), small=False, inbound=False)
        c = rng.choice(clients6)
        return Flow(v6=True, client=c, server=HOST6, sum=sum16(c + HOST6), cport=rng.randint(32768, 60999),
                    sport=443, cseq=rng.getrandbits(32), sseq=rng.getrandbits(32),
                    left=rng.randint(50, 3000), small=False, inbound=True)

    flows = {"in": [new_flow("in") for _ in range(24)],
             "out": [new_flow("out") for _ in range(12)],
             "v6": [new_flow("v6") for _ in range(6)]}

    ident = [rng.getrandbits(16)]

    def next_ident():
        ident[0] = (ident[0] + 1) & 0xFFFF
        return ident[0]

    def seg(f, from_client, flags, paylen):
        """One TCP segment of flow f; advances its sequence numbers."""
        if f.v6:
            if from_client:
                r = tcp6(ETH_IN_V6, f.client, f.server, f.sum, f.cport, f.sport, f.cseq, f.sseq,
                         flags, 502, paylen)
            else:
                r = tcp6(ETH_OUT_V6, f.server, f.client, f.sum, f.sport, f.cport, f.sseq, f.cseq,
                         flags, 509, paylen)
        else:
            toward_host = from_client == f.inbound
            eth = ETH_IN_V4 if toward_host else ETH_OUT_V4
            if from_client:
                r = tcp4(eth, f.client, f.server, f.cport, f.sport, f.cseq, f.sseq, flags, 502,
                         paylen, next_ident())
            else:
                r = tcp4(eth, f.server, f.client, f.sport, f.cport, f.sseq, f.cseq, flags, 509,
                         paylen, next_ident(), ttl=57)
        adv = paylen + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
        if from_client:
            f.cseq = (f.cseq + adv) & 0xFFFFFFFF
        else:
            f.sseq = (f.sseq + adv) & 0xFFFFFFFF
        return r

    # Scheduled packets: heap of (slot, order, function, args).
    heap = []
    order = [0]

    def at(slot, fn, *a):
        order[0] += 1
        heapq.heappush(heap, (slot, order[0], fn, a))

    # --- real scanners: SYN scans of 1-1024 spread over part of the capture -------------
    ports_per_scanner = max(30, min(1024, int(n * 0.02 / 6)))
    scanners = [("203.0.113.66", 0.05, 0.50, False),   # sequential, like a naive scanner
                ("198.51.100.200", 0.30, 0.90, True),  # randomised order, like nmap
                ("203.0.113.99", 0.10, 0.95, True)]
    open_tcp = {22, 443}

    def probe(src, sport, dport, flags, seq, slot):
        def reply():
            if dport in open_tcp and flags == TCP_SYN:
                r = tcp4(ETH_OUT_V4, HOST, src, dport, sport, rng.getrandbits(32), seq + 1,
                         TCP_SYN | TCP_ACK, 64240, 0, next_ident())
                at(slot + 3 + rng.randint(0, 3), lambda: tcp4(ETH_IN_V4, src, HOST, sport, dport, seq + 1, 0,
                                                              TCP_RST, 0, 0, rng.getrandbits(16), ttl=49))
                return r
            # Closed port (tripwires included: in stealth mode they are closed, and the
            # kernel answers): RST+ACK.
            ackn = (seq + (1 if flags & (TCP_SYN | TCP_FIN) else 0)) & 0xFFFFFFFF
            return tcp4(ETH_OUT_V4, HOST, src, dport, sport, 0, ackn, TCP_RST | TCP_ACK, 0, 0, 0)
        at(slot + 1 + rng.randint(0, 4), reply)
        return tcp4(ETH_IN_V4, src, HOST, sport, dport, seq, 0, flags, 1024, 0,
                    rng.getrandbits(16), ttl=49)

    for addr, start, end, shuffled in scanners:
        src = ip4(addr)
        sport = rng.randint(33000, 60000)
        ports = list(range(1, 1025))
        if shuffled:
            rng.shuffle(ports)
        ports = ports[:ports_per_scanner]
        if not shuffled:
            ports.sort()
        slots = sorted(rng.randint(int(n * start), int(n * end)) for _ in ports)
        for slot, port in zip(slots, ports):
            at(slot, lambda src=src, sport=sport, port=port, slot=slot:
               probe(src, sport, port, TCP_SYN, rng.getrandbits(32), slot))

    # --- tripwire probes: a few dozen sources touching one to a few tripwires -----------
    n_tripwire = max(20, n // 2000)
    prober_addrs = [ip4("203.0.113.%d" % i) for i in range(128, 160)] + \
                   [ip4("198.51.100.%d" % i) for i in range(128, 144)]
    tcp_trip = [79, 111, 1080, 1, 21, 113, 540, 20, 119]
    udp_trip = [111, 517, 513, 7]

    def udp_probe(src, sport, dport, slot):
        idn = rng.getrandbits(16)
        r = udp4(ETH_IN_V4, src, HOST, sport, dport, 0, idn, ttl=51)
        ip_hdr, udp_hdr = r[0][1], r[0][2]
        at(slot + 1 + rng.randint(0, 4),
           lambda: icmp4_port_unreachable(HOST, src, ip_hdr, udp_hdr, next_ident()))
        return r

    for _ in range(n_tripwire):
        slot = rng.randint(0, n - 1)
        src = rng.choice(prober_addrs)
        sport = rng.randint(1025, 65535)
        if rng.random() < 0.8:
            x = rng.random()
            flags = TCP_SYN if x < 0.7 else TCP_FIN if x < 0.8 else 0 if x < 0.9 else \
                TCP_FIN | TCP_PSH | TCP_URG
            at(slot, lambda src=src, sport=sport, p=rng.choice(tcp_trip), fl=flags, slot=slot:
               probe(src, sport, p, fl, rng.getrandbits(32), slot))
        else:
            at(slot, lambda src=src, sport=sport, p=rng.choice(udp_trip), slot=slot:
               udp_probe(src, sport, p, slot))

    # --- background traffic --------------------------------------------------------------
    def benign_tcp(kind):
        fl = flows[kind]
        if not fl:  # every connection of this kind is mid-handshake: send a ping instead
            return ping()
        i = rng.randrange(len(fl))
        f = fl[i]
        f.left -= 1
        if f.left <= 0:
            # Close: FIN/ACK from the client, FIN/ACK back, last ACK; meanwhile a new
            # connection opens and joins the pool once its handshake is done.
            fl.pop(i)
            r = seg(f, True, TCP_FIN | TCP_ACK, 0)
            at(slot + 1, lambda: seg(f, False, TCP_FIN | TCP_ACK, 0))
            at(slot + 2, lambda: seg(f, True, TCP_ACK, 0))
            g = new_flow(kind)
            at(slot + 3, lambda: seg(g, True, TCP_SYN, 0))
            at(slot + 4, lambda: seg(g, False, TCP_SYN | TCP_ACK, 0))

            def third():
                fl.append(g)
                return seg(g, True, TCP_ACK, 0)
            at(slot + 5, third)
            return r
        x = rng.random()
        if f.small:  # ssh: small segments both ways
            if x < 0.5:
                return seg(f, True, TCP_PSH | TCP_ACK, rng.choice((36, 52, 68, 100)))
            if x < 0.8:
                return seg(f, False, TCP_PSH | TCP_ACK, rng.randint(36, 600))
            return seg(f, True, TCP_ACK, 0)
        # bulk-ish: data flows from server to client, client mostly ACKs
        if x < 0.42:
            return seg(f, False, TCP_ACK, 1448)
        if x < 0.60:
            return seg(f, False, TCP_PSH | TCP_ACK, rng.randint(60, 1448))
        if x < 0.92:
            return seg(f, True, TCP_ACK, 0)
        return seg(f, True, TCP_PSH | TCP_ACK, rng.randint(80, 700))

    def dns():
        x = rng.random()
        if x < 0.6:
            c = rng.choice(clients)
            cp = rng.randint(32768, 60999)
            q = udp4(ETH_IN_V4, c, HOST, cp, 53, rng.randint(28, 60), rng.getrandbits(16), ttl=60)
            at(slot + 1 + rng.randint(0, 8),
               lambda: udp4(ETH_OUT_V4, HOST, c, 53, cp, rng.randint(60, 300), next_ident()))
            return q
        if x < 0.9:
            cp = rng.randint(32768, 60999)
            q = udp4(ETH_OUT_V4, HOST, resolver, cp, 53, rng.randint(28, 60), next_ident())
            at(slot + 2 + rng.randint(0, 20),
               lambda: udp4(ETH_IN_V4, resolver, HOST, 53, cp, rng.randint(60, 450),
                            rng.getrandbits(16), ttl=58))
            return q
        q = udp4(ETH_OUT_V4, HOST, ntp, 123, 123, 48, next_ident())
        at(slot + 2 + rng.randint(0, 20),
           lambda: udp4(ETH_IN_V4, ntp, HOST, 123, 123, 48, rng.getrandbits(16), ttl=55))
        return q

    ping_seq = [0]

    def ping():
        c = clients[rng.randrange(2)]
        ping_seq[0] = (ping_seq[0] + 1) & 0xFFFF
        s = ping_seq[0]
        at(slot + 1 + rng.randint(0, 3),
           lambda: icmp4_echo(ETH_OUT_V4, HOST, c, True, 0x4242, s, next_ident()))
        return icmp4_echo(ETH_IN_V4, c, HOST, False, 0x4242, s, rng.getrandbits(16))

    def malformed():
        k = rng.randrange(9)
        src = rng.choice(clients)
        if k == 0:  # runt: the frame ends before the EtherType
            return (ETH_IN_V4[:10],), 10, 60
        if k == 1:  # IPv4 header cut short
            (e, iph, th, p), cap, orig = tcp4(ETH_IN_V4, src, HOST, 50000, 443, 1, 1, TCP_ACK, 500, 0, 1)
            return (e, iph[:12]), 26, orig
        if k == 2:  # version nibble is not 4
            (e, iph, th, p), cap, orig = tcp4(ETH_IN_V4, src, HOST, 50000, 443, 1, 1, TCP_ACK, 500, 0, 2)
            return (e, b"\x55" + iph[1:], th), cap, orig
        if k == 3:  # header length below 20 bytes
            (e, iph, th, p), cap, orig = tcp4(ETH_IN_V4, src, HOST, 50000, 443, 1, 1, TCP_ACK, 500, 0, 3)
            return (e, b"\x43" + iph[1:], th), cap, orig
        if k == 4:  # total length shorter than the header
            (e, iph, th, p), cap, orig = tcp4(ETH_IN_V4, src, HOST, 50000, 443, 1, 1, TCP_ACK, 500, 0, 4)
            return (e, iph[:2] + b"\x00\x0a" + iph[4:], th), cap, orig
        if k == 5:  # TCP header cut after 8 bytes
            (e, iph, th, p), cap, orig = tcp4(ETH_IN_V4, src, HOST, 50000, 443, 1, 1, TCP_ACK, 500, 0, 5)
            return (e, iph, th[:8]), 42, orig
        if k == 6:  # UDP header cut after 4 bytes
            (e, iph, uh, p), cap, orig = udp4(ETH_IN_V4, src, HOST, 50000, 53, 0, 6)
            return (e, iph, uh[:4]), 38, orig
        if k == 7:  # IPv6 header cut short
            c6 = clients6[0]
            (e, ih, th, p), cap, orig = tcp6(ETH_IN_V6, c6, HOST6, 0, 50000, 443, 1, 1, TCP_ACK, 500, 0)
            return (e, ih[:30]), 44, orig
        # a later IPv4 fragment (offset 1480 bytes) of some UDP datagram
        (e, iph, uh, p), cap, orig = udp4(ETH_IN_V4, src, HOST, 50000, 53, 100, 8)
        frag = fix_ip4_checksum(iph[:6] + _pack("!H", 185) + iph[8:])
        return (e, frag, uh, p), cap, orig

    def arp():
        return arp_request(ip4("192.0.2.1"), ip4("192.0.2.%d" % rng.randint(2, 254)))

    # Category draws for slots the heap does not fill. Shares are of packets: a DNS query
    # or echo request brings its reply (2 packets a draw), so those draw at half weight.
    # Scanners and tripwire probes (from the heap) displace about 1% on top.
    shares = [(0.600, 1, lambda: benign_tcp("in")),   # TCPv4 clients <-> host:443/22
              (0.220, 1, lambda: benign_tcp("out")),  # the host's own outgoing TCP
              (0.100, 2, dns),                        # UDP 53/123, both directions
              (0.050, 1, lambda: benign_tcp("v6")),   # TCPv6 clients <-> host:443
              (0.020, 2, ping),                       # ICMP echo request + reply
              (0.005, 1, arp),                        # non-IP
              (0.005, 1, malformed)]                  # runts, truncated/invalid headers
    weights = [share / per_draw for share, per_draw, _ in shares]
    fns = [fn for _, _, fn in shares]
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc / sum(weights))

    mean_gap_ns = 1e9 / args.rate
    t = BASE_TIME_NS
    rnd = rng.random
    expo = rng.expovariate
    lam = 1.0 / mean_gap_ns
    slot = 0
    while slot < n:
        t += int(expo(lam)) + 1
        if heap and heap[0][0] <= slot:
            _, _, fn, a = heapq.heappop(heap)
            parts, cap, orig = fn(*a)
        else:
            x = rnd()
            for i, c in enumerate(cum):
                if x < c:
                    parts, cap, orig = fns[i]()
                    break
            else:
                parts, cap, orig = fns[-1]()
        out.add(t, parts, cap, orig)
        slot += 1
    out.close()
    return out.count, (t - BASE_TIME_NS) / 1e9


# ---------------------------------------------------------------------------------------
# spoofed


def scramble(i, key):
    """A bijection on 32-bit integers: distinct inputs give distinct outputs."""
    x = (i * 0x9E3779B1 + key) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def gen_spoofed(args):
    rng = random.Random(args.seed)
    n = args.sources
    out = PcapWriter(args.out, args.nanos)
    HOST = ip4("192.0.2.10")
    SCANNER = ip4("198.51.100.77")
    key = rng.getrandbits(32)
    ports = list(range(1, 1025))
    spacing = max(1, n // len(ports))
    # Probe k goes after flood packet k*spacing + spacing//2.
    probe_after = {k * spacing + spacing // 2: p for k, p in enumerate(ports)}
    replies = sum(1 for p in ports if p not in TRIPWIRE_TCP)
    expected = n + len(ports) + replies
    gap = (args.span * 1e9) / expected
    scan_sport = rng.randint(33000, 60000)
    scan_ident = rng.getrandbits(16)
    getrandbits = rng.getrandbits
    t = 0.0      # capture time since BASE_TIME_NS, ns (a float that small keeps its precision)
    i = 0        # index fed to the bijection
    sent = 0     # flood packets written
    probes = 0
    add = out.add
    while sent < n:
        src = scramble(i, key)
        i += 1
        if src == SCANNER or src == HOST:
            continue  # keep every flood source distinct from the named hosts
        r = getrandbits(72)
        t += gap
        parts, cap, orig = tcp4(ETH_IN_V4, src, HOST, 1024 + (r & 0xFFFF) % 64511, 79,
                                (r >> 16) & 0xFFFFFFFF, 0, TCP_SYN, 1024 if r >> 71 else 64240,
                                0, (r >> 48) & 0xFFFF, ttl=32 + ((r >> 64) & 0x7F))
        add(BASE_TIME_NS + int(t), parts, cap, orig)
        port = probe_after.get(sent)
        sent += 1
        if port is not None:
            probes += 1
            seq = getrandbits(32)
            scan_ident = (scan_ident + 1) & 0xFFFF
            t += gap
            parts, cap, orig = tcp4(ETH_IN_V4, SCANNER, HOST, scan_sport, port, seq, 0, TCP_SYN,
                                    1024, 0, scan_ident, ttl=49)
            add(BASE_TIME_NS + int(t), parts, cap, orig)
            if port not in TRIPWIRE_TCP:
                t += gap
                parts, cap, orig = tcp4(ETH_OUT_V4, HOST, SCANNER, port, scan_sport, 0,
                                        (seq + 1) & 0xFFFFFFFF, TCP_RST | TCP_ACK, 0, 0, 0)
                add(BASE_TIME_NS + int(t), parts, cap, orig)
    out.close()
    return out.count, t / 1e9, probes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("mixed", help="realistic mix with a few scanners")
    m.add_argument("--packets", type=int, default=1_000_000)
    m.add_argument("--rate", type=float, default=100_000, help="capture-time packets per second")
    s = sub.add_parser("spoofed", help="spoofed-source SYN flood at port 79 plus one real scanner")
    s.add_argument("--sources", type=int, default=1_000_000)
    s.add_argument("--span", type=float, default=10.0, help="capture duration in seconds")
    for p in (m, s):
        p.add_argument("--out", required=True)
        p.add_argument("--seed", type=int, default=20261125)
        p.add_argument("--nanos", action="store_true", help="nanosecond-resolution pcap")
    args = ap.parse_args()
    started = time.monotonic()
    if args.mode == "mixed":
        count, span = gen_mixed(args)
        extra = ""
    else:
        count, span, probes = gen_spoofed(args)
        extra = ", %d scanner probes" % probes
    print("%s: %d packets, %.3f s of capture time%s -> %s (%.1f s to write)"
          % (args.mode, count, span, extra, args.out, time.monotonic() - started), file=sys.stderr)


if __name__ == "__main__":
    main()
