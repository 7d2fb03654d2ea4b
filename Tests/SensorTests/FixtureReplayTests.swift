@testable import Sensor
import PortsentryShared
import Testing
@testable import SensorCore

/// Captures recorded from real scanners (see Fixtures/record-fixtures.sh and its README),
/// replayed through the whole pipeline: parse → detect → respond.
@Suite struct FixtureReplayTests {
    static let directory = String(#filePath.dropLast("FixtureReplayTests.swift".count)) + "Fixtures/pcap/"
    static let attacker4 = "10.231.9.2"
    static let attacker6 = "fd00:231:9::2"
    static let tcpTripwires: Set<UInt16> = [1, 7, 9, 11, 79, 111]

    struct Outcome {
        var events: [ScanEvent] = []
        var summary: ReplayRunner.Summary
        var labels: Set<String> { Set(events.map(\.kind.label)) }
        var ports: [UInt16] { events.map(\.port).sorted() }
    }

    func replay(_ name: String) throws -> Outcome {
        var config = SensorConfig()
        config.tcpPorts = PortSet([1...1, 7...7, 9...9, 11...11, 79...79, 111...111])
        config.udpPorts = PortSet([7...7, 9...9, 111...111])
        let runner = ReplayRunner(path: Self.directory + name, config: config, ignore: AddressSet(), hosts: [],
                                  options: RunOptions(), printEvents: false)
        var events: [ScanEvent] = []
        let summary = try runner.run { events.append($0.event) }
        return Outcome(events: events, summary: summary)
    }

    @Test(arguments: [
        ("nmap-sS-v4.pcap", "TCP SYN/Normal scan"), ("nmap-sT-v4.pcap", "TCP SYN/Normal scan"),
        ("nmap-sF-v4.pcap", "TCP FIN scan"), ("nmap-sX-v4.pcap", "TCP XMAS scan"), ("nmap-sN-v4.pcap", "TCP NULL scan"),
        ("nmap-sA-v4.pcap", "TCP ACK scan"), ("nmap-sW-v4.pcap", "TCP ACK scan"), ("nmap-sM-v4.pcap", "TCP Maimon scan"),
        ("masscan-v4.pcap", "TCP SYN/Normal scan"),
    ])
    func ipv4TCPScans(file: String, label: String) throws {
        let o = try replay(file)
        #expect(o.events.count == 6)
        #expect(Set(o.ports) == Self.tcpTripwires)
        #expect(o.labels == [label])
        #expect(o.events.allSatisfy { $0.source.description == Self.attacker4 && $0.isActionable && $0.ipOptions == .notSet })
        // The host's resets to tripwire probes are not a second detection.
        #expect(o.summary.counters.closedPortScans == 0)
    }

    @Test(arguments: [("nmap-sS-v6.pcap", "TCP SYN/Normal scan"), ("nmap-sF-v6.pcap", "TCP FIN scan")])
    func ipv6TCPScans(file: String, label: String) throws {
        let o = try replay(file)
        #expect(Set(o.ports) == Self.tcpTripwires && o.events.count == 6)
        #expect(o.labels == [label])
        #expect(o.events.allSatisfy { $0.source.description == Self.attacker6 && $0.ipOptions == .unknown })
    }

    /// nmap sends two payloads to 111/udp (rpcbind): two probes, two events.
    @Test(arguments: [("nmap-sU-v4.pcap", attacker4), ("nmap-sU-v6.pcap", attacker6)])
    func udpScans(file: String, source: String) throws {
        let o = try replay(file)
        #expect(o.ports == [7, 9, 111, 111])
        #expect(o.labels == ["UDP"])
        #expect(o.events.allSatisfy { $0.proto == .udp && $0.source.description == source })
        // The host's ICMP port-unreachables answer tripwire probes: no extra scan event.
        #expect(o.summary.counters.closedPortScans == 0)
    }

    @Test func fragmentedScanIsSeenInTheFirstFragments() throws {
        let o = try replay("nmap-fragmented-v4.pcap")
        #expect(o.ports == [1, 7, 9])
        #expect(o.labels == ["TCP fragmented probe"])
        #expect(o.summary.skipped[.laterFragment] == 6)
    }

    @Test func hpingOddFlagCombinationsAreLabelledWithTheirFlags() throws {
        let o = try replay("hping3-odd-flags-v4.pcap")
        #expect(o.events.map(\.kind.label) == [
            "Unknown Type: TCP Packet Flags: SYN: 1 FIN: 1 ACK: 0 PSH: 0 URG: 0 RST: 0",
            "Unknown Type: TCP Packet Flags: SYN: 0 FIN: 0 ACK: 0 PSH: 0 URG: 1 RST: 0",
            "Unknown Type: TCP Packet Flags: SYN: 0 FIN: 0 ACK: 0 PSH: 1 URG: 0 RST: 0",
        ])
    }

    /// 2,001 closed non-tripwire ports (v4) and 501 (v6): one closed-port scan event each,
    /// when the scanlogd-style weight first reaches 21.
    @Test(arguments: [("nmap-closed-ports-v4.pcap", attacker4), ("nmap-closed-ports-v6.pcap", attacker6)])
    func closedPortScans(file: String, source: String) throws {
        let o = try replay(file)
        #expect(o.events.count == 1)
        let e = try #require(o.events.first)
        #expect(e.source.description == source)
        #expect(e.kind.name == "closed-port-scan")
        if case .closedPortScan(let n) = e.kind { #expect(n >= 7 && n <= 21) }
        #expect(e.isActionable)
    }

    /// Five HTTP requests to a real server on tripwire 79. Replay has no socket table, so the
    /// very first SYN counts before the host's SYN+ACK shows a listener; nothing after it.
    @Test func benignTrafficToARealServiceAfterTheFirstSYN() throws {
        let o = try replay("benign-v4.pcap")
        #expect(o.events.count == 1)
        #expect(o.events.first?.kind == .tcpSYN)
        #expect(o.summary.packets >= 50)
    }

    @Test func aMissingFileIsAClearError() {
        let runner = ReplayRunner(path: "/nonexistent.pcap", config: SensorConfig(), ignore: AddressSet(), hosts: [],
                                  options: RunOptions(), printEvents: false)
        #expect(throws: PcapHandle.Failure.self) { try runner.run() }
    }
}
