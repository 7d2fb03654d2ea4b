@testable import Sensor
import PortsentryShared
import Testing
@testable import SensorCore

/// Detector behaviour on synthetic packets: triggers and windows, ignore rules, the service
/// check, negative-reply scoring and the bounded table.
@Suite struct DetectorTests {
    static let host = IPAddress("192.0.2.10")!
    static let scanner = IPAddress("198.51.100.2")!
    static let second: Int64 = nanosPerSecond

    func makeDetector(_ configure: (inout DetectionSettings) -> Void = { _ in }) -> Detector {
        var s = DetectionSettings()
        s.tripwireTCP = PortSet([1...1, 79...79, 111...111])
        s.tripwireUDP = PortSet([7...7, 9...9])
        s.tableCapacity = 1024
        configure(&s)
        var h = HostView()
        h.ownAddresses = AddressSet([IPPrefix(host: Self.host)])
        return Detector(settings: s, host: h, ignore: AddressSet())
    }

    func probe(_ port: UInt16, flags: TCPFlags = .syn, from src: IPAddress = scanner, to dst: IPAddress = host,
               udp: Bool = false) -> ParsedPacket {
        var p = ParsedPacket()
        p.transport = udp ? .udp : .tcp
        p.source = src
        p.destination = dst
        p.sourcePort = 45678
        p.destinationPort = port
        p.tcpFlags = flags
        return p
    }

    /// The host's own RST+ACK answering a probe of `port`.
    func reset(_ port: UInt16, to dst: IPAddress = scanner) -> ParsedPacket {
        var p = probe(45678, flags: [.rst, .ack], from: Self.host, to: dst)
        p.sourcePort = port
        return p
    }

    @Test func tripwireProbeIsOneEventWithPortsentryFields() throws {
        let d = makeDetector()
        let e = try #require(d.process(probe(79), now: 0, wallTime: 0)).event
        #expect(e.kind == .tcpSYN && e.port == 79 && e.proto == .tcp)
        #expect(e.ignored == .no && e.triggered == .yes)
        #expect(d.process(probe(80), now: 1, wallTime: 1) == nil)
        #expect(d.counters.notWatched == 1)
    }

    @Test func scanTriggerCountsInsideItsWindow() {
        // Portsentry's own unit test: trigger 3 gives F, F, T, T for one host...
        let d = makeDetector { $0.scanTrigger = 3; $0.triggerWindow = 60 * Self.second }
        let t = (0..<4).map { i in d.process(probe(79), now: Int64(i) * Self.second, wallTime: 0)!.event.triggered }
        #expect(t == [.no, .no, .yes, .yes])
        // ...another host has its own count...
        let other = IPAddress("198.51.100.3")!
        #expect(d.process(probe(79, from: other), now: 5 * Self.second, wallTime: 0)!.event.triggered == .no)
        // ...and a count that never decays is a bug: after the window it starts again.
        let late = d.process(probe(79), now: 200 * Self.second, wallTime: 0)!.event
        #expect(late.triggered == .no)
    }

    @Test func triggerZeroAndOneActAtOnce() {
        for trigger in [0, 1] {
            let d = makeDetector { $0.scanTrigger = trigger }
            #expect(d.process(probe(1), now: 0, wallTime: 0)!.event.triggered == .yes)
        }
    }

    @Test func ignoreFileHitIsLoggedNotCounted() throws {
        let d = makeDetector()
        d.ignore = AddressSet([try IPPrefix(parsing: "198.51.100.0/24")])
        let e = try #require(d.process(probe(79), now: 0, wallTime: 0)).event
        #expect(e.ignored == .yes && e.triggered == .unset && e.noblock == .unset && e.blocked == .unset)
        #expect(e.ignoreReason == .ignoreFile)
        #expect(d.tableOccupied == 0)
    }

    @Test func ownAddressesAndSelfTrafficAreNeverActedOn() throws {
        let d = makeDetector()
        let selfHit = try #require(d.process(probe(79, from: Self.host), now: 0, wallTime: 0)).event
        #expect(selfHit.ignored == .yes && selfHit.triggered == .yes && selfHit.noblock == .yes && selfHit.blocked == .no)
        #expect(!selfHit.isActionable)
        d.host.ownAddresses.insert(IPPrefix(host: IPAddress("192.0.2.11")!))
        let sibling = try #require(d.process(probe(79, from: IPAddress("192.0.2.11")!), now: 0, wallTime: 0)).event
        #expect(sibling.ignoreReason == .ownAddress)
    }

