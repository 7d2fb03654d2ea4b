import Foundation
import Testing

/// Blocking, for real: the sensor's nftables table in the sensor's namespace, real nmap and
/// hping3 from the attacker's, a bystander that must keep working.
extension EndToEnd {
    @Suite struct BlockingTests {
        static func config(_ lab: Lab, _ extra: String = "") -> String {
            """
            TCP_PORTS="1,79"
            BLOCK_TCP="1"
            STATE_DIR="\(lab.file("state"))"
            CONTROL_SOCKET="\(lab.file("run/control.sock"))"
            \(extra)
            """
        }

        @Test func aScannerIsDroppedInTheKernelWhileOthersStillConnect() throws {
            try withLab(50) { lab in
                try lab.addBystander()
                _ = try lab.spawn(lab.sensorNS, ["python3", "-m", "http.server", "8080", "--bind", "::"], log: "http.out")
                try lab.waitFor("the web server", within: 10) { lab.canConnect(from: lab.attackerNS, to: lab.sensorV4, port: 8080) }
                let sensor = try lab.startSensor(config: Self.config(lab, "UDP_PORTS=\"9\"\nBLOCK_UDP=\"1\""), allInterfaces: true)

                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "79", lab.sensorV4])
                try lab.waitFor("the attacker in the kernel set", within: 5) { lab.nftSet("blocked4").contains(lab.attackerV4) }
                #expect(!lab.canConnect(from: lab.attackerNS, to: lab.sensorV4, port: 8080), "the scanner is cut off")
                #expect(lab.canConnect(from: lab.bystanderNS, to: lab.sensorBystanderSide, port: 8080), "others still connect")

                let out = lab.read("sensor.out")
                #expect(out.contains("attackalert: Host \(lab.attackerV4) has been blocked via nftables for 1h"))
                #expect(out.contains("port: [79] type: [TCP SYN/Normal scan] IP opts: [not set] ignored: [false] triggered: [true] noblock: [false] blocked: [true]"))
                let list = try lab.cli(["blocks", "list", "--json"])
                #expect(list.contains("\"target\" : \"\(lab.attackerV4)\""))
                // IPv6 scanners land in the IPv6 set, UDP probes block too (BLOCK_UDP="1").
                try lab.exec(lab.attackerNS, ["nmap", "-6", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1", lab.sensorV6])
                try lab.waitFor("the IPv6 scanner in blocked6", within: 5) { lab.nftSet("blocked6").contains(lab.attackerV6) }
                #expect(!lab.canConnect(from: lab.attackerNS, to: lab.sensorV6, port: 8080))
                try lab.exec(lab.bystanderNS, ["nmap", "-sU", "-Pn", "-n", "--max-retries", "0", "-p", "9", lab.sensorBystanderSide])
                try lab.waitFor("the UDP prober blocked", within: 5) { lab.nftSet("blocked4").contains(lab.bystanderV4) }
                #expect(try lab.stop(sensor) == 0)
                // Fail-static: stopping the sensor leaves the block in force.
                #expect(lab.nftSet("blocked4").contains(lab.attackerV4))
                #expect(!lab.canConnect(from: lab.attackerNS, to: lab.sensorV4, port: 8080))
            }
        }

