import Foundation
@testable import Sensor
import PortsentryShared
import Testing
@testable import SensorCore

@Suite struct ConfigTests {
    func parse(_ text: String) throws(ConfigError) -> SensorConfig {
        try ConfigParser.parse(text: text, file: "test.conf")
    }

    func error(_ text: String) -> ConfigError? {
        do { _ = try parse(text); return nil } catch { return error }
    }

    static let configs = String(#filePath.dropLast("ConfigTests.swift".count)) + "Fixtures/configs/"

    /// Portsentry 2.x's example file (examples/portsentry.conf), uncommented keys.
    @Test func readsPortsentry2Example() throws {
        let c = try ConfigParser.parse(file: Self.configs + "portsentry-2.x-example.conf")
        #expect(c.tcpPorts.count == 28)
        #expect(c.tcpPorts.contains(514) && !c.tcpPorts.contains(516))
        #expect(c.udpPorts.description == "7,9,13,19,111,389,513,517-518")
        #expect(c.historyFile == "/var/log/portsentry.log")
        #expect(c.historyFormat == .portsentry2)
        #expect(c.blockTCP == .logOnly)
    }

    /// Debian bookworm's 1.2 file: its keys, its `KEY="value"` syntax; 1.2 history by default.
    @Test func readsDebian12Config() throws {
        let c = try ConfigParser.parse(file: Self.configs + "debian-1.2.conf")
        #expect(c.looksLike12)
        #expect(c.historyFormat == .portsentry12)
        #expect(c.advancedExcludeUDP.description == "67,137-138,520")
        #expect(c.killRoute == "/sbin/route add -host $TARGET$ reject")
    }

    @Test func explicitHistoryFormatWins() throws {
        let c = try parse("ADVANCED_PORTS_TCP=\"1024\"\nHISTORY_FORMAT=\"2\"\n")
        #expect(c.historyFormat == .portsentry2)
    }

    @Test func acceptsCommentsCRLFSpacesAndEmptyValues() throws {
        let c = try parse("TCP_PORTS = \"1, 2 ,3\"   # trailing comment\r\n\r\n   # indented comment\r\nBLOCKED_FILE=\"\"\r\nSCAN_TRIGGER=2\r\n")
        #expect(c.tcpPorts.description == "1-3")
        #expect(c.blockedFile == nil)
        #expect(c.scanTrigger == 2)
    }

    /// Portsentry's own tests write `HISTORY_FILE="./portsentry.history"`: relative paths are
    /// taken from the directory portsentry was started in, and stored absolute.
    @Test func relativePathsResolveAgainstTheStartDirectory() throws {
        let c = try parse("""
            HISTORY_FILE="./portsentry.history"
            BLOCKED_FILE="state/portsentry.blocked"
            IGNORE_FILE="././portsentry.ignore"
            """)
        let base = StartDirectory.path == "/" ? "" : StartDirectory.path
        #expect(c.historyFile == base + "/portsentry.history")
        #expect(c.blockedFile == base + "/state/portsentry.blocked")
        #expect(c.ignoreFile == base + "/portsentry.ignore")
        #expect(StartDirectory.resolve("/abs/x") == "/abs/x")
    }

    /// A bare single word means what it says; a comment after it is a comment.
    @Test func bareSingleWordValuesAreAccepted() throws {
        let c = try parse("BLOCK_TCP=1 # block\nKILL_HOSTS_DENY=\"ALL: $TARGET$\"\nSCAN_TRIGGER=3\n")
        #expect(c.blockTCP == .block)
        #expect(c.scanTrigger == 3)
    }

    @Test func ourKeys() throws {
        let c = try parse("""
            SCAN_TRIGGER_WINDOW="15m"
            CLOSED_PORT_THRESHOLD="30"
            CLOSED_PORT_MAX_GAP="5s"
            STATE_TABLE_SIZE="4096"
            LOG_PER_SOURCE="0"
            JSON_LOG_FILE="/var/log/portsentry.json"
            """)
        #expect(c.scanTriggerWindow == 900)
        #expect(c.closedPortThreshold == 30)
        #expect(c.closedPortMaxGap == 5)
        #expect(c.stateTableSize == 4096)
        #expect(c.logPerSource == 0)
        #expect(c.jsonLogFile == "/var/log/portsentry.json")
    }

    @Test func errorsNameFileLineAndWhatWasExpected() throws {
        let cases: [(String, Int, String)] = [
            ("TCP_PORTS=\"1,2\"\nTCP_PORT=\"3\"", 2, "unknown key 'TCP_PORT'"),
            ("TCP_PORTS=\"1,abc\"", 1, "'abc' is not a port"),
            ("TCP_PORTS=\"1,0\"", 1, "'0' is not a port"),
            ("TCP_PORTS=\"70000\"", 1, "'70000' is not a port"),
            ("TCP_PORTS=\"40-30\"", 1, "range '40-30' is reversed"),
            ("TCP_PORTS=\"1,,2\"", 1, "empty entry"),
            ("\n\nUDP_PORTS=\"7", 3, "missing closing quote"),
            ("SCAN_TRIGGER=\"-1\"", 1, "expected a whole number"),
            ("BLOCK_TCP=\"3\"", 1, "expected \"0\" (log only)"),
            ("RESOLVE_HOST=\"yes\"", 1, "expected \"0\" or \"1\""),
            ("KILL_ROUTE=/sbin/route add -host $TARGET$ reject", 1, "must be in double quotes"),
            ("PORT_BANNER=a#b", 1, "must be in double quotes"),
            ("KILL_ROUTE=\"/sbin/iptables -I INPUT -j DROP\"", 1, "must contain $TARGET$"),
            ("FIREWALL=\"none\"\nBLOCK_TCP=\"1\"", 2, "needs a firewall (FIREWALL), KILL_ROUTE or KILL_HOSTS_DENY"),
            ("FIREWALL=\"ipfw\"", 1, "expected auto, nftables, iptables or none"),
            ("BLOCK_RATE_LIMIT=\"30\"", 1, "expected N/DURATION"),
            ("BLOCK_UDP=\"2\"", 1, "needs KILL_RUN_CMD"),
            ("TCP_PORTS=\"1\" junk", 1, "unexpected text after the closing quote"),
            ("lowercase=\"1\"", 1, "expected KEY=\"value\""),
            ("SCAN_TRIGGER_WINDOW=\"5 minutes\"", 1, "is not a duration"),
        ]
        for (text, line, fragment) in cases {
            let e = try #require(error(text), "\(text) should fail")
            #expect(e.file == "test.conf")
            #expect(e.line == line, "\(text): line \(e.line)")
            #expect(e.description.contains(fragment), "\(e.description) should mention \(fragment)")
            #expect(e.description.hasPrefix("test.conf:\(line): "))
        }
    }

    @Test func blockingKeys() throws {
        let c = try parse("""
            BLOCK_TCP="1"
            BLOCK_DURATION="10m"
            BLOCK_ESCALATION="3"
            BLOCK_MAX_DURATION="1d"
            BLOCK_RATE_LIMIT="5/10s"
            PROTECT_PORTS="22,2222"
            STATE_DIR="/tmp/ps-state"
            """)
        #expect(c.blockTCP == .block && c.nativeFirewall == .nftables)
        #expect(c.blockPolicy.seconds(forOffense: 1) == 600)
        #expect(c.blockPolicy.seconds(forOffense: 2) == 1800)
        #expect(c.blockPolicy.seconds(forOffense: 9) == 86_400)
        #expect(c.blockRateLimit == 5 && c.blockRateWindow == 10)
        #expect(c.protectPorts.description == "22,2222")
        // A 2.x file that blocks with KILL_ROUTE keeps blocking only that way.
        let legacy = try parse("BLOCK_TCP=\"1\"\nKILL_ROUTE=\"/sbin/route add -host $TARGET$ reject\"")
        #expect(legacy.nativeFirewall == .none)
        #expect(try parse("BLOCK_DURATION=\"permanent\"").blockPolicy.seconds(forOffense: 3) == nil)
    }

    @Test func aDurationWithAnUnknownUnitIsAnErrorNotSeconds() throws {
        for value in ["1y", "5x", "10 m", "m", "-5m", "99999999999999999999d", "3650.5d"] {
            #expect(throws: ConfigError.self, "\(value)") { try parse("BLOCK_DURATION=\"\(value)\"") }
        }
        #expect(try parse("BLOCK_DURATION=\"1w\"").blockPolicy.seconds(forOffense: 1) == 7 * 86_400)
        #expect(try parse("BLOCK_DURATION=\"90\"").blockPolicy.seconds(forOffense: 1) == 90)
    }

    /// The documented example in deploy/ must stay a valid config.
    @Test func shippedExampleConfigIsValid() throws {
        let path = String(#filePath.dropLast("Tests/SensorTests/ConfigTests.swift".count)) + "deploy/portsentry.conf"
        let c = try ConfigParser.parse(file: path)
        #expect(c.tcpPorts.count == 28 && c.blockTCP == .logOnly && c.firewall == .auto)
        #expect(c.blockPolicy.seconds(forOffense: 1) == 3600 && c.blockRateLimit == 30)
    }

    @Test func repeatedKeyLastWins() throws {
        #expect(try parse("SCAN_TRIGGER=\"1\"\nSCAN_TRIGGER=\"4\"").scanTrigger == 4)
    }

    @Test func oversizedLineIsRefused() throws {
        let e = try #require(error("TCP_PORTS=\"" + String(repeating: "1,", count: 40_000) + "1\""))
        #expect(e.description.contains("longer than"))
    }

    @Test func builtInDefaultIsValidAndLogOnly() {
        let c = DefaultConfig.load()
        #expect(c.tcpPorts.count == 28 && c.udpPorts.count == 9)
        #expect(c.blockTCP == .logOnly && c.blockUDP == .logOnly)
        #expect(c.historyFile == nil)
    }

    @Test func missingFileIsAClearError() {
        #expect(throws: ConfigError.self) { try ConfigParser.parse(file: "/nonexistent/portsentry.conf") }
        do { _ = try ConfigParser.parse(file: "/nonexistent/portsentry.conf") } catch {
            #expect(error.description.contains("/nonexistent/portsentry.conf: cannot open"))
        }
    }

    @Test func portSetRanges() throws {
        let s = try PortListParser.parse("5,1-3,4,65535,100-200")
        #expect(s.description == "1-5,100-200,65535")
        #expect(s.count == 107)
        #expect(s.ranges == [1...5, 100...200, 65535...65535])
    }

    @Test func advancedModeTripwires() {
        var c = SensorConfig()
        c.advancedPortsTCP = 1024
        var o = RunOptions()
        o.mode = .advanced
        let s = SettingsBuilder.detection(c, o)
        #expect(s.tripwireTCP.count == 1023 - 2)  // minus 113, 139
        #expect(!s.tripwireTCP.contains(113) && !s.tripwireTCP.contains(1024) && s.tripwireTCP.contains(1023))
        #expect(s.tripwireUDP.count == 1023 - 4)
    }
}

@Suite struct IgnoreFileTests {
    @Test func acceptsWhat2xRejects() throws {
        // Inline comments, CRLF, upper-case hex, host bits set, no final newline.
        let list = try IgnoreFile.parse(text: "# admins\r\n127.0.0.1/32\r\n192.168.1.5/24   # office\r\n2001:DB8::/32\r\n0.0.0.0\r\n10.1.1.1", file: "ignore")
        let set = AddressSet(list)
        #expect(list.count == 5)
        #expect(set.contains(IPAddress("192.168.1.200")!))
        #expect(set.contains(IPAddress("2001:db8:ffff::1")!))
        #expect(set.contains(IPAddress("10.1.1.1")!))
        #expect(!set.contains(IPAddress("10.1.1.2")!))
        #expect(!set.contains(IPAddress("2001:db9::1")!))
    }

    @Test func badEntryNamesItsLine() {
        do {
            _ = try IgnoreFile.parse(text: "10.0.0.1\n\nnot-an-ip\n", file: "portsentry.ignore")
            Issue.record("should fail")
        } catch {
            #expect(error.description == "portsentry.ignore:3: 'not-an-ip' is not an IPv4/IPv6 address or CIDR")
        }
    }
}

/// What `check-config` must catch before start-up would: FIFOs, kernel file systems,
/// symlinks, a STATE_DIR that is a file, a zone id in the ignore file.
@Suite struct PathRulesTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-paths-\(UUID().uuidString)").path

    func config(_ extra: String) throws -> SensorConfig {
        try ConfigParser.parse(text: "TCP_PORTS=\"79\"\nSTATE_DIR=\"\(dir)/state\"\nCONTROL_SOCKET=\"\(dir)/c.sock\"\n" + extra, file: "t.conf")
    }

    @Test func writtenFilesMustBeRealFilesOutsideKernelTrees() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "".write(toFile: dir + "/real.log", atomically: true, encoding: .utf8)
        symlink(dir + "/real.log", dir + "/link.log")
        mkfifo(dir + "/fifo", 0o600)
        try "x".write(toFile: dir + "/afile", atomically: true, encoding: .utf8)
        for (extra, expected) in [
            ("HISTORY_FILE=\"/proc/self/portsentry.history\"", "kernel file system"),
            ("HISTORY_FILE=\"\(dir)/link.log\"", "symbolic link"),
            ("JSON_LOG_FILE=\"\(dir)/fifo\"", "not a regular file"),
            ("HISTORY_FILE=\"\(dir)/afile/h.log\"", "is not a directory"),
            ("STATE_DIR=\"/proc/portsentry\"", "kernel file system"),
            ("STATE_DIR=\"\(dir)/afile\"", "not a directory"),
        ] {
            let c = try config(extra)
            #expect(throws: ConfigError.self, "\(extra)") { try PathRules.check(c, file: "t.conf") }
            do { try PathRules.check(c, file: "t.conf") } catch { #expect(error.description.contains(expected), "\(error)") }
        }
        try PathRules.check(try config("HISTORY_FILE=\"\(dir)/real.log\"\nJSON_LOG_FILE=\"\(dir)/new/sub/e.json\""), file: "t.conf")
    }

    @Test func aFifoIsRefusedInsteadOfHanging() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        mkfifo(dir + "/fifo.conf", 0o600)
        #expect(throws: ConfigError.self) { try ConfigParser.parse(file: dir + "/fifo.conf") }
        #expect(throws: ConfigError.self) { try IgnoreFile.parse(file: dir + "/fifo.conf") }
    }

    @Test func aZoneIdInTheIgnoreFileIsAnError() {
        #expect(throws: ConfigError.self) { try IgnoreFile.parse(text: "fe80::1%eth0\n", file: "i") }
        #expect((try? IgnoreFile.parse(text: "fe80::1\n", file: "i"))?.count == 1)
    }
}