    @Test func spoofedImpossibleSourcesAreDropped() {
        let d = makeDetector()
        for src in ["0.0.0.0", "224.0.0.1", "255.255.255.255", "ff02::1"] {
            #expect(d.process(probe(79, from: IPAddress(src)!), now: 0, wallTime: 0) == nil)
        }
        #expect(d.counters.invalidSource == 4)
    }

    @Test func serviceCheckSkipsPortsWithListeners() {
        let d = makeDetector()
        d.host.tcpListeners.anyAddress.insert(79)
        d.host.udpListeners.specific.insert(AddressPort(address: Self.host, port: 7))
        #expect(d.process(probe(79), now: 0, wallTime: 0) == nil)
        #expect(d.process(probe(7, udp: true), now: 0, wallTime: 0) == nil)
        #expect(d.process(probe(9, udp: true), now: 0, wallTime: 0) != nil)
        #expect(d.counters.serviceRunning == 2)
        d.host.serviceCheck = false  // -S
        #expect(d.process(probe(79), now: 0, wallTime: 0) != nil)
    }

    @Test func ackProbesCountOnlyWhereNoConnectionCanExist() {
        let d = makeDetector { $0.tripwireTCP = PortSet([79...79, 40000...40000]) }
        #expect(d.process(probe(79, flags: .ack), now: 0, wallTime: 0)?.event.kind == .tcpACK)
        #expect(d.process(probe(79, flags: [.fin, .ack]), now: 0, wallTime: 0)?.event.kind == .tcpMaimon)
        // 40000 is in the ephemeral range: an ACK there may be a reply to our own connection.
        #expect(d.process(probe(40000, flags: .ack), now: 0, wallTime: 0) == nil)
        #expect(d.process(probe(40000, flags: .syn), now: 0, wallTime: 0) != nil)
        // A bound socket on a low port may have connections too.
        d.host.boundTCPPorts.insert(79)
        #expect(d.process(probe(79, flags: [.psh, .ack]), now: 0, wallTime: 0) == nil)
        #expect(d.counters.possibleConnection == 2)
    }

    @Test func backscatterIsNotEvidence() {
        let d = makeDetector()
        #expect(d.process(probe(79, flags: [.syn, .ack]), now: 0, wallTime: 0) == nil)
        #expect(d.process(probe(79, flags: .rst), now: 0, wallTime: 0) == nil)
        #expect(d.counters.backscatter == 2)
    }

    // MARK: closed ports

    @Test func closedPortScanIsScoredScanlogdStyle() throws {
        let d = makeDetector()
        // 7 privileged closed ports × weight 3 = 21 = threshold: one event, on the 7th.
        var events: [DetectedEvent] = []
        for (i, port) in [21, 22, 23, 25, 53, 80, 443, 445, 8080].enumerated() {
            if let e = d.process(reset(UInt16(port)), now: Int64(i) * Self.second / 10, wallTime: 0) { events.append(e) }
        }
        #expect(events.count == 1)
        let e = try #require(events.first).event
        #expect(e.kind == .closedPortScan(ports: 7))
        #expect(e.source == Self.scanner && e.destination == Self.host && e.port == 443)
        #expect(e.triggered == .yes)
    }

    @Test func highPortsWeighLess() {
        let d = makeDetector()
        var fired = 0
        for i in 0..<21 where d.process(reset(UInt16(2000 + i)), now: Int64(i) * 1000, wallTime: 0) != nil { fired = i + 1 }
        #expect(fired == 21)
    }

    @Test func aGapLongerThanTheMaximumStartsOver() {
        let d = makeDetector()
        var count = 0
        for i in 0..<30 {  // one new port every 4 s: never two inside the 3 s gap
            if d.process(reset(UInt16(100 + i)), now: Int64(i) * 4 * Self.second, wallTime: 0) != nil { count += 1 }
        }
        #expect(count == 0)
    }

