import Foundation
import PortsentryShared
import Testing

/// The fleet cannot be turned against itself. An outsider forges one SYN per host "from" a
/// fleet member and "from" an admin who has a live SSH session on one host: nothing
/// protected is blocked anywhere and the session lives on. The same outsider's real sweep
/// from its own address is blocked on every host within a second. An operator's ban of the
/// admin goes through (sensors' claims never veto an operator) but the host with the live
/// session does not enforce it on itself.
extension EndToEnd {
    @Suite struct FleetTrustTests {
        /// The admin's workstation: a second address in the attacker's namespace (so the
        /// attacker is on the same wire, as on a shared LAN).
        static func adminIP(_ fleet: FleetLab) -> String { "\(fleet.net).70" }

        /// An SSH stand-in on host 0 port 22, and an admin client that exchanges a line every
        /// 200 ms and writes a count of answered lines; it stops and says LOST when one goes
        /// unanswered for 2 s.
        static let echoServer = """
            import socket, threading
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", 22)); s.listen(8)
            def serve(c):
                while True:
                    d = c.recv(64)
                    if not d: return
                    c.sendall(d)
            while True:
                c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
            """
        static func adminClient(source: String, host: String, out: String) -> String {
            """
            import socket, time
            c = socket.socket(); c.bind(("\(source)", 0)); c.settimeout(2); c.connect(("\(host)", 22))
            n = 0
            while True:
                try:
                    c.sendall(b"ping\\n"); assert c.recv(64) == b"ping\\n"
                except Exception as e:
                    open("\(out)", "a").write("LOST %r\\n" % (e,)); raise SystemExit(1)
                n += 1
                open("\(out)", "w").write("ok %d\\n" % n)
                time.sleep(0.2)
            """
        }

