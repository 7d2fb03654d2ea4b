import Foundation
import PortsentryShared
import Testing

/// A real sensor enrolled with a real controller (both processes, real TLS): detections
/// arrive signed, and a controller outage loses nothing and duplicates nothing.
extension EndToEnd {
    @Suite struct UplinkTests {
        /// How long the controller is down in the outage test.
        static let outageSeconds: Double = 30

        @Test func eventsArriveSignedAndSurviveAControllerOutage() throws {
            try withLab(62) { lab in
                let ctl = ControllerProcessTests.binary
                let data = lab.file("controller")
                try Lab.run([ctl, "init", "--data", data, "--name", "127.0.0.1"])
                let token = try Lab.run([ctl, "sensors", "add", "web-1", "--data", data]).trimmingCharacters(in: .whitespacesAndNewlines)
                func serve(_ log: String) throws -> Child { try lab.serveController(data, log: log) }
                func stored() -> [String] { lab.storedEvents(data) }
                var controller = try serve("ctl1.out")

                let config = lab.uplinkConfig
                try lab.write("portsentry.conf", config)
                let enrolled = try lab.exec(lab.sensorNS, [Lab.sensorBinary, "enroll", "https://127.0.0.1:8443", token,
                                                           "--ca-file", data + "/tls.crt", "-c", lab.file("portsentry.conf")])
                #expect(enrolled.contains("enrolled as web-1"))
                // The token was one-time.
                let again = try lab.exec(lab.sensorNS, [Lab.sensorBinary, "enroll", "https://127.0.0.1:8443", token,
                                                        "--ca-file", data + "/tls.crt", "-c", lab.file("portsentry.conf")],
                                         allowFailure: true)
                #expect(!again.contains("enrolled as"))
                try lab.exec(lab.sensorNS, [Lab.sensorBinary, "enroll", "https://127.0.0.1:8443", "x",
                                            "--ca-file", data + "/tls.crt", "-c", lab.file("portsentry.conf")], allowFailure: true)
                // (A failed enrollment leaves the first one in place.)
                let sensor = try lab.startSensor(config: config)
                #expect(lab.read("sensor.out").contains("Reporting to the controller at https://127.0.0.1:8443 as web-1"))

                // The first heartbeat goes out at start: the controller knows the sensor's state.
                try lab.waitFor("a heartbeat", within: 15) {
                    ((try? Lab.run([ctl, "sensors", "list", "--data", data, "--json"])) ?? "").contains("\"uptime_seconds\"")
                }
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1,7,9,11,79,111", lab.sensorV4])
                try lab.waitFor("6 events at the controller", within: 15) { stored().count == 6 }

                // Outage: the controller goes away during a scan, comes back later.
                _ = try lab.stop(controller)
                try lab.exec(lab.attackerNS, ["nmap", "-6", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1,7,9,11,79,111", lab.sensorV6])
                try lab.waitFor("the sensor to notice", within: 15) { lab.read("sensor.out").contains("Controller unreachable") }
                Thread.sleep(forTimeInterval: Self.outageSeconds)  // the outage itself, not a wait for a result
                #expect(stored().count == 6)
                controller = try serve("ctl2.out")
                try lab.waitFor("all 12 events, after the outage", within: 60) { stored().count == 12 }
                let events = stored()
                #expect(Set(events).count == 12, "none twice")
                #expect(events.filter { $0.contains(lab.attackerV6) }.count == 6)
                #expect(try lab.stop(sensor) == 0)
                #expect(try lab.stop(controller) == 0)
                #expect(((try? FileManager.default.contentsOfDirectory(atPath: lab.file("state/spool"))) ?? ["x.batch"])
                    .filter { $0.hasSuffix(".batch") }.isEmpty, "the spool is empty once delivered")
            }
        }
    }
}
