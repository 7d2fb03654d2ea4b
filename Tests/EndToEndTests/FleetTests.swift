import Foundation
import PortsentryShared
import Testing

/// A fleet on one machine: a controller, six sensor hosts and an attacker, each in its own
/// network namespace, joined by a bridge in a namespace of its own. Real binaries, real
/// HTTPS, real nftables sets in each sensor's namespace.
final class FleetLab: @unchecked Sendable {
    static let sensorCount = 6
    let lab: Lab
    let id: Int
    let bridgeNS: String
    let controllerNS: String
    let attackerNS: String
    let hostNS: [String]
    let net: String
    var controllerIP: String { "\(net).250" }
    var attackerIP: String { "\(net).66" }
    var gatewayIP: String { "\(net).254" }
    func hostIP(_ i: Int) -> String { "\(net).\(11 + i)" }
    var data: String { lab.file("controller") }
    let ctl = EndToEnd.ControllerProcessTests.binary
    var controller: Child? = nil
    var sensors: [Child?]

    init(id: Int) throws {
        // The base lab owns the temp directory and the process list; its own pair of
        // namespaces stays unused.
        lab = try Lab(id: id)
        self.id = id
        let tag = "\(Lab.prefix)\(getpid())-\(id)"
        bridgeNS = tag + "-br"
        controllerNS = tag + "-c"
        attackerNS = tag + "-x"
        hostNS = (0..<Self.sensorCount).map { "\(tag)-h\($0)" }
        net = "10.77.\(id)"
        sensors = Array(repeating: nil, count: Self.sensorCount)
        do { try build() } catch {
            shutdown()
            throw error
        }
    }

    private var allNS: [String] { [bridgeNS, controllerNS, attackerNS] + hostNS }

    private func build() throws {
        for ns in allNS { try Lab.run(["ip", "netns", "add", ns]) }
        try Lab.run(["ip", "-n", bridgeNS, "link", "add", "br0", "type", "bridge"])
        try Lab.run(["ip", "-n", bridgeNS, "link", "set", "br0", "up"])
        let members = [(controllerNS, controllerIP), (attackerNS, attackerIP)] + hostNS.enumerated().map { ($1, hostIP($0)) }
        for (n, (ns, ip)) in members.enumerated() {
            let a = "\(Lab.linkTag)\(id)f\(n)", b = "\(Lab.linkTag)\(id)g\(n)"
            try Lab.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
            try Lab.run(["ip", "link", "set", a, "netns", ns])
            try Lab.run(["ip", "link", "set", b, "netns", bridgeNS])
            try Lab.run(["ip", "-n", bridgeNS, "link", "set", b, "master", "br0"])
            try Lab.run(["ip", "-n", bridgeNS, "link", "set", b, "up"])
            try Lab.run(["ip", "-n", ns, "link", "set", "lo", "up"])
            try Lab.run(["ip", "-n", ns, "link", "set", a, "name", "eth0"])
            try Lab.run(["ip", "-n", ns, "addr", "add", "\(ip)/24", "dev", "eth0"])
            try Lab.run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        }
        // Every sensor host routes through a gateway address on the bridge: each protects
        // it and reports it to the controller.
        for ns in hostNS { try Lab.run(["ip", "-n", ns, "route", "add", "default", "via", gatewayIP]) }
    }

    func shutdown() {
        lab.shutdown()
        for ns in allNS { Lab.deleteNamespace(ns) }
    }

    // MARK: controller

    func startController(log: String) throws {
        let c = try lab.spawn(controllerNS, [ctl, "serve", "--data", data, "--listen", controllerIP, "--port", "8443"], log: log)
        try lab.waitFor("the controller", within: 30) {
            if !c.isRunning { throw Lab.Failure(description: "controller exited:\n\(lab.read(log))") }
            return lab.read(log).contains("listening on")
        }
        controller = c
    }