        @Test func blocksExpireOnTimeAndARestartRestoresTheRest() throws {
            try withLab(51) { lab in
                let config = Self.config(lab, "BLOCK_DURATION=\"4s\"")
                let first = try lab.startSensor(config: config, log: "first.out")
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1", lab.sensorV4])
                try lab.waitFor("the scanner's block", within: 5) { lab.nftSet("blocked4").contains(lab.attackerV4) }
                _ = try lab.cli(["blocks", "add", "203.0.113.0/24", "--for", "1h"])
                _ = try lab.cli(["blocks", "add", "2001:db8::66", "--for", "permanent"])
                #expect(try lab.stop(first) == 0)

                // The machine "reboots": the kernel forgets everything, the state file stays.
                try lab.exec(lab.sensorNS, ["nft", "delete", "table", "inet", "portsentry"])
                let restarted = Date()
                let second = try lab.startSensor(config: config, log: "second.out")
                try lab.waitFor("every live block back in the kernel", within: 5) {
                    lab.nftSet("blocked4_nets").contains("203.0.113.0/24") && lab.nftSet("blocked6").contains("2001:db8::66")
                        && lab.nftSet("blocked4").contains(lab.attackerV4)
                }
                #expect(Date().timeIntervalSince(restarted) < 5)
                let nets = lab.nftSet("blocked4_nets")
                #expect(nets.contains("timeout 1h") || nets.contains("timeout 59m"), "the remaining time is kept: \(nets)")
                #expect(lab.read("second.out").contains("Restored 3 blocks"))

                // The scanner's 4 s block lifts on time, in the kernel and in the sensor.
                try lab.waitFor("the 4 s block to expire", within: 10) {
                    !lab.nftSet("blocked4").contains(lab.attackerV4) && lab.read("second.out").contains("Block on \(lab.attackerV4) expired")
                }
                // Reachable again: a closed, non-tripwire port answers (a tripwire would block it anew).
                #expect(try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "2000", lab.sensorV4])
                    .contains("2000/tcp closed"))

                _ = try lab.cli(["blocks", "remove", "203.0.113.0/24"])
                #expect(!lab.nftSet("blocked4_nets").contains("203.0.113.0/24"))
                #expect(try lab.stop(second) == 0)

                // Another reboot, then a log-only run on the same STATE_DIR: the permanent block
                // left by the blocking run is reported, not enforced; the firewall stays untouched.
                try lab.exec(lab.sensorNS, ["nft", "delete", "table", "inet", "portsentry"])
                let logOnly = try lab.startSensor(config: Self.config(lab).replacingOccurrences(of: "BLOCK_TCP=\"1\"", with: "BLOCK_TCP=\"0\""),
                                                  log: "third.out")
                #expect(lab.read("third.out").contains("1 block(s) left by an earlier run"))
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1", lab.sensorV4])
                try lab.waitFor("the probe logged", within: 5) { lab.read("third.out").contains("Scan from: [\(lab.attackerV4)]") }
                #expect(try lab.stop(logOnly) == 0)
                let tables = try lab.exec(lab.sensorNS, ["nft", "list", "tables"])
                #expect(!tables.contains("portsentry"), "a log-only run created no table: \(tables)")
            }
        }

