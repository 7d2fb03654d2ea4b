import Foundation
import Testing

/// Portsentry's own system tests (`system_test_robot/tests.robot` in portsentry/portsentry,
/// 34 cases), run against our binary by our own harness.
///
/// Each case below keeps the upstream case's number and name, its configuration lines, its
/// command-line switches, its probes and the lines it expects, as the upstream suite states
/// them. Upstream drives a target machine over SSH from a runner; here the target is a
/// network namespace and the runner another, joined by a veth pair:
/// - "on the target" means inside the target namespace *and* a private mount namespace
///   whose /etc, /var/lib and /run are copy-on-write overlays. The sensor runs there with
///   its defaults untouched (STATE_DIR /var/lib/portsentry, the control socket in
///   /run/portsentry, /etc/hosts.deny), as on a real target, and nothing it writes reaches
///   the machine. The overlays live for the whole suite, so state left by one case meets
///   the next one, as on a real target.
/// - Upstream's per-test setup (a fresh `mktemp -d` working directory, an empty
///   /etc/hosts.deny) and teardown (SIGTERM, the daemon must exit within 10 s) are kept.
/// - Upstream asserts "nothing was logged" by sleeping 2 s. Here a tripwire probe follows
///   the invalid one and the assertion is that no scan line precedes the tripwire's: the
///   same claim, decided by an event instead of a clock.
///
/// `PORTSENTRY_UPSTREAM_CASES=001,014` runs a subset.
extension EndToEnd {
@Suite struct UpstreamSuiteTests {
    @Test func upstreamSystemSuitePasses() throws {
        let wanted = ProcessInfo.processInfo.environment["PORTSENTRY_UPSTREAM_CASES"]
            .map { Set($0.split(separator: ",").map(String.init)) }
        let cases = UpstreamCases.all.filter { wanted?.contains($0.id) ?? true }
        #expect(wanted != nil || cases.count == 34, "the upstream suite has 34 cases")
        try withLab(73) { lab in
            let target = try UpstreamTarget(lab: lab)
            var failed: [String] = []
            for c in cases {
                do {
                    try target.run(c)
                    Console.line("upstream \(c.id) \(c.name): pass")
                } catch {
                    failed.append(c.id)
                    Issue.record("upstream case \(c.id) \(c.name): \(error)\n\(target.dump())")
                }
                target.tearDown()
            }
            Console.line("upstream system suite: \(cases.count - failed.count)/\(cases.count) passed"
                         + (failed.isEmpty ? "" : "; failed: \(failed.joined(separator: ", "))"))
            #expect(failed.isEmpty)
        }
    }
}
}

extension EndToEnd.UpstreamSuiteTests {
    /// Configurations users have today, as they install them, with their absolute paths
    /// (/etc/portsentry, /var/lib/portsentry, /var/log, /tmp) on a target whose /etc, /var,
    /// /run and /tmp are private overlays:
    /// - upstream 2.x's `examples/portsentry.conf` with its ignore file, started as its
    ///   systemd unit starts it (stealth, foreground);
    /// - Debian bookworm's 1.2 `portsentry.conf` and ignore file, started as Debian's init
    ///   script starts it (`-tcp` and `-udp`, two processes at once), then `-stcp`, `-sudp`
    ///   and `-atcp`. Each must start and detect, with 1.2's own lines and history.
    @Test func configurationsFromTheFieldStartAndDetect() throws {
        try withLab(74) { lab in
            let target = try UpstreamTarget(lab: lab, privateTmpAndLog: true)
            let src = lab.attackerV4
            let nmap = { (args: String) throws in
                _ = try lab.exec(lab.attackerNS, ["nmap", "--privileged", "-Pn", "-n", "--max-retries", "0"]
                             + args.split(separator: " ").map(String.init) + [lab.sensorV4], timeout: 30)
            }
            // Upstream 2.x example.
            try target.install("/etc/portsentry/portsentry.conf", fixture("portsentry-2.x-example.conf"))
            try target.install("/etc/portsentry/portsentry.ignore", fixture("portsentry-2.x-example.ignore"))
            var sensor = try target.startInstalled(["portsentry", "--stealth"], log: "example.out")
            try nmap("-sS -p 79")
            try lab.waitFor("the example config's event and history line", within: 10) {
                target.shell("cat /var/log/portsentry.log").contains("Scan from: [\(src)] (\(src)) protocol: [TCP] port: [79] type: [TCP SYN/Normal scan]")
            }
            #expect(target.shell("stat -c %s /tmp/portsentry.blocked") == "0\n")   // created, log-only: nothing blocked
            try target.stop(sensor)

            // Debian 1.2.
            try target.install("/etc/portsentry/portsentry.conf", fixture("debian-1.2.conf"))
            try target.install("/etc/portsentry/portsentry.ignore", fixture("debian-1.2.ignore"))
            let tcp = try target.startInstalled(["portsentry", "-tcp"], log: "debian-tcp.out")
            let udp = try target.startInstalled(["portsentry", "-udp"], log: "debian-udp.out")
            try nmap("-sT -p 79")
            try nmap("-sU -p 7")
            let history = "/var/lib/portsentry/portsentry.history"
            try lab.waitFor("1.2 lines from both processes", within: 10) {
                lab.read("debian-tcp.out").contains("attackalert: Connect from host: \(src)/\(src) to TCP port: 79")
                    && lab.read("debian-udp.out").contains("attackalert: Connect from host: \(src)/\(src) to UDP port: 7")
                    && target.shell("cat \(history)").contains("Host: \(src)/\(src) Port: 7 UDP Blocked")
            }
            #expect(lab.read("debian-tcp.out").contains("attackalert: Ignoring TCP response per configuration file setting."))
            // Both answer on a control socket: the second next to the first, named after its mode.
            #expect(!lab.read("debian-udp.out").contains("Control socket unavailable"))
            #expect(target.shell("\(Lab.sensorBinary) status --socket /run/portsentry/control-udp.sock").contains("connect mode"))
            #expect(target.shell("\(Lab.sensorBinary) status").contains("connect mode"))
            #expect(target.shell("cat \(history)").contains("Host: \(src)/\(src) Port: 79 TCP Blocked"))
            try target.stop(tcp)
            try target.stop(udp)
            for (mode, probe, line) in [
                ("-stcp", "-sS -p 79", "attackalert: TCP SYN/Normal scan from host: \(src)/\(src) to TCP port: 79"),
                ("-sudp", "-sU -p 7", "attackalert: UDP scan from host: \(src)/\(src) to UDP port: 7"),
                ("-atcp", "-sF -p 200", "attackalert: TCP FIN scan from host: \(src)/\(src) to TCP port: 200"),
            ] {
                sensor = try target.startInstalled(["portsentry", mode], log: "debian\(mode).out")
                try nmap(probe)
                try lab.waitFor("\(mode): \(line)", within: 10) { lab.read("debian\(mode).out").contains(line) }
                try target.stop(sensor)
            }
        }
    }
}

