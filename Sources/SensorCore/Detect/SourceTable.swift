package import PortsentryShared

/// What the sensor remembers about one source address. Fixed size, no references.
package struct SourceEntry {
    package var address = IPAddress.unspecified
    package var inUse = false
    package var closedScanReported = false
    /// Entries in this source's slice of the port list (at most `portsPerSource`).
    package var portListCount: UInt8 = 0
    package var lastSeen: Int64 = 0
    /// SCAN_TRIGGER: hits counted since `triggerWindowStart`.
    package var triggerWindowStart: Int64 = 0
    package var triggerCount: UInt32 = 0
    /// Closed-port scoring (scanlogd): weight of distinct closed ports, reset after a gap.
    package var lastNewClosedPort: Int64 = 0
    package var closedWeight: UInt32 = 0
    package var closedPorts: UInt32 = 0
    /// Distinct (protocol, port) pairs probed, tripwires and closed ports together.
    package var distinctPorts: UInt32 = 0
    /// Events reported for this source in the current log window (for the output limiter).
    package var logWindowStart: Int64 = 0
    package var eventsInLogWindow: UInt32 = 0

    /// Eviction order: fewer distinct ports first, then fewer hits.
    package var evidence: UInt64 { UInt64(distinctPorts) << 32 | UInt64(triggerCount + closedWeight) }
}

/// Per-source state in a fixed-capacity hash table, built to survive spoofed-source floods:
/// memory is allocated once at start; the bucket is chosen by a keyed hash (Swift's
/// `Hasher`, SipHash with a per-process random key, salted again per table), so an attacker
/// cannot aim many sources at one bucket; each bucket holds at most `slotsPerBucket`
/// sources, so a lookup never scans more than that; when a bucket is full the source with
/// the least evidence goes, so a flood of one-packet spoofed sources cannot push out a
/// scanner that has already touched several ports.
package final class SourceTable {
    /// Sources per bucket: bounds the work per packet (scanlogd uses 16; 8 halves the worst case).
    package static let slotsPerBucket = 8
    /// Distinct ports remembered exactly per source: more than the 21 high ports that reach
    /// the default closed-port threshold; past it every port counts as new (an upper bound).
    package static let portsPerSource = 24

    package let bucketMask: Int
    package let capacity: Int
    /// An entry untouched for this long is free for reuse.
    package var lifetime: Int64
    private let entries: UnsafeMutablePointer<SourceEntry>
    private let portLists: UnsafeMutablePointer<UInt32>
    private let salt = UInt64.random(in: .min ... .max)

    package private(set) var occupied = 0
    package private(set) var evictions: UInt64 = 0

    /// `requestedCapacity` is rounded up to a power-of-two number of buckets.
    package init(capacity requestedCapacity: Int, lifetime: Int64) {
        var buckets = 1
        while buckets * Self.slotsPerBucket < requestedCapacity { buckets <<= 1 }
        bucketMask = buckets - 1
        capacity = buckets * Self.slotsPerBucket
        self.lifetime = lifetime
        entries = .allocate(capacity: capacity)
        entries.initialize(repeating: SourceEntry(), count: capacity)
        portLists = .allocate(capacity: capacity * Self.portsPerSource)
        portLists.initialize(repeating: 0, count: capacity * Self.portsPerSource)
    }

    deinit {
        entries.deallocate()
        portLists.deallocate()
    }

    /// Approximate resident size, for status output.
    package var memoryBytes: Int { capacity * (MemoryLayout<SourceEntry>.stride + Self.portsPerSource * 4) }

    @inline(__always)
    private func bucket(_ address: IPAddress) -> Int {
        var h = Hasher()
        h.combine(salt)
        h.combine(address.high)
        h.combine(address.low)
        return (h.finalize() & bucketMask) &* Self.slotsPerBucket
    }

    /// The slot of `address`, inserting it (and evicting if the bucket is full).
    @inline(__always)
    package func slot(for address: IPAddress, now: Int64) -> Int {
        let first = bucket(address)
        var free = -1
        var victim = first
        var victimEvidence = UInt64.max
        var victimSeen = Int64.max
        for slot in first..<(first + Self.slotsPerBucket) {
            let e = entries[slot]
            if e.inUse {
                if now &- e.lastSeen > lifetime {
                    if free < 0 { free = slot }
                    continue
                }
                if e.address == address {
                    entries[slot].lastSeen = max(e.lastSeen, now)
                    return slot
                }
                let ev = e.evidence
                if ev < victimEvidence || (ev == victimEvidence && e.lastSeen < victimSeen) {
                    victim = slot
                    victimEvidence = ev
                    victimSeen = e.lastSeen
                }
            } else if free < 0 {
                free = slot
            }
        }
        let slot: Int
        if free >= 0 {
            slot = free
            if !entries[slot].inUse { occupied += 1 }
        } else {
            slot = victim
            evictions &+= 1
        }
        entries[slot] = SourceEntry(address: address, inUse: true, lastSeen: now,
                                    triggerWindowStart: now, lastNewClosedPort: now, logWindowStart: now)
        return slot
    }

    @inline(__always)
    package subscript(slot: Int) -> SourceEntry {
        get { entries[slot] }
        _modify { yield &entries[slot] }
    }

    /// Records (protocol, port) for the source in `slot`; true if it had not been seen.
    /// Past `portsPerSource` distinct ports every port counts as new.
    @inline(__always)
    package func notePort(slot: Int, key: UInt32) -> Bool {
        let base = portLists + slot * Self.portsPerSource
        let n = Int(entries[slot].portListCount)
        for i in 0..<n where base[i] == key { return false }
        if n < Self.portsPerSource {
            base[n] = key
            entries[slot].portListCount = UInt8(n + 1)
        }
        return true
    }

    /// Forgets the closed-port part of a source's port list (after a gap ends a scan).
    package func resetClosedPorts(slot: Int) {
        let base = portLists + slot * Self.portsPerSource
        var kept = 0
        for i in 0..<Int(entries[slot].portListCount) where base[i] & DetectorKeys.tripwireBit != 0 {
            base[kept] = base[i]
            kept += 1
        }
        entries[slot].portListCount = UInt8(kept)
    }
}

/// How (protocol, port) pairs are packed into the per-source port list.
package enum DetectorKeys {
    package static let tripwireBit: UInt32 = 1 << 31

    @inline(__always)
    package static func key(_ proto: TransportProtocol, _ port: UInt16, tripwire: Bool) -> UInt32 {
        UInt32(proto.rawValue) << 16 | UInt32(port) | (tripwire ? tripwireBit : 0)
    }
}
