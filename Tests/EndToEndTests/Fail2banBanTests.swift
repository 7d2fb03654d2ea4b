import Foundation
import Testing

/// Portsentry's own advice is "log, and let fail2ban block". Here the real fail2ban (Debian's
/// package), running inside the sensor's namespace with its nftables action, reads our
/// history file through the filter we ship and bans a real scanner.
extension EndToEnd {
    @Suite struct Fail2banBanTests {
        @Test func fail2banBansAScannerFromOurHistoryFile() throws {
            try withLab(58) { lab in
                // A private copy of Debian's fail2ban configuration: our jail only, every path in the lab.
                let conf = lab.file("fail2ban")
                try Lab.run(["cp", "-r", "/etc/fail2ban", conf])
                try Lab.run(["rm", "-f", conf + "/jail.d/defaults-debian.conf"])
                try Lab.run(["cp", Lab.packageRoot.appendingPathComponent("deploy/fail2ban/filter.d/portsentry-sensor.conf").path,
                             conf + "/filter.d/"])
                let history = lab.file("portsentry.log")
                try """
                    [Definition]
                    logtarget = \(lab.file("fail2ban.log"))
                    socket = \(lab.file("f2b.sock"))
                    pidfile = \(lab.file("f2b.pid"))
                    dbfile = :memory:
                    """.write(toFile: conf + "/fail2ban.local", atomically: true, encoding: .utf8)
                // The shipped jail, pointed at this lab's history file and polling it.
                var jail = try String(contentsOfFile: Lab.packageRoot.appendingPathComponent("deploy/fail2ban/jail.d/portsentry-sensor.local").path,
                                      encoding: .utf8)
                jail = jail.replacingOccurrences(of: "logpath  = /var/log/portsentry.log", with: "logpath  = \(history)\nbackend  = polling")
                try jail.write(toFile: conf + "/jail.d/portsentry-sensor.local", atomically: true, encoding: .utf8)
                try "".write(toFile: history, atomically: true, encoding: .utf8)

                let f2b = try lab.spawn(lab.sensorNS, ["fail2ban-server", "-f", "-x", "-c", conf], log: "f2b.out")
                let client = ["fail2ban-client", "-c", conf]
                try lab.waitFor("fail2ban's jail", within: 30) {
                    ((try? lab.exec(lab.sensorNS, client + ["status", "portsentry-sensor"], allowFailure: true)) ?? "")
                        .contains("Currently banned")
                }
                // Log only: the sensor detects, fail2ban bans.
                let sensor = try lab.startSensor(config: "TCP_PORTS=\"1,79\"\nHISTORY_FILE=\"\(history)\"\n")
                _ = try lab.spawn(lab.sensorNS, ["python3", "-m", "http.server", "8080", "--bind", lab.sensorV4], log: "http.out")
                try lab.waitFor("the web server", within: 10) { lab.canConnect(from: lab.attackerNS, to: lab.sensorV4, port: 8080) }

                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "79", lab.sensorV4])
                try lab.waitFor("fail2ban to ban the scanner", within: 30) {
                    ((try? lab.exec(lab.sensorNS, client + ["status", "portsentry-sensor"], allowFailure: true)) ?? "")
                        .contains(lab.attackerV4)
                }
                // fail2ban reports the ban before its action has run: wait for the action's effect itself.
                try lab.waitFor("fail2ban's nftables action to hold the scanner", within: 30) {
                    ((try? lab.exec(lab.sensorNS, ["nft", "list", "ruleset"])) ?? "").contains(lab.attackerV4)
                }
                try lab.waitFor("the scanner cut off", within: 10) { !lab.canConnect(from: lab.attackerNS, to: lab.sensorV4, port: 8080) }
                #expect(try lab.stop(sensor) == 0)
                _ = try? lab.exec(lab.sensorNS, client + ["stop"], allowFailure: true, timeout: 20)
                try lab.waitFor("fail2ban to stop", within: 20) { !f2b.isRunning }
            }
        }
    }
}
