import Foundation
import Testing

/// The real `portsentry` in one namespace, real nmap in another. tcpdump in the sensor's
/// namespace is the ground truth: every probe packet it records must give exactly one
/// event, with the right label, and nothing else may.
extension EndToEnd {
@Suite struct StealthDetectionTests {
    static let tcpPorts = [1, 7, 9, 11, 79, 111]
    static let udpPorts = [7, 9, 111]
    static let config = """
        TCP_PORTS="\(tcpPorts.map(String.init).joined(separator: ","))"
        UDP_PORTS="\(udpPorts.map(String.init).joined(separator: ","))"
        LOG_PER_SOURCE="0"
        """

    struct Scan: CustomTestStringConvertible, Sendable {
        var flag: String
        var label: String
        var ipv6 = false
        var testDescription: String { "nmap \(ipv6 ? "-6 " : "")\(flag)" }
        var udp: Bool { flag == "-sU" }
    }

    static let scans: [Scan] = [
        Scan(flag: "-sS", label: "TCP SYN/Normal scan"),
        Scan(flag: "-sT", label: "TCP SYN/Normal scan"),
        Scan(flag: "-sF", label: "TCP FIN scan"),
        Scan(flag: "-sX", label: "TCP XMAS scan"),
        Scan(flag: "-sN", label: "TCP NULL scan"),
        Scan(flag: "-sA", label: "TCP ACK scan"),
        Scan(flag: "-sW", label: "TCP ACK scan"),
        Scan(flag: "-sM", label: "TCP Maimon scan"),
        Scan(flag: "-sU", label: "UDP"),
        Scan(flag: "-sS", label: "TCP SYN/Normal scan", ipv6: true),
        Scan(flag: "-sX", label: "TCP XMAS scan", ipv6: true),
        Scan(flag: "-sA", label: "TCP ACK scan", ipv6: true),
        Scan(flag: "-sU", label: "UDP", ipv6: true),
    ]

    @Test(arguments: scans)
    func eachProbeIsDetectedOnceWithItsLabel(scan: Scan) throws {
        try withLab(40) { lab in
            let sensor = try lab.startSensor(config: Self.config)
            let attacker = scan.ipv6 ? lab.attackerV6 : lab.attackerV4
            let target = scan.ipv6 ? lab.sensorV6 : lab.sensorV4
            let proto = scan.udp ? "udp" : "tcp"
            let ports = scan.udp ? Self.udpPorts : Self.tcpPorts
            let capture = try lab.startCapture(filter: "src host \(attacker) and dst host \(target) and \(proto)", file: "probes.pcap")

            var nmap = ["nmap", scan.flag, "-Pn", "-n", "--max-retries", "0", "-p", ports.map(String.init).joined(separator: ","), target]
            if scan.ipv6 { nmap.insert("-6", at: 1) }
            try lab.exec(lab.attackerNS, nmap)
            try lab.waitFor("events for every probed port", within: 10) {
                Set(ScanLine.parse(lab.read("sensor.out")).map(\.port)) == Set(ports)
            }

            // Ground truth: probe packets per destination port, as recorded on the wire.
            _ = try lab.stop(capture, signal: SIGINT)
            var probes: [Int: Int] = [:]
            let dump = try Lab.run(["tcpdump", "-n", "-r", lab.file("probes.pcap")])
            for line in dump.split(separator: "\n") {
                // "... IP 10.231.40.2.45678 > 10.231.40.1.79: Flags [S] ..." (IPv6: "IP6 a::2.45678 > a::1.79: ...")
                guard let arrow = line.range(of: " > "),
                      let destination = line[arrow.upperBound...].split(separator: " ").first,
                      let port = Int(destination.dropLast().split(separator: ".").last ?? "") else { continue }
                probes[port, default: 0] += 1
            }
            let expectedTotal = probes.values.reduce(0, +)
            #expect(Set(probes.keys) == Set(ports), "every port was probed: \(probes)")

            try lab.waitFor("\(expectedTotal) events", within: 10) {
                ScanLine.parse(lab.read("sensor.out")).count >= expectedTotal
            }
            #expect(try lab.stop(sensor) == 0)
            let events = ScanLine.parse(lab.read("sensor.out"))
            var perPort: [Int: Int] = [:]
            for e in events {
                #expect(e.source == attacker)
                #expect(e.type == scan.label, "port \(e.port): \(e.type)")
                #expect(e.proto == proto.uppercased())
                #expect(e.ignored == "false" && e.triggered == "true")
                perPort[e.port, default: 0] += 1
            }
            #expect(perPort == probes, "events per port \(perPort) must equal probes per port \(probes)")
        }
    }

