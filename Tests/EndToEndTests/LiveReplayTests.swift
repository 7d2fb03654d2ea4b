import Foundation
import Testing

/// `portsentry replay` claims to run the pipeline production runs. Proof: the live sensor and
/// tcpdump watch the same real scans on the same interface; replaying tcpdump's file with
/// the same config must print the very same event lines, in the same order.
extension EndToEnd {
@Suite struct LiveReplayTests {
    @Test func replayOfTheWirePrintsWhatTheLiveSensorLogged() throws {
        try withLab(75) { lab in
            // No blocking: a live block would stop the scan's later probes reaching the host,
            // and the lines would differ for a reason that is not the pipeline.
            let config = """
                TCP_PORTS="1,7,9,11,79,111,143"
                UDP_PORTS="7,9,111"
                BLOCK_TCP="0"
                BLOCK_UDP="0"
                LOG_PER_SOURCE="0"
                """
            let sensor = try lab.startSensor(config: config)
            let capture = try lab.startCapture(filter: "tcp or udp or icmp or icmp6", file: "wire.pcap")
            let v4 = lab.sensorV4, v6 = lab.sensorV6
            let scans: [[String]] = [
                ["nmap", "-sS", "-Pn", "-n", "-T4", "--max-retries", "0", "-p", "1-1024", v4],  // tripwires + closed-port scan
                ["nmap", "-sX", "-Pn", "-n", "--max-retries", "0", "-p", "1,7,9,11", v4],
                ["nmap", "-sA", "-Pn", "-n", "--max-retries", "0", "-p", "79,111,143", v4],
                ["nmap", "-sU", "-Pn", "-n", "--max-retries", "0", "-p", "7,9,111", v4],
                ["nmap", "-6", "-sF", "-Pn", "-n", "--max-retries", "0", "-p", "1,79,143", v6],
                ["nmap", "-6", "-sU", "-Pn", "-n", "--max-retries", "0", "-p", "9,111", v6],
            ]
            for scan in scans { try lab.exec(lab.attackerNS, scan) }
            // The last scan's events mark the end: IPv6 UDP on both ports.
            try lab.waitFor("the last scan's events", within: 15) {
                Set(ScanLine.parse(lab.read("sensor.out")).filter { $0.source == lab.attackerV6 && $0.proto == "UDP" }.map(\.port)) == [9, 111]
            }
            _ = try lab.stop(capture, signal: SIGINT)
            #expect(try lab.stop(sensor) == 0)

            let live = Self.eventLines(lab.read("sensor.out"))
            let replayed = Self.eventLines(try Lab.run([Lab.sensorBinary, "replay", lab.file("wire.pcap"), "-c", lab.file("portsentry.conf"),
                                                       "--host", v4, "--host", v6]))
            #expect(live.count >= 22, "every scan was logged live: \(live.count) lines")
            #expect(live.contains { $0.contains("type: [Closed-port scan: ") }, "the -p 1-1024 scan's resets made a closed-port event")
            #expect(replayed == live, "replay must print what the live sensor logged:\nlive:\n\(live.joined(separator: "\n"))\nreplay:\n\(replayed.joined(separator: "\n"))")
        }
    }

    /// Event lines from "Scan from:" on: the time stamp in front differs (journald's style on
    /// stdout live, the packet's time in replay), the rest must not.
    static func eventLines(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            line.range(of: "Scan from: [").map { String(line[$0.lowerBound...]) }
        }
    }
}
}