/// A config file users have (Tests/SensorTests/Fixtures/configs, shared with the parser tests).
func fixture(_ name: String) throws -> String {
    try String(contentsOfFile: Lab.packageRoot.appendingPathComponent("Tests/SensorTests/Fixtures/configs/\(name)").path,
               encoding: .utf8)
}

enum Console {
    static func line(_ s: String) {
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }
}

/// One upstream case: its config lines, ignore lines, helper scripts, switches and steps.
/// In the text, `{DIR}` is the case's working directory, `{SRC4}`/`{SRC6}` the runner's
/// addresses, `{HOST}`/`{HOST6}` the target's; in patterns `{IP}`/`{IP6}` are the runner's
/// addresses regex-escaped.
struct UpstreamCase {
    var id: String
    var name: String
    var config: [String]
    var ignore: [String] = []
    var helpers: [(name: String, body: String)] = []
    var switches: String
    var steps: [UpstreamStep]
}

enum UpstreamStep {
    /// `Run Nmap` on the runner (with upstream's `--privileged -Pn -n --max-retries 0`).
    case nmap(String)
    /// A command run on the target itself; it must exit 0.
    case onTarget(String)
    case tcpBanner(port: Int, contains: String)
    case udpBanner(port: Int, contains: String)
    case stdout(String)
    case stdoutCount(Int, String)
    case history(String)
    case blockFileSize(v4: Int, v6: Int)
    case remoteFile(String)
    case remoteFileMatches(String, String)
    /// Upstream: `Sleep 2s` then "no scan line from the runner". Here: the tripwire probe
    /// `barrier` is sent and the first scan line must be its line.
    case noScanLineBefore(barrier: String, barrierPattern: String)
}