    /// `nmap -p-` against a host with only two tripwires: the tripwires fire, and the host's
    /// own resets from the 65,533 other closed ports make one closed-port scan event.
    @Test func fullPortScanIsCaughtThroughNegativeReplies() throws {
        try withLab(41) { lab in
            let sensor = try lab.startSensor(config: "TCP_PORTS=\"1,79\"\nUDP_PORTS=\"9\"\n")
            try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "-T4", "-p-", lab.sensorV4])
            try lab.waitFor("a closed-port scan event", within: 10) {
                ScanLine.parse(lab.read("sensor.out")).contains { $0.type.hasPrefix("Closed-port scan: ") }
            }
            try lab.waitFor("both tripwire events", within: 10) {
                Set(ScanLine.parse(lab.read("sensor.out")).filter { $0.type == "TCP SYN/Normal scan" }.map(\.port)) == [1, 79]
            }
            #expect(try lab.stop(sensor) == 0)
            let events = ScanLine.parse(lab.read("sensor.out"))
            let closed = events.filter { $0.type.hasPrefix("Closed-port scan: ") }
            #expect(closed.count == 1, "one event per scan, not per port: \(closed)")
            #expect(closed.first?.source == lab.attackerV4)
            #expect(events.count == 3)
        }
    }

    /// A real service on a watched port, used normally, must produce no event at all; so must
    /// a client that meets one closed port. A marker probe from another address proves the
    /// sensor was watching when the traffic passed.
    @Test func benignTrafficProducesNoEvents() throws {
        try withLab(42) { lab in
            // A web server on tripwire port 79, in the sensor's namespace.
            _ = try lab.spawn(lab.sensorNS, ["python3", "-m", "http.server", "79", "--bind", "::"], log: "http.out")
            try lab.waitFor("the web server to listen", within: 10) {
                (try? lab.exec(lab.sensorNS, ["ss", "-ltnH", "sport = :79"]))?.contains("79") == true
            }
            let sensor = try lab.startSensor(config: "TCP_PORTS=\"1,79\"\n")
            for _ in 0..<20 {
                try lab.exec(lab.attackerNS, ["python3", "-c",
                    "import urllib.request; urllib.request.urlopen('http://\(lab.sensorV4):79/', timeout=5).read()"])
            }
            try lab.exec(lab.attackerNS, ["python3", "-c",
                "import urllib.request; urllib.request.urlopen('http://[\(lab.sensorV6)]:79/', timeout=5).read()"])
            // One connection to a closed port: a single reset is not a scan.
            try lab.exec(lab.attackerNS, ["python3", "-c",
                "import socket\ntry: socket.create_connection(('\(lab.sensorV4)', 8080), timeout=2)\nexcept OSError: pass"])
            // The marker: a real probe of tripwire 1 from the attacker's IPv6 address.
            try lab.exec(lab.attackerNS, ["nmap", "-6", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1", lab.sensorV6])
            try lab.waitFor("the marker event", within: 10) { !ScanLine.parse(lab.read("sensor.out")).isEmpty }
            #expect(try lab.stop(sensor) == 0)
            let events = ScanLine.parse(lab.read("sensor.out"))
            #expect(events.count == 1, "only the marker: \(events)")
            #expect(events.first?.port == 1 && events.first?.source == lab.attackerV6)
        }
    }
}
}
