import Foundation
import Testing

/// The history lines, checked with the real fail2ban-regex (Debian's fail2ban): fail2ban's
/// stock `portsentry` filter reads our 1.2-format history, Portsentry 2.x's filter reads our
/// 2.x-format history, and the filter we ship matches no ignored or untriggered hit.
extension EndToEnd {
    @Suite struct Fail2banCompatibilityTests {
        static let fixture = Lab.packageRoot.appendingPathComponent("Tests/SensorTests/Fixtures/pcap/nmap-sS-v4.pcap").path
        static let shippedFilter = Lab.packageRoot.appendingPathComponent("deploy/fail2ban/filter.d/portsentry-sensor.conf").path
        static let stockFilter = "/etc/fail2ban/filter.d/portsentry.conf"
        static let upstream2xRegex = #"^[^ ]* Scan from: \[<HOST>\]"#

        let directory: URL

        init() throws {
            directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pstf2b-\(getpid())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }

        /// Replays the nmap fixture (6 SYN probes from 10.231.9.2) into a history file.
        func history(_ name: String, config extra: String) throws -> String {
            let history = directory.appendingPathComponent(name).path
            let config = directory.appendingPathComponent(name + ".conf").path
            try """
                TCP_PORTS="1,7,9,11,79,111"
                HISTORY_FILE="\(history)"
                \(extra)
                """.write(toFile: config, atomically: true, encoding: .utf8)
            try Lab.run([Lab.sensorBinary, "replay", Self.fixture, "-c", config, "--quiet"])
            return history
        }

        /// The "matched" count of fail2ban-regex's `Lines:` summary.
        func matched(_ log: String, _ filter: String) throws -> Int {
            let out = try Lab.run(["fail2ban-regex", log, filter])
            let line = try #require(out.split(separator: "\n").first { $0.hasPrefix("Lines: ") }, "\(out)")
            // "Lines: 6 lines, 0 ignored, 6 matched, 0 missed"
            let parts = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            return try #require(parts.first { $0.hasSuffix("matched") }.flatMap { Int($0.split(separator: " ")[0]) })
        }

        func cleanUp() { try? FileManager.default.removeItem(at: directory) }

        @Test func stockFilterMatchesOur12History() throws {
            defer { cleanUp() }
            #expect(FileManager.default.fileExists(atPath: Self.stockFilter), "fail2ban must be installed (scripts/install-deps.sh)")
            let log = try history("h12", config: "HISTORY_FORMAT=\"1.2\"")
            let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 6)
            #expect(try matched(log, Self.stockFilter) == 6)
        }

        @Test func portsentry2FilterAndOursMatchOur2xHistory() throws {
            defer { cleanUp() }
            let log = try history("h2", config: "HISTORY_FORMAT=\"2\"")
            #expect(try matched(log, Self.upstream2xRegex) == 6)
            #expect(try matched(log, Self.shippedFilter) == 6)
        }

        @Test func shippedFilterSkipsIgnoredAndUntriggeredHits() throws {
            defer { cleanUp() }
            // The same scan three times into one file: ignored (6 lines), below a trigger of 4
            // (3 untriggered + 3 triggered), and once more plainly (6 triggered).
            let ignore = directory.appendingPathComponent("ignore").path
            try "10.231.9.0/24 # the lab's attacker\n".write(toFile: ignore, atomically: true, encoding: .utf8)
            let log = try history("mixed", config: "IGNORE_FILE=\"\(ignore)\"")
            _ = try history("mixed", config: "SCAN_TRIGGER=\"4\"")
            _ = try history("mixed", config: "")
            let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 18)
            #expect(lines.filter { $0.contains("ignored: [true]") }.count == 6)
            #expect(lines.filter { $0.contains("triggered: [false]") }.count == 3)
            #expect(try matched(log, Self.shippedFilter) == 9)
            // Portsentry 2.x's own filter bans on all 18, bypassing the ignore file and the trigger.
            #expect(try matched(log, Self.upstream2xRegex) == 18)
        }
    }
}