    func stopController() throws {
        if let c = controller { #expect(try lab.stop(c) == 0) }
        controller = nil
    }

    @discardableResult
    func controllerCLI(_ args: [String], allowFailure: Bool = false) throws -> String {
        try Lab.run([ctl] + args + ["--data", data], allowFailure: allowFailure)
    }

    // MARK: sensors

    func sensorConfig(_ i: Int) -> String {
        """
        TCP_PORTS="1,7,9,11,79,111"
        UDP_PORTS="7,9"
        SCAN_TRIGGER="2"
        BLOCK_TCP="1"
        BLOCK_UDP="1"
        STATE_DIR="\(lab.file("s\(i)/state"))"
        CONTROL_SOCKET="\(lab.file("s\(i)/control.sock"))"
        LOG_PER_SOURCE="0"
        \(i == Self.iptablesHost ? "FIREWALL=\"iptables\"" : "")
        """
    }

    /// One host enforces through iptables + ipset instead of nftables.
    static let iptablesHost = sensorCount - 1

    func enroll(_ i: Int) throws {
        try FileManager.default.createDirectory(atPath: lab.file("s\(i)"), withIntermediateDirectories: true)
        try lab.write("s\(i)/portsentry.conf", sensorConfig(i))
        let token = try controllerCLI(["sensors", "add", "host-\(i)"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let out = try lab.exec(hostNS[i], [Lab.sensorBinary, "enroll", "https://\(controllerIP):8443", token,
                                           "--ca-file", data + "/tls.crt", "-c", lab.file("s\(i)/portsentry.conf")])
        #expect(out.contains("enrolled as host-\(i)"))
    }

    func startSensor(_ i: Int, log: String? = nil) throws {
        let log = log ?? "s\(i)/sensor.out"
        let p = try lab.spawn(hostNS[i], [Lab.sensorBinary, "-c", lab.file("s\(i)/portsentry.conf"), "-i", "eth0"], log: log)
        try lab.waitFor("sensor \(i) to start", within: 15) {
            if !p.isRunning { throw Lab.Failure(description: "sensor \(i) exited early:\n\(lab.read(log))") }
            return lab.read(log).contains("Portsentry is now active and listening.")
        }
        sensors[i] = p
    }

    /// Host `i`'s IPv4 fleet set (an nftables set, or an ipset on the iptables host).
    func fleetSet(_ i: Int) -> String {
        if i == Self.iptablesHost {
            return (try? lab.exec(hostNS[i], ["ipset", "list", "psfleet4"], allowFailure: true)) ?? ""
        }
        return (try? lab.exec(hostNS[i], ["nft", "list", "set", "inet", "portsentry", "fleet4"], allowFailure: true)) ?? ""
    }

    func everyHostBlocks(_ ip: String) -> Bool { hostNS.indices.allSatisfy { fleetSet($0).contains(ip) } }
    func noHostBlocks(_ ip: String) -> Bool { hostNS.indices.allSatisfy { !fleetSet($0).contains(ip) } }

    /// One SYN from the attacker namespace (optionally spoofed) to a host's tripwire port.
    func probe(_ i: Int, port: Int = 79, from spoofed: String? = nil) throws {
        var args = ["timeout", "-k", "1", "5", "hping3", "-q", "-S", "-p", "\(port)", "-c", "1", "-i", "u1000"]
        if let spoofed { args += ["-a", spoofed] }
        try lab.exec(attackerNS, args + [hostIP(i)], allowFailure: true)
    }

    /// One SYN from the attacker to port 79 on hosts 0-4 (HORIZONTAL_HOSTS is 5); returns the
    /// seconds from the fifth, deciding probe until the attacker is in every host's fleet set.
    func thinSweepUntilBlocked() throws -> TimeInterval {
        for i in 0..<4 { try probe(i) }
        // The fifth in the background: hping3 lingers after its probe, and the clock runs from the probe.
        let deciding = Date()
        _ = try lab.spawn(attackerNS, ["timeout", "-k", "1", "5", "hping3", "-q", "-S", "-p", "79", "-c", "1", hostIP(4)],
                          log: "deciding-probe.out")
        try lab.waitFor("the attacker in every host's fleet set", within: 5) { everyHostBlocks(attackerIP) }
        return Date().timeIntervalSince(deciding)
    }

    func attackerReaches(_ i: Int) -> Bool {
        ((try? lab.exec(attackerNS, ["ping", "-c", "1", "-W", "1", hostIP(i)], allowFailure: true)) ?? "").contains(" 0% packet loss")
    }
}

extension EndToEnd {
    @Suite struct FleetTests {
        @Test func fleetCorrelatesAThinSweepAndEnforcesSignedBlockListsEverywhere() throws {
            _ = staleNamespacesRemovedOnce
            let fleet = try FleetLab(id: 71)
            defer { fleet.shutdown() }
            let lab = fleet.lab
            try fleet.controllerCLI(["init", "--name", fleet.controllerIP])
            try fleet.startController(log: "ctl1.out")
            for i in 0..<FleetLab.sensorCount { try fleet.enroll(i) }
            for i in 0..<FleetLab.sensorCount { try fleet.startSensor(i) }
            // Every sensor's first heartbeat (at start) tells the controller what it protects.
            try lab.waitFor("every sensor's heartbeat", within: 20) {
                (try fleet.controllerCLI(["sensors", "list", "--json"])).components(separatedBy: "\"protected\"").count - 1 == FleetLab.sensorCount
            }
            #expect(fleet.attackerReaches(0))

            // (a) A thin sweep: one tripwire probe per host, below every sensor's local trigger.
            let elapsed = try fleet.thinSweepUntilBlocked()
            #expect(elapsed < 1.0, "deciding probe to blocked on all \(FleetLab.sensorCount) hosts took \(elapsed) s")
            for i in 0..<FleetLab.sensorCount {
                #expect(!lab.read("s\(i)/sensor.out").contains("attackalert: Host \(fleet.attackerIP)"), "no local trigger on host \(i)")
                #expect(!fleet.nftLocal(i).contains(fleet.attackerIP), "host \(i) did not block it on its own")
            }
            #expect(!fleet.attackerReaches(5), "the attacker's packets are dropped, also on the host it never probed")
            let decisions = try fleet.controllerCLI(["decisions", "list"])
            #expect(decisions.contains(fleet.attackerIP) && decisions.contains("horizontal sweep"))

            // (b) A manual ban and unban reach every host.
            let banned = "\(fleet.net).99"
            try fleet.controllerCLI(["ban", banned, "--duration", "600", "--reason", "test"])
            try lab.waitFor("the manual ban everywhere", within: 5) { fleet.everyHostBlocks(banned) }
            try fleet.controllerCLI(["unban", banned])
            try lab.waitFor("the unban everywhere", within: 5) { fleet.noHostBlocks(banned) }
            #expect(fleet.everyHostBlocks(fleet.attackerIP), "the unban lifted only its own scope")

            // (c) Controller down: the list stays in force; a ban made meanwhile arrives on resync.
            try fleet.stopController()
            let later = "\(fleet.net).98"
            try fleet.controllerCLI(["ban", later, "--duration", "600"])
            // (d) A sensor restarted while the controller is down (its kernel sets emptied, as
            // after a reboot) restores the list it last verified from its state directory.
            #expect(try lab.stop(fleet.sensors[1]!) == 0)
            try lab.exec(fleet.hostNS[1], ["nft", "flush", "set", "inet", "portsentry", "fleet4"])
            #expect(!fleet.fleetSet(1).contains(fleet.attackerIP))
            try fleet.startSensor(1, log: "s1/sensor2.out")
            try lab.waitFor("host 1's list restored without the controller", within: 5) { fleet.fleetSet(1).contains(fleet.attackerIP) }
            #expect(lab.read("s1/sensor2.out").contains("restored revision"))
            #expect(fleet.everyHostBlocks(fleet.attackerIP) && fleet.noHostBlocks(later))
            try fleet.startController(log: "ctl2.out")
            try lab.waitFor("the ban made during the outage everywhere", within: 20) { fleet.everyHostBlocks(later) }

            // Drift: a host's fleet set emptied behind the sensor's back is restored by a resync.
            try lab.exec(fleet.hostNS[2], ["nft", "flush", "set", "inet", "portsentry", "fleet4"])
            try fleet.controllerCLI(["ban", "\(fleet.net).97", "--duration", "600"])
            try lab.waitFor("host 2 resynchronised", within: 10) {
                fleet.fleetSet(2).contains(fleet.attackerIP) && fleet.fleetSet(2).contains("\(fleet.net).97")
            }

            // (e) A controller signing with another key: every sensor refuses its updates and
            // leaves its firewall unchanged.
            try fleet.stopController()
            let keyFile = fleet.data + "/signing.key"
            let genuine = try String(contentsOfFile: keyFile, encoding: .utf8)
            let impostor = try Ed25519.PrivateKey.generate()
            try Hex.encode(impostor.raw).write(toFile: keyFile, atomically: true, encoding: .utf8)
            try fleet.controllerCLI(["unban", fleet.attackerIP])
            let forged = "\(fleet.net).96"
            try fleet.controllerCLI(["ban", forged, "--duration", "600"])
            try fleet.startController(log: "ctl3.out")
            try lab.waitFor("every sensor to refuse the forged update", within: 20) {
                (0..<FleetLab.sensorCount).allSatisfy { i in
                    let log = lab.read(i == 1 ? "s1/sensor2.out" : "s\(i)/sensor.out")
                    return log.contains("refused an answer: block-list signature refused")
                }
            }
            #expect(fleet.noHostBlocks(forged))
            #expect(fleet.everyHostBlocks(fleet.attackerIP), "the unban under the wrong key was not applied either")
            try fleet.stopController()
            try genuine.write(toFile: keyFile, atomically: true, encoding: .utf8)
            try fleet.startController(log: "ctl4.out")
            try lab.waitFor("the genuine key's list everywhere", within: 20) {
                fleet.everyHostBlocks(forged) && fleet.noHostBlocks(fleet.attackerIP)
            }

            // (f) A sweep spoofed "from" the sensors' gateway is stored but blocks nothing.
            for i in 0..<FleetLab.sensorCount { try fleet.probe(i, from: fleet.gatewayIP) }
            try lab.waitFor("the spoofed events at the controller", within: 10) {
                (try fleet.controllerCLI(["events", "--json", "--limit", "100000"])).components(separatedBy: "\"source\":\"\(fleet.gatewayIP)\"").count - 1
                    >= FleetLab.sensorCount
            }
            try lab.waitFor("the refusal counted", within: 10) {
                ((try? lab.exec(fleet.controllerNS, ["curl", "-s", "--cacert", fleet.data + "/tls.crt",
                                                     "https://\(fleet.controllerIP):8443/metrics"])) ?? "")
                    .contains("portsentry_controller_decisions_refused_total{reason=\"protected\"} 1")
            }
            #expect(!(try fleet.controllerCLI(["decisions", "list", "--all"])).contains(fleet.gatewayIP))
            #expect(fleet.noHostBlocks(fleet.gatewayIP))
            #expect(lab.read("ctl4.out").contains("Not blocking \(fleet.gatewayIP)"))

            for i in 0..<FleetLab.sensorCount { #expect(try lab.stop(fleet.sensors[i]!) == 0) }
            try fleet.stopController()
        }
    }
}

extension FleetLab {
    func nftLocal(_ i: Int) -> String {
        (try? lab.exec(hostNS[i], ["nft", "list", "set", "inet", "portsentry", "blocked4"], allowFailure: true)) ?? ""
    }
}

/// Stale namespaces from killed runs are swept before the first fleet.
let staleNamespacesRemovedOnce: Bool = {
    Lab.removeStaleNamespaces()
    return true
}()