        /// The iptables + ipset backend, for hosts without nftables.
        @Test func iptablesBackendBlocksThroughIpset() throws {
            try withLab(56) { lab in
                _ = try lab.spawn(lab.sensorNS, ["python3", "-m", "http.server", "8080", "--bind", lab.sensorV4], log: "http.out")
                try lab.waitFor("the web server", within: 10) { lab.canConnect(from: lab.attackerNS, to: lab.sensorV4, port: 8080) }
                let sensor = try lab.startSensor(config: Self.config(lab, "FIREWALL=\"iptables\"\nBLOCK_DURATION=\"1h\""))
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "79", lab.sensorV4])
                try lab.waitFor("the attacker in the ipset", within: 5) {
                    ((try? lab.exec(lab.sensorNS, ["ipset", "list", "portsentry4"])) ?? "").contains(lab.attackerV4)
                }
                #expect(!lab.canConnect(from: lab.attackerNS, to: lab.sensorV4, port: 8080))
                let rules = try lab.exec(lab.sensorNS, ["iptables", "-S"])
                #expect(rules.contains("-A INPUT -j PORTSENTRY"))
                #expect(rules.contains("-A PORTSENTRY -m set --match-set portsentry4 src -j DROP"))
                _ = try lab.cli(["blocks", "remove", lab.attackerV4])
                #expect(lab.canConnect(from: lab.attackerNS, to: lab.sensorV4, port: 8080))
                #expect(try lab.stop(sensor) == 0)
            }
        }

        @Test func spoofedProbesFromTheGatewayNeverBlockIt() throws {
            try withLab(52) { lab in
                try lab.addGateway()
                let sensor = try lab.startSensor(config: Self.config(lab))
                // hping3 keeps waiting for replies that go to the spoofed address: bound it.
                try lab.exec(lab.attackerNS, ["timeout", "-k", "1", "3", "hping3", "-q", "-a", lab.gatewayV4, "-S", "-p", "79",
                                              "-c", "5", "-i", "u20000", lab.sensorV4], allowFailure: true)
                try lab.waitFor("the spoofed probes to be seen", within: 10) {
                    ScanLine.parse(lab.read("sensor.out")).filter { $0.source == lab.gatewayV4 }.count == 5
                }
                let gateway = lab.gatewayV4
                let ignoredFlags = ScanLine.parse(lab.read("sensor.out")).filter { $0.source == gateway }.map(\.ignored)
                #expect(ignoredFlags == Array(repeating: "true", count: 5))
                #expect(lab.read("sensor.out").contains("attackalert: Host \(lab.gatewayV4) is protected (default gateway)"))
                #expect(!lab.nftSet("blocked4").contains(lab.gatewayV4))
                // The protection is specific: a real scan from the attacker's own address is blocked.
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1", lab.sensorV4])
                try lab.waitFor("the real scanner blocked", within: 5) { lab.nftSet("blocked4").contains(lab.attackerV4) }
                #expect(try lab.stop(sensor) == 0)
            }
        }

        /// An admin logged in over SSH (here: a session on a PROTECT_PORTS port) who trips a
        /// tripwire is never locked out; after logging out, the same scan is blocked.
        @Test func peersOfAdminSessionsAreNeverBlocked() throws {
            try withLab(55) { lab in
                _ = try lab.spawn(lab.sensorNS, ["python3", "-c", """
                    import socket, time
                    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(('::', 2222)); s.listen(4)
                    conns = []
                    while True:
                        c, _ = s.accept(); conns.append(c)
                    """], log: "ssh.out")
                try lab.waitFor("the session server", within: 10) { lab.canConnect(from: lab.attackerNS, to: lab.sensorV4, port: 2222) }
                let sensor = try lab.startSensor(config: Self.config(lab, "PROTECT_PORTS=\"2222\""))
                // The admin's session stays open while the scan runs.
                let session = try lab.spawn(lab.attackerNS, ["python3", "-c", """
                    import socket, time
                    c = socket.create_connection(('\(lab.sensorV4)', 2222)); print('connected', flush=True); time.sleep(60)
                    """], log: "session.out")
                try lab.waitFor("the admin session", within: 10) { lab.read("session.out").contains("connected") }
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "79", lab.sensorV4])
                try lab.waitFor("the protected line", within: 10) {
                    lab.read("sensor.out").contains("attackalert: Host \(lab.attackerV4) is protected (peer of an established session)")
                }
                #expect(!lab.nftSet("blocked4").contains(lab.attackerV4))
                // Session over: the next scan is blocked.
                _ = try lab.stop(session, signal: SIGKILL)
                try lab.waitFor("the session to close", within: 10) {
                    !((try? lab.exec(lab.sensorNS, ["ss", "-tnH", "state", "established", "sport = :2222"])) ?? "x").contains(lab.attackerV4)
                }
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1", lab.sensorV4])
                try lab.waitFor("the block", within: 5) { lab.nftSet("blocked4").contains(lab.attackerV4) }
                #expect(try lab.stop(sensor) == 0)
            }
        }

        @Test func aRandomSourceFloodTripsTheBreakerAndMemoryStaysFlat() throws {
            try withLab(53) { lab in
                let sensor = try lab.startSensor(config: Self.config(lab, "BLOCK_RATE_LIMIT=\"10/60s\""))
                func rss() -> Int {
                    let status = (try? String(contentsOfFile: "/proc/\(sensor.pid)/status", encoding: .utf8)) ?? ""
                    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
                    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
                }
                let before = rss()
                try lab.exec(lab.attackerNS, ["timeout", "-k", "1", "3", "hping3", "--flood", "--rand-source", "-S", "-p", "79",
                                              lab.sensorV4], allowFailure: true)
                try lab.waitFor("the breaker to open", within: 10) { lab.read("sensor.out").contains("Circuit breaker open") }
                let after = rss()
                let elements = lab.nftSet("blocked4").split(separator: ",").count
                #expect(elements <= 10, "at most BLOCK_RATE_LIMIT blocks: \(elements)")
                #expect(after - before < 16 * 1024, "RSS grew from \(before) to \(after) KiB")
                #expect(lab.read("sensor.out").components(separatedBy: "Circuit breaker open").count == 2, "said once")
                let status = try lab.cli(["status", "--json"])
                #expect(status.contains("\"breaker_open\" : true"))
                #expect(try lab.stop(sensor) == 0)
            }
        }

        @Test func dryRunDecidesAndLogsButChangesNothing() throws {
            try withLab(59) { lab in
                let sensor = try lab.startSensor(config: Self.config(lab, "KILL_RUN_CMD=\"touch \(lab.file("ran"))\""),
                                                 arguments: ["--dry-run"])
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "79", lab.sensorV4])
                try lab.waitFor("the dry-run block", within: 10) {
                    lab.read("sensor.out").contains("attackalert: [dry run] Host \(lab.attackerV4) has been blocked via dry-run for 1h")
                }
                #expect(lab.read("sensor.out").contains("attackalert: [dry run] External command run for host: \(lab.attackerV4)"))
                #expect(!FileManager.default.fileExists(atPath: lab.file("ran")), "no command ran")
                #expect(!(try lab.exec(lab.sensorNS, ["nft", "list", "tables"])).contains("portsentry"), "no firewall change")
                #expect(try lab.stop(sensor) == 0)
                #expect(!FileManager.default.fileExists(atPath: lab.file("state/blocks.json")), "no state written")
            }
        }

        @Test func failuresAreClearAndLoseNothing() throws {
            try withLab(54) { lab in
                // A KILL_ROUTE that fails: logged as a failure, nothing recorded as blocked.
                let sensor = try lab.startSensor(config: Self.config(lab, "FIREWALL=\"none\"\nKILL_ROUTE=\"/bin/false $TARGET$\""))
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "79", lab.sensorV4])
                try lab.waitFor("the failure", within: 10) { lab.read("sensor.out").contains("Error during target dispose") }
                #expect(lab.read("sensor.out").contains("failed (exited with status 1): \"/bin/false \(lab.attackerV4)\""))
                #expect(lab.read("sensor.out").contains("noblock: [false] blocked: [false]"))
                #expect(try lab.stop(sensor) == 0)

                // Blocking asked for, but the firewall cannot be used (no CAP_NET_ADMIN): the
                // sensor refuses to start and says why, rather than pretend to protect.
                try lab.write("portsentry.conf", Self.config(lab))
                let noAdmin = try lab.spawn(lab.sensorNS, ["setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin",
                                                           Lab.sensorBinary, "-c", lab.file("portsentry.conf")], log: "noadmin.out")
                try lab.waitFor("the sensor to refuse", within: 10) { !noAdmin.isRunning }
                #expect(noAdmin.exitStatus != 0)
                #expect(lab.read("noadmin.out").contains("the nftables firewall cannot be used: nftables:"))

                // A damaged state file: the sensor refuses to start (and overwrite it), and says why.
                // (Nothing was blocked, so the sensor never created its state directory.)
                #expect(!FileManager.default.fileExists(atPath: lab.file("state/blocks.json")))
                try FileManager.default.createDirectory(atPath: lab.file("state"), withIntermediateDirectories: true)
                try "{damaged".write(toFile: lab.file("state/blocks.json"), atomically: true, encoding: .utf8)
                try lab.write("portsentry.conf", Self.config(lab))
                let p = try lab.spawn(lab.sensorNS, [Lab.sensorBinary, "-c", lab.file("portsentry.conf")], log: "damaged.out")
                try lab.waitFor("the sensor to refuse", within: 10) { !p.isRunning }
                #expect(p.exitStatus == 1)
                #expect(lab.read("damaged.out").contains("blocks.json: not a portsentry state file"))
                #expect(try String(contentsOfFile: lab.file("state/blocks.json"), encoding: .utf8) == "{damaged")
            }
        }
    }
}