        func answered(_ fleet: FleetLab) -> Int {
            let text = fleet.lab.read("admin.count")
            guard text.hasPrefix("ok ") else { return -1 }
            return Int(text.dropFirst(3).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }

        func fleetStatus(_ fleet: FleetLab) throws -> [String: Any] {
            let token = try String(contentsOfFile: fleet.data + "/operator.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let text = try fleet.lab.exec(fleet.controllerNS, ["curl", "-s", "--cacert", fleet.data + "/tls.crt", "-H", "Authorization: Bearer \(token)",
                                                               "https://\(fleet.controllerIP):8443/v1/fleet"])
            return (try JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        }

        func protectedScopes(_ fleet: FleetLab) -> [String: String] {
            let list = ((try? fleetStatus(fleet))?["protected"] as? [[String: Any]]) ?? []
            var out: [String: String] = [:]
            for c in list { if let s = c["scope"] as? String { out[s] = c["kind"] as? String } }
            return out
        }

        @Test func forgedSweepsFromMembersAndAdminsBlockNothingButARealSweepIsBlocked() throws {
            _ = staleNamespacesRemovedOnce
            let fleet = try FleetLab(id: 72)
            defer { fleet.shutdown() }
            let lab = fleet.lab
            let admin = Self.adminIP(fleet)
            let member = fleet.hostIP(1)
            try Lab.run(["ip", "-n", fleet.attackerNS, "addr", "add", "\(admin)/24", "dev", "eth0"])
            try fleet.controllerCLI(["init", "--name", fleet.controllerIP])
            try fleet.startController(log: "ctl.out")
            for i in 0..<FleetLab.sensorCount { try fleet.enroll(i) }
            for i in 0..<FleetLab.sensorCount { try fleet.startSensor(i) }
            try lab.waitFor("every sensor's own addresses at the controller", within: 20) {
                let p = protectedScopes(fleet)
                return (0..<FleetLab.sensorCount).allSatisfy { p[fleet.hostIP($0)] == "own address" }
            }
            #expect(protectedScopes(fleet)[fleet.gatewayIP] == "gateway", "a gateway on the sensors' own network is believed")

            // The admin logs in to host 0 and keeps the session busy.
            try lab.write("echo.py", Self.echoServer)
            try lab.write("admin.py", Self.adminClient(source: admin, host: fleet.hostIP(0), out: lab.file("admin.count")))
            _ = try lab.spawn(fleet.hostNS[0], ["python3", lab.file("echo.py")], log: "echo.out")
            try lab.waitFor("the SSH stand-in", within: 10) {
                (try lab.exec(fleet.hostNS[0], ["ss", "-Htln", "sport = :22"])).contains(":22")
            }
            let session = try lab.spawn(fleet.attackerNS, ["python3", lab.file("admin.py")], log: "admin.out")
            do {
                try lab.waitFor("the admin's session to be protected fleet-wide", within: 10) {
                    protectedScopes(fleet)[admin] == "peer of a live admin session"
                }
            } catch {
                Issue.record("host 0: \(lab.read("s0/sensor.out"))\nadmin: \(lab.read("admin.out")) \(lab.read("admin.count"))\nprotected: \(protectedScopes(fleet))\nss: \((try? lab.exec(fleet.hostNS[0], ["ss", "-tn"])) ?? "")")
                throw error
            }
            #expect(lab.read("s0/sensor.out").contains("Live session on PROTECT_PORTS from \(admin)"))

            // Eleven forged SYNs: one per host "from" a fleet member (to its five peers), one
            // per host "from" the admin.
            for i in 0..<FleetLab.sensorCount where i != 1 { try fleet.probe(i, from: member) }
            for i in 0..<FleetLab.sensorCount { try fleet.probe(i, from: admin) }
            try lab.waitFor("both forged sweeps found and refused as protected", within: 15) {
                ((try? lab.exec(fleet.controllerNS, ["curl", "-s", "--cacert", fleet.data + "/tls.crt",
                                                     "https://\(fleet.controllerIP):8443/metrics"])) ?? "")
                    .contains("portsentry_controller_decisions_refused_total{reason=\"protected\"} 2")
            }
            let stored = try fleet.controllerCLI(["events", "--json", "--limit", "100000"])
            #expect(stored.components(separatedBy: "\"source\":\"\(member)\"").count - 1 == FleetLab.sensorCount - 1)
            #expect(stored.components(separatedBy: "\"source\":\"\(admin)\"").count - 1 == FleetLab.sensorCount)
            #expect(!(try fleet.controllerCLI(["decisions", "list", "--all"])).contains(admin))
            #expect(fleet.noHostBlocks(member) && fleet.noHostBlocks(admin))
            let before = answered(fleet)
            try lab.waitFor("the admin's session still answering", within: 5) { answered(fleet) >= before + 5 }
            #expect(session.isRunning && !lab.read("admin.count").contains("LOST"))

            // The attacker's real sweep from its own address: blocked everywhere within a second.
            let elapsed = try fleet.thinSweepUntilBlocked()
            print("FleetTrustTests: real sweep blocked on all \(FleetLab.sensorCount) hosts \(String(format: "%.3f", elapsed)) s after the deciding probe")
            #expect(elapsed < 1.0, "deciding probe to blocked on all hosts took \(elapsed) s")
            let decisions = try fleet.controllerCLI(["decisions", "list", "--json"])
            #expect(decisions.contains(fleet.attackerIP))

            // An operator bans the admin by mistake: sensors' claims do not veto it (the
            // operator is told), the other hosts enforce it, host 0 keeps the live session.
            let ban = try fleet.controllerCLI(["ban", admin, "--duration", "600", "--reason", "operator test"])
            #expect(ban.contains("banned \(admin)") && ban.contains("peer of a live admin session"))
            try lab.waitFor("the operator's ban on hosts 1-5", within: 5) {
                (1..<FleetLab.sensorCount).allSatisfy { fleet.fleetSet($0).contains(admin) }
            }
            try lab.waitFor("host 0 to say why it does not enforce it", within: 5) {
                lab.read("s0/sensor.out").contains("not blocking \(admin): it covers \(admin)")
            }
            #expect(!fleet.fleetSet(0).contains(admin))
            let during = answered(fleet)
            try lab.waitFor("the admin's session still answering", within: 5) { answered(fleet) >= during + 5 }
            #expect(session.isRunning)
            try fleet.controllerCLI(["unban", admin])
            try lab.waitFor("the unban everywhere", within: 5) { fleet.noHostBlocks(admin) }
            let skipped = ((try JSONSerialization.jsonObject(with: Data(try lab.exec(fleet.hostNS[0],
                [Lab.sensorBinary, "status", "--json", "-c", lab.file("s0/portsentry.conf")]).utf8))) as? [String: Any])?["fleet"] as? [String: Any]
            #expect((skipped?["skipped_total"] as? Int ?? 0) >= 1, "the skip is counted: \(String(describing: skipped))")

            _ = try? lab.stop(session)
            for i in 0..<FleetLab.sensorCount { #expect(try lab.stop(fleet.sensors[i]!) == 0) }
            try fleet.stopController()
        }
    }
}