/// The upstream keywords, as step lists.
enum Keyword {
    static func ip(_ v6: Bool) -> String { v6 ? "{IP6}" : "{IP}" }
    static func scanLogged(v6: Bool = false) -> [UpstreamStep] { [.stdout(#"^Scan from: \[\#(ip(v6))\]"#)] }
    static func historyLogged(_ proto: String, v6: Bool = false, port: Int = 11) -> [UpstreamStep] {
        [.history(#"Scan from: \[\#(ip(v6))\] \(\#(ip(v6))\) protocol: \[\#(proto.uppercased())\] port: \[\#(port)\]"#)]
    }
    static func blockTriggered(_ proto: String, v6: Bool = false) -> [UpstreamStep] {
        scanLogged(v6: v6) + historyLogged(proto, v6: v6)
    }
    static func alreadyBlocked(v6: Bool = false) -> [UpstreamStep] {
        [.stdout("attackalert: Host: \(ip(v6))/\(ip(v6)) is already blocked Ignoring")]
    }
    static let externalCommandRun: [UpstreamStep] = [.stdout("^attackalert: External command run for host: {IP} using command")]
    static let routeKill: [UpstreamStep] = [.stdout("^attackalert: Host {IP} has been blocked via dropped route using command")]
    static let hostsDenyBlock: [UpstreamStep] = [.stdout("^attackalert: Host {IP} has been blocked via wrappers with string")]
    static func scanType(_ label: String) -> [UpstreamStep] {
        [.stdout(#"Scan from: \[{IP}\] \({IP}\) protocol: \[TCP\] port: \[11\] type: \[\#(label)\]"#)]
    }
    static func ignoreMatch(v6: Bool = false) -> [UpstreamStep] {
        [.stdout("Host: \(ip(v6)) found in ignore file [^ ]* aborting actions")]
    }
    static func lines(_ proto: String, _ count: Int, anchored: Bool = false, connect: Bool = false) -> UpstreamStep {
        .stdoutCount(count, (anchored ? "^" : "") + #"Scan from: \[{IP}\] \({IP}\) protocol: \[\#(proto)\] port: \[11\]"#
                     + (connect ? #" type: \[Connect\]"# : ""))
    }
    /// The invalid-probe cases: a probe on port 10 (not watched) must log nothing.
    static let invalidProbe: [UpstreamStep] = [
        .nmap("-sT -p 10 {HOST}"),
        .noScanLineBefore(barrier: "-sT -p 11 {HOST}", barrierPattern: #"^Scan from: \[{IP}\] \({IP}\) protocol: \[TCP\] port: \[11\]"#),
    ]
}

enum UpstreamCases {
    static let files = [#"HISTORY_FILE="./portsentry.history""#, #"BLOCKED_FILE="./portsentry.blocked""#]
    static let dirFiles = [#"HISTORY_FILE="{DIR}/portsentry.history""#, #"BLOCKED_FILE="{DIR}/portsentry.blocked""#]
    static let extcmd = (name: "extcmd.sh", body: #"echo "$1 $2" > {DIR}/extcmd.stdout"#)
    static let routesim = (name: "routesim.sh", body: #"echo "$1" > {DIR}/routesim.stdout"#)
    typealias K = Keyword

    static let all: [UpstreamCase] = [
        UpstreamCase(id: "001", name: "Connect Sentry TCP",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_ROUTE="true $TARGET$""#],
                     switches: "--connect -d",
                     steps: [.nmap("-sT -p 11 {HOST}")] + K.blockTriggered("tcp") + [.blockFileSize(v4: 1, v6: 0),
                             .nmap("-sT -p 11 {HOST}")] + K.alreadyBlocked() + [.blockFileSize(v4: 1, v6: 0),
                             .nmap("-sU -p 11 {HOST}"), .nmap("-sU -p 11 {HOST}"),
                             K.lines("TCP", 2, connect: true), K.lines("UDP", 2, connect: true)]),
        UpstreamCase(id: "002", name: "Connect Sentry UDP",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_ROUTE="true $TARGET$""#],
                     switches: "--connect -d",
                     steps: [.nmap("-sU -p 11 {HOST}")] + K.blockTriggered("udp") + [.blockFileSize(v4: 1, v6: 0),
                             .nmap("-sU -p 11 {HOST}")] + K.alreadyBlocked() + [.blockFileSize(v4: 1, v6: 0),
                             .nmap("-sT -p 11 {HOST}"), .nmap("-sT -p 11 {HOST}"),
                             K.lines("TCP", 2, connect: true), K.lines("UDP", 2, connect: true)]),
        UpstreamCase(id: "003", name: "Banner TCP",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"PORT_BANNER="Some banner printed on port""#,
                           #"KILL_ROUTE="true $TARGET$""#],
                     switches: "--connect -d",
                     steps: [.tcpBanner(port: 11, contains: "Some banner printed on port")] + K.blockTriggered("tcp")
                        + [.blockFileSize(v4: 1, v6: 0), .nmap("-sT -p 11 {HOST}")] + K.alreadyBlocked()
                        + [.blockFileSize(v4: 1, v6: 0)]),
        UpstreamCase(id: "004", name: "Banner UDP",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"PORT_BANNER="Some banner printed on port""#,
                           #"KILL_ROUTE="true $TARGET$""#],
                     switches: "--connect -d",
                     steps: [.udpBanner(port: 11, contains: "Some banner printed on port")] + K.blockTriggered("udp")
                        + [.blockFileSize(v4: 1, v6: 0), .nmap("-sU -p 11 {HOST}")] + K.alreadyBlocked()
                        + [.blockFileSize(v4: 1, v6: 0)]),
        UpstreamCase(id: "005", name: "Block 0 TCP",
                     config: [#"TCP_PORTS="1,11""#] + files + [#"BLOCK_UDP="0""#, #"BLOCK_TCP="0""#],
                     switches: "--connect -d",
                     steps: [.nmap("-sT -p 11 {HOST}")] + K.scanLogged() + K.historyLogged("tcp")
                        + [.nmap("-sT -p 11 {HOST}"), K.lines("TCP", 2, anchored: true)]),
        UpstreamCase(id: "006", name: "Block 0 UDP",
                     config: [#"UDP_PORTS="1,7,9,11""#] + files + [#"BLOCK_UDP="0""#, #"BLOCK_TCP="0""#],
                     switches: "--connect -d",
                     steps: [.nmap("-sU -p 11 {HOST}")] + K.scanLogged() + K.historyLogged("udp")
                        + [.nmap("-sU -p 11 {HOST}"), K.lines("UDP", 2, anchored: true)]),
        UpstreamCase(id: "007", name: "Block 2 TCP",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="2""#, #"BLOCK_TCP="2""#, #"KILL_RUN_CMD="{DIR}/extcmd.sh $TARGET$ $PORT$""#],
                     helpers: [extcmd], switches: "--connect -d",
                     steps: [.nmap("-sT -p 11 {HOST}")] + K.scanLogged() + K.historyLogged("tcp") + K.externalCommandRun
                        + [.remoteFile("extcmd.stdout"), .remoteFileMatches("extcmd.stdout", "^{IP} 11")]),
        UpstreamCase(id: "008", name: "Block 2 UDP",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="2""#, #"BLOCK_TCP="2""#, #"KILL_RUN_CMD="{DIR}/extcmd.sh $TARGET$ $PORT$""#],
                     helpers: [extcmd], switches: "--connect -d",
                     steps: [.nmap("-sU -p 11 {HOST}")] + K.scanLogged() + K.historyLogged("udp") + K.externalCommandRun
                        + [.remoteFile("extcmd.stdout"), .remoteFileMatches("extcmd.stdout", "^{IP} 11")]),
        UpstreamCase(id: "009", name: "Scan Trigger",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"SCAN_TRIGGER="2""#, #"KILL_ROUTE="true $TARGET$""#],
                     switches: "--connect -d",
                     steps: [.nmap("-sT -p 11 {HOST}"),
                             .stdout(#"^Scan from: \[{IP}\] \({IP}\) protocol: \[TCP\] port: \[11\] type: \[Connect\] IP opts: \[unknown\] ignored: \[false\] triggered: \[false\] noblock: \[unset\]"#),
                             .nmap("-sT -p 11 {HOST}")] + K.blockTriggered("tcp") + [.blockFileSize(v4: 1, v6: 0),
                             .nmap("-sT -p 11 {HOST}")] + K.alreadyBlocked() + [.blockFileSize(v4: 1, v6: 0)]),
        UpstreamCase(id: "010", name: "Route Kill",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_ROUTE="{DIR}/extcmd.sh $TARGET$""#],
                     helpers: [extcmd], switches: "--connect -d",
                     steps: [.nmap("-sT -p 11 {HOST}")] + K.blockTriggered("tcp") + [.blockFileSize(v4: 1, v6: 0)]
                        + K.routeKill + [.remoteFile("extcmd.stdout"), .remoteFileMatches("extcmd.stdout", "^{IP}")]),
        UpstreamCase(id: "011", name: "Kill And External Command",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_ROUTE="{DIR}/routesim.sh $TARGET$""#,
                           #"KILL_RUN_CMD="{DIR}/extcmd.sh $TARGET$ $PORT$""#],
                     helpers: [extcmd, routesim], switches: "--connect -d",
                     steps: [.nmap("-sT -p 11 {HOST}"), .remoteFile("extcmd.stdout"), .blockFileSize(v4: 1, v6: 0),
                             .remoteFile("routesim.stdout"), .remoteFileMatches("routesim.stdout", "^{IP}"),
                             .remoteFileMatches("extcmd.stdout", "^{IP} 11"),
                             .stdout(#"(?s)attackalert: Host {IP} has been blocked via dropped route using command.*attackalert: External command run for host: {IP} using command.*Scan from: \[{IP}\] \({IP}\) protocol: \[TCP\] port: \[11\]"#)]),
        UpstreamCase(id: "012", name: "External Command And Kill",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_ROUTE="{DIR}/routesim.sh $TARGET$""#,
                           #"KILL_RUN_CMD="{DIR}/extcmd.sh $TARGET$ $PORT$""#, #"KILL_RUN_CMD_FIRST="1""#],
                     helpers: [extcmd, routesim], switches: "--connect -d",
                     steps: [.nmap("-sT -p 11 {HOST}"), .remoteFile("extcmd.stdout"), .blockFileSize(v4: 1, v6: 0),
                             .remoteFile("routesim.stdout"), .remoteFileMatches("routesim.stdout", "^{IP}"),
                             .remoteFileMatches("extcmd.stdout", "^{IP} 11"),
                             .stdout(#"(?s)attackalert: External command run for host: {IP} using command.*attackalert: Host {IP} has been blocked via dropped route using command.*Scan from: \[{IP}\] \({IP}\) protocol: \[TCP\] port: \[11\]"#)]),
        UpstreamCase(id: "013", name: "Kill Route And Hosts Deny",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#] + files
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_ROUTE="{DIR}/routesim.sh $TARGET$""#,
                           #"KILL_HOSTS_DENY="ALL: $TARGET$""#],
                     helpers: [routesim], switches: "--connect -d",
                     steps: [.nmap("-sT -p 11 {HOST}"), .remoteFile("routesim.stdout"), .remoteFileMatches("routesim.stdout", "^{IP}")]
                        + K.blockTriggered("tcp") + [.blockFileSize(v4: 1, v6: 0)] + K.routeKill + K.hostsDenyBlock),
        UpstreamCase(id: "014", name: "Stealth Sentry TCP",
                     config: [#"TCP_PORTS="1,11,22""#, #"UDP_PORTS="1,7,9""#] + dirFiles
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_HOSTS_DENY="ALL: $TARGET$""#],
                     switches: "--stealth -m pcap -d -i ALL -L",
                     steps: [.nmap("-sT -p 11 {HOST}")] + K.blockTriggered("tcp") + [.blockFileSize(v4: 1, v6: 0),
                             .nmap("-sT -p 11 {HOST}")] + K.alreadyBlocked() + [.blockFileSize(v4: 1, v6: 0)]),
        UpstreamCase(id: "015", name: "Stealth Sentry UDP",
                     config: [#"TCP_PORTS="1,11,22""#, #"UDP_PORTS="1,7,9,11""#] + dirFiles
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_HOSTS_DENY="ALL: $TARGET$""#],
                     switches: "--stealth -m pcap -d -i ALL -L",
                     steps: [.nmap("-sU -p 11 {HOST}")] + K.blockTriggered("udp") + [.blockFileSize(v4: 1, v6: 0),
                             .nmap("-sU -p 11 {HOST}")] + K.alreadyBlocked() + [.blockFileSize(v4: 1, v6: 0)]),
        UpstreamCase(id: "016", name: "Self Ignore",
                     config: [#"TCP_PORTS="1,11,22""#] + dirFiles + [#"BLOCK_UDP="0""#, #"BLOCK_TCP="0""#],
                     switches: "--stealth -m pcap -d -i ALL",
                     steps: [.onTarget("nmap -Pn -n --max-retries 0 -sT -p 11 127.0.0.1 >/dev/null"),
                             .stdout(#"^debug: Source address 127\.0\.0\.1 same as destination address 127\.0\.0\.1, skipping"#)]),
        stealthScanCase("018", "SYN Scan", "-sS", "TCP SYN/Normal scan"),
        stealthScanCase("019", "NULL Scan", "-sN", "TCP NULL scan"),
        stealthScanCase("020", "XMAS Scan", "-sX", "TCP XMAS scan"),
        stealthScanCase("021", "FIN Scan", "-sF", "TCP FIN scan"),
        rangeCase("023", "Sentry Connect Range", "--connect -d"),
        rangeCase("024", "Sentry Pcap Range", "--stealth -m pcap -d -i ALL"),
        UpstreamCase(id: "025", name: "Pcap Invalid Probe",
                     config: [#"TCP_PORTS="1,11""#] + files + [#"BLOCK_UDP="0""#, #"BLOCK_TCP="0""#],
                     switches: "--stealth -m pcap -d -i ALL", steps: K.invalidProbe),
        UpstreamCase(id: "026", name: "Connect Invalid Probe",
                     config: [#"TCP_PORTS="1,11""#] + files + [#"BLOCK_UDP="0""#, #"BLOCK_TCP="0""#],
                     switches: "--connect -d -i ALL", steps: K.invalidProbe),
        UpstreamCase(id: "027", name: "Stealth Invalid Probe",
                     config: [#"TCP_PORTS="1,11""#] + files + [#"BLOCK_UDP="0""#, #"BLOCK_TCP="0""#],
                     switches: "--stealth -m raw -d -i ALL", steps: K.invalidProbe),
        ipv6BlockCase("028", "IPv6 Connect", "--connect -d"),
        ipv6BlockCase("029", "IPv6 Pcap", "--stealth -m pcap -d -i ALL -L"),
        ipv6BlockCase("030", "IPv6 Raw", "--stealth -m raw -d -L"),
        ignoreCase("031", "Ignore File", ["{SRC4}/32", "0.0.0.0"], v6: false),
        ignoreCase("032", "Ignore File No Mask", ["{SRC4}", "0.0.0.0"], v6: false),
        ignoreCase("033", "Ignore File IPv6", ["{SRC6}/128"], v6: true),
        ignoreCase("034", "Ignore File No Mask IPv6", ["{SRC6}"], v6: true),
        UpstreamCase(id: "100", name: "Raw Socket TCP",
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9""#] + files
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_HOSTS_DENY="ALL: $TARGET$""#],
                     switches: "--stealth -m raw -d -L",
                     steps: [.nmap("-sT -p 11 {HOST}")] + K.blockTriggered("tcp") + [.blockFileSize(v4: 1, v6: 0),
                             .nmap("-sT -p 11 {HOST}")] + K.alreadyBlocked() + [.blockFileSize(v4: 1, v6: 0)]),
        rangeCase("101", "Sentry Stealth Range", "--stealth -m raw -d"),
    ]

    /// 018-021: one stealth probe, its label, the block.
    static func stealthScanCase(_ id: String, _ name: String, _ flag: String, _ label: String) -> UpstreamCase {
        UpstreamCase(id: id, name: name,
                     config: [#"TCP_PORTS="1,11,22""#, #"UDP_PORTS="1,7,9,11""#] + dirFiles
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_HOSTS_DENY="ALL: $TARGET$""#],
                     switches: "--stealth -m pcap -d -i ALL -L",
                     steps: [.nmap("\(flag) -p 11 {HOST}")] + K.scanType(label) + K.blockTriggered("tcp")
                        + [.blockFileSize(v4: 1, v6: 0)])
    }

    static func rangeCase(_ id: String, _ name: String, _ switches: String) -> UpstreamCase {
        UpstreamCase(id: id, name: name,
                     config: [#"TCP_PORTS="1,5-11""#, #"UDP_PORTS="1,7-11""#] + files + [#"BLOCK_UDP="0""#, #"BLOCK_TCP="0""#],
                     switches: switches,
                     steps: [.nmap("-sT -p 11 {HOST}")] + K.scanLogged() + K.historyLogged("tcp")
                        + [.nmap("-sT -p 11 {HOST}"), K.lines("TCP", 2, anchored: true),
                           .nmap("-sU -p 11 {HOST}")] + K.scanLogged() + K.historyLogged("udp")
                        + [.nmap("-sU -p 11 {HOST}"), K.lines("UDP", 2, anchored: true)])
    }

    static func ipv6BlockCase(_ id: String, _ name: String, _ switches: String) -> UpstreamCase {
        UpstreamCase(id: id, name: name,
                     config: [#"TCP_PORTS="1,11,22""#, #"UDP_PORTS="1,7,9""#] + dirFiles
                        + [#"BLOCK_UDP="1""#, #"BLOCK_TCP="1""#, #"KILL_HOSTS_DENY="ALL: $TARGET$""#],
                     switches: switches,
                     steps: [.nmap("-6 -sT -p 11 {HOST6}")] + K.blockTriggered("tcp", v6: true) + [.blockFileSize(v4: 0, v6: 1),
                             .nmap("-6 -sT -p 11 {HOST6}")] + K.alreadyBlocked(v6: true) + [.blockFileSize(v4: 0, v6: 1)])
    }

    static func ignoreCase(_ id: String, _ name: String, _ ignore: [String], v6: Bool) -> UpstreamCase {
        UpstreamCase(id: id, name: name,
                     config: [#"TCP_PORTS="1,11""#, #"UDP_PORTS="1,7,9,11""#, #"IGNORE_FILE="./portsentry.ignore""#] + files
                        + [#"BLOCK_UDP="0""#, #"BLOCK_TCP="0""#],
                     ignore: ignore, switches: "--stealth -m pcap -d -i ALL -v",
                     steps: [.nmap(v6 ? "-6 -sT -p 11 {HOST6}" : "-sT -p 11 {HOST}")] + K.ignoreMatch(v6: v6))
    }
}

/// The target machine: a holder process owns the private mount namespace (inside the lab's
/// sensor namespace) in which every target-side command and the sensor run.
final class UpstreamTarget {
    let lab: Lab
    private let holder: Child
    private var sensor: Child? = nil
    private(set) var directory = ""
    /// Upstream's timeouts: READY_TIMEOUT, POLL_TIMEOUT, STOP_TIMEOUT.
    static let readyTimeout = 15.0
    static let pollTimeout = 10.0
    static let stopTimeout = 10.0

    init(lab: Lab, privateTmpAndLog: Bool = false) throws {
        self.lab = lab
        var overlays = ["etc": "/etc", "varlib": "/var/lib", "run": "/run"]
        if privateTmpAndLog {
            overlays["varlog"] = "/var/log"
            overlays["tmp"] = "/tmp"
        }
        var mounts: [String] = []
        for (name, point) in overlays.sorted(by: { $0.key < $1.key }) {
            let upper = lab.file("target/\(name)-upper"), work = lab.file("target/\(name)-work")
            try FileManager.default.createDirectory(atPath: upper, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            mounts.append("mount -t overlay overlay -o lowerdir=\(point),upperdir=\(upper),workdir=\(work) \(point)")
        }
        // /tmp last: the overlays' own directories live under /tmp on the machine.
        mounts.sort { a, b in !a.hasSuffix(" /tmp") && b.hasSuffix(" /tmp") }
        let script = (mounts + ["echo target-ready", "exec sleep 86400"]).joined(separator: " && ")
        holder = try lab.spawn(lab.sensorNS, ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                               log: "target-holder.log")
        try lab.waitFor("the target's mount namespace", within: 10) {
            if !holder.isRunning { throw Lab.Failure(description: "target set-up failed: \(lab.read("target-holder.log"))") }
            return lab.read("target-holder.log").contains("target-ready")
        }
    }

    /// Writes `text` to `path` on the target (inside its overlays), root-owned, 0644.
    func install(_ path: String, _ text: String) throws {
        let staged = lab.file("staged-\(UInt32.random(in: 0...UInt32.max))")
        try (text.hasSuffix("\n") ? text : text + "\n").write(toFile: staged, atomically: true, encoding: .utf8)
        defer { unlink(staged) }
        // Read before the target's /tmp hides the staged file: pipe it in.
        try Lab.run(["sh", "-c", "nsenter -t \(holder.pid) -m -n -- sh -c 'mkdir -p \"$(dirname \(path))\" && cat > \(path) && chmod 0644 \(path)' < \(staged)"])
    }

    /// A shell command's output on the target, "" if it fails.
    func shell(_ command: String) -> String {
        (try? execute(command, allowFailure: true)) ?? ""
    }

    /// Starts an installed-style sensor (`portsentry ARGS`, default paths) on the target;
    /// its output goes to `log` in the lab. Returns once it is listening.
    func startInstalled(_ argv: [String], log: String) throws -> Child {
        try launch("exec \(Lab.sensorBinary) \(argv.dropFirst().joined(separator: " ")) </dev/null", log: log) {
            lab.read(log).contains("Portsentry is now active and listening.")
        }
    }

    /// Runs `command` on the target and waits until `ready` holds (the daemon said it listens).
    private func launch(_ command: String, log: String, ready: () -> Bool) throws -> Child {
        let p = try lab.spawnHere(["nsenter", "-t", "\(holder.pid)", "-m", "-n", "--", "sh", "-c", command], log: log)
        try lab.waitFor("Portsentry is now active and listening.", within: Self.readyTimeout) {
            if !p.isRunning { throw Lab.Failure(description: "portsentry exited before reporting ready: \(lab.read(log))") }
            return ready()
        }
        return p
    }

    func stop(_ p: Child) throws {
        #expect(try lab.stop(p, within: Self.stopTimeout) == 0, "portsentry exits 0 on SIGTERM")
    }

    /// A shell command on the target (its namespaces), like upstream's `Execute Command`.
    @discardableResult
    func execute(_ command: String, allowFailure: Bool = false) throws -> String {
        try Lab.run(["nsenter", "-t", "\(holder.pid)", "-m", "-n", "--", "sh", "-c", command], allowFailure: allowFailure)
    }

    func run(_ c: UpstreamCase) throws {
        // Test Setup: no stale daemon, an empty hosts.deny, a fresh working directory.
        try execute("rm -f /etc/hosts.deny; touch /etc/hosts.deny")
        directory = lab.file("case-\(c.id)")
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        for h in c.helpers {
            let path = directory + "/" + h.name
            try ("#!/bin/sh\n" + substitute(h.body) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
        try (c.config.map(substitute).joined(separator: "\n") + "\n")
            .write(toFile: directory + "/portsentry.conf", atomically: true, encoding: .utf8)
        if !c.ignore.isEmpty {
            try (c.ignore.map(substitute).joined(separator: "\n") + "\n")
                .write(toFile: directory + "/portsentry.ignore", atomically: true, encoding: .utf8)
        }
        try start(c.switches)
        for step in c.steps { try perform(step) }
    }

    /// Start Portsentry: from the working directory, `-c portsentry.conf`, stdout and stderr
    /// to files there; ready when stdout says so.
    private func start(_ switches: String) throws {
        let command = "cd \(directory) && exec \(Lab.sensorBinary) -c portsentry.conf \(switches) </dev/null "
            + "> portsentry.stdout 2> portsentry.stderr"
        sensor = try launch(command, log: "target-sensor.log") {
            read("portsentry.stdout").contains("Portsentry is now active and listening.")
        }
    }

    /// Test Teardown: SIGTERM, and the daemon must be gone within STOP_TIMEOUT (no SIGKILL
    /// escalation upstream; here SIGKILL only cleans up after a failure was recorded).
    func tearDown() {
        if let p = sensor, p.isRunning {
            kill(p.pid, SIGTERM)
            let deadline = Date().addingTimeInterval(Self.stopTimeout)
            while p.isRunning, Date() < deadline { usleep(20_000) }
            if p.isRunning {
                Issue.record("portsentry did not exit within \(Self.stopTimeout)s of SIGTERM")
                kill(p.pid, SIGKILL)
                p.waitUntilExit()
            }
        }
        sensor = nil
        _ = try? execute("rm -f /etc/hosts.deny; touch /etc/hosts.deny")
    }

    func read(_ name: String) -> String {
        (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
    }

    func dump() -> String {
        "==== portsentry.stdout ====\n\(read("portsentry.stdout"))==== portsentry.stderr ====\n\(read("portsentry.stderr"))"
    }

    func substitute(_ s: String) -> String {
        s.replacingOccurrences(of: "{DIR}", with: directory)
            .replacingOccurrences(of: "{SRC4}", with: lab.attackerV4)
            .replacingOccurrences(of: "{SRC6}", with: lab.attackerV6)
            .replacingOccurrences(of: "{HOST}", with: lab.sensorV4)
            .replacingOccurrences(of: "{HOST6}", with: lab.sensorV6)
    }

    func pattern(_ s: String) throws -> Regex<AnyRegexOutput> {
        let text = s.replacingOccurrences(of: "{IP}", with: Self.escape(lab.attackerV4))
            .replacingOccurrences(of: "{IP6}", with: Self.escape(lab.attackerV6))
        return try Regex("(?m)" + text)
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            if !(c.isLetter || c.isNumber) { out.append("\\") }
            out.append(c)
        }
        return out
    }

    private func nmap(_ args: String) throws {
        let argv = ["nmap", "--privileged", "-Pn", "-n", "--max-retries", "0"]
            + substitute(args).split(separator: " ").map(String.init)
        try lab.exec(lab.attackerNS, argv, timeout: 30)
    }

    private func waitUntil(_ what: String, _ condition: () throws -> Bool) throws {
        try lab.waitFor(what, within: Self.pollTimeout, condition)
    }

    private func perform(_ step: UpstreamStep) throws {
        switch step {
        case .nmap(let args):
            try nmap(args)
        case .onTarget(let command):
            try execute(command)
        case .tcpBanner(let port, let expected), .udpBanner(let port, let expected):
            let udp: Bool
            if case .udpBanner = step { udp = true } else { udp = false }
            let script = udp
                ? "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(5)\ns.sendto(b'Hello',('\(lab.sensorV4)',\(port)))\ntry: print(s.recvfrom(1024)[0].decode('latin-1'))\nexcept socket.timeout: print('')"
                : "import socket\ns=socket.create_connection(('\(lab.sensorV4)',\(port)),timeout=5)\ntry: print(s.recv(1024).decode('latin-1'))\nexcept socket.timeout: print('')"
            let banner = try lab.exec(lab.attackerNS, ["python3", "-c", script], timeout: 15)
            guard banner.contains(expected) else {
                throw Lab.Failure(description: "banner probe on port \(port) got '\(banner)', expected '\(expected)'")
            }
        case .stdout(let p):
            let r = try pattern(p)
            try waitUntil("stdout to match \(p)") { read("portsentry.stdout").contains(r) }
        case .stdoutCount(let n, let p):
            let r = try pattern(p)
            try waitUntil("exactly \(n) stdout lines matching \(p)") { read("portsentry.stdout").matches(of: r).count == n }
        case .history(let p):
            let r = try pattern(p)
            try waitUntil("the history file to match \(p)") { read("portsentry.history").contains(r) }
        case .blockFileSize(let v4, let v6):
            // Linux: a 2-byte address family, then the address (upstream's Expected Block File Size).
            let expected = v4 * (4 + 2) + v6 * (16 + 2)
            try waitUntil("portsentry.blocked to be \(expected) bytes") {
                let size = (try? FileManager.default.attributesOfItem(atPath: directory + "/portsentry.blocked"))?[.size] as? Int
                return size == expected
            }
        case .remoteFile(let name):
            try waitUntil("\(name) to exist") { FileManager.default.fileExists(atPath: directory + "/" + name) }
        case .remoteFileMatches(let name, let p):
            guard read(name).contains(try pattern(p)) else {
                throw Lab.Failure(description: "\(name) does not match \(p): '\(read(name))'")
            }
        case .noScanLineBefore(let barrier, let barrierPattern):
            try nmap(barrier)
            let b = try pattern(barrierPattern)
            try waitUntil("the tripwire probe's line") { read("portsentry.stdout").contains(b) }
            let out = read("portsentry.stdout")
            let any = try pattern(#"^Scan from: \[{IP}\]"#)
            guard let first = out.firstMatch(of: any), let barrierLine = out.firstMatch(of: b),
                  first.range.lowerBound == barrierLine.range.lowerBound else {
                throw Lab.Failure(description: "a scan line was logged for the invalid probe")
            }
        }
    }
}