    @Test func repeatedRepliesForOnePortAreNotAScan() {
        let d = makeDetector()
        for i in 0..<100 { #expect(d.process(reset(22), now: Int64(i) * 1000, wallTime: 0) == nil) }
    }

    @Test func negativeRepliesThatSayNothingAreNotScored() {
        let d = makeDetector()
        // Ephemeral source ports (our own connections), tripwire ports (already an event),
        // replies to ourselves or to ignored hosts.
        for i in 0..<30 { _ = d.process(reset(UInt16(33000 + i)), now: Int64(i), wallTime: 0) }
        for _ in 0..<30 { _ = d.process(reset(79), now: 1, wallTime: 0) }
        for i in 0..<30 { _ = d.process(reset(UInt16(100 + i), to: Self.host), now: Int64(i), wallTime: 0) }
        #expect(d.counters.closedPortScans == 0)
        #expect(d.counters.negativeReplies == 0)
    }

    @Test func icmpUnreachableCountsForUDP() {
        let d = makeDetector()
        var fired = false
        for i in 0..<7 {
            var p = ParsedPacket()
            p.transport = .portUnreachable
            p.source = Self.host
            p.destination = Self.scanner
            p.embeddedSource = Self.scanner
            p.embeddedDestination = Self.host
            p.embeddedProtocol = .udp
            p.destinationPort = UInt16(500 + i)
            if let e = d.process(p, now: Int64(i), wallTime: 0) {
                fired = true
                #expect(e.event.proto == .udp)
            }
        }
        #expect(fired)
    }

    @Test func closedPortDetectionCanBeTurnedOff() {
        let d = makeDetector { $0.closedPortDetection = false }
        for i in 0..<50 { #expect(d.process(reset(UInt16(100 + i)), now: Int64(i), wallTime: 0) == nil) }
    }

    // MARK: bounded state

    @Test func spoofedFloodCannotGrowTheTableOrEvictAnEstablishedScanner() {
        // A tiny table (32 buckets) and 200,000 one-packet spoofed sources: a scanner that
        // has already touched two ports outranks every one of them and is never evicted.
        let d = makeDetector { $0.tableCapacity = 256 }
        _ = d.process(probe(1), now: 0, wallTime: 0)
        _ = d.process(probe(111), now: 1, wallTime: 0)
        var rng = SplitMix64(seed: 7)
        for i in 0..<200_000 {
            let spoofed = IPAddress(ipv4: UInt32(truncatingIfNeeded: rng.next()) | 0x0100_0000)
            _ = d.process(probe(79, from: spoofed), now: Int64(i) * 1000, wallTime: 0)
        }
        #expect(d.tableOccupied <= d.tableCapacity && d.tableCapacity == 256)
        #expect(d.tableEvictions > 150_000)  // 1/16 of random sources are multicast, dropped before the table
        #expect(d.process(probe(79), now: 300_000_000, wallTime: 0)?.sourceDistinctPorts == 3)
    }

    @Test func aScannerStartingDuringAFloodIsStillTracked() {
        // 4,096 entries (512 buckets), 200 spoofed sources between two of the scanner's probes:
        // its bucket sees well under the 8 inserts that could push out its first hit.
        let d = makeDetector { $0.tableCapacity = 4096; $0.tripwireTCP = PortSet([1...1024]) }
        var rng = SplitMix64(seed: 11)
        var last: DetectedEvent? = nil
        var time: Int64 = 0
        for port in 1...50 {
            for _ in 0..<200 {
                time += 1000
                let spoofed = IPAddress(ipv4: UInt32(truncatingIfNeeded: rng.next()) | 0x0100_0000)
                _ = d.process(probe(80, from: spoofed), now: time, wallTime: 0)
            }
            last = d.process(probe(UInt16(port)), now: time, wallTime: 0)
        }
        #expect(last?.sourceDistinctPorts == 50)
        #expect(last?.sourceEventNumber == 50)
    }

    @Test func perSourceEventNumbersRestartEachLogWindow() {
        let d = makeDetector { $0.logWindow = 10 * Self.second }
        let numbers = (0..<3).map { d.process(probe(79), now: Int64($0), wallTime: 0)!.sourceEventNumber }
        #expect(numbers == [1, 2, 3])
        #expect(d.process(probe(79), now: 20 * Self.second, wallTime: 0)!.sourceEventNumber == 1)
    }
}
