import Foundation
import PortsentryShared
import Testing

/// Fault injection between a real sensor and a real controller: a garbage batch at the head of
/// the spool, a batch sealed a week ago by an older version, a zeroed and a rewound sequence
/// file, a controller outage, and a sensor the controller no longer accepts. After each fault
/// every event the sensor logged is stored at the controller, waits in the spool, or is counted
/// with its reason: nothing disappears silently.
extension EndToEnd {
    @Suite struct UplinkFaultTests {
        @Test func everyLoggedEventIsStoredSpooledOrCountedWhateverHappens() throws {
            try withLab(66) { lab in
                let ctl = ControllerProcessTests.binary
                let data = lab.file("controller")
                try Lab.run([ctl, "init", "--data", data, "--name", "127.0.0.1"])
                let token = try Lab.run([ctl, "sensors", "add", "web-1", "--data", data]).trimmingCharacters(in: .whitespacesAndNewlines)
                func serve(_ log: String) throws -> Child { try lab.serveController(data, log: log) }
                func stored() -> [String] { lab.storedEvents(data) }
                let config = lab.uplinkConfig
                try lab.write("portsentry.conf", config)
                var controller = try serve("ctl1.out")
                try lab.exec(lab.sensorNS, [Lab.sensorBinary, "enroll", "https://127.0.0.1:8443", token, "--ca-file", data + "/tls.crt",
                                            "-c", lab.file("portsentry.conf")])
                var logs: [String] = []
                func start() throws -> Child {
                    let log = "sensor\(logs.count + 1).out"
                    logs.append(log)
                    return try lab.startSensor(config: config, log: log)
                }
                func logged() -> Int { logs.reduce(0) { $0 + lab.read($1).components(separatedBy: "Scan from: [").count - 1 } }
                func status() throws -> [String: Any] {
                    let text = try lab.exec(lab.sensorNS, [Lab.sensorBinary, "status", "--json", "-c", lab.file("portsentry.conf")])
                    return ((try JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any])?["uplink"] as? [String: Any] ?? [:]
                }
                let spool = lab.file("state/spool")
                func spooled() -> [String] {
                    ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".batch") }.sorted()
                }
                func scan(_ ports: String, v6: Bool = false) throws {
                    try lab.exec(lab.attackerNS, ["nmap"] + (v6 ? ["-6"] : []) + ["-sS", "-Pn", "-n", "--max-retries", "0", "-p", ports,
                                                                                  v6 ? lab.sensorV6 : lab.sensorV4])
                }

                var sensor = try start()
                try scan("1,7,9,11,79,111")
                try lab.waitFor("6 events at the controller", within: 15) { stored().count == 6 }
                #expect(try lab.stop(sensor) == 0)
                let sequence = try String(contentsOfFile: lab.file("state/uplink.sequence"), encoding: .utf8)
                let last = try #require(UInt64(sequence.trimmingCharacters(in: .whitespacesAndNewlines)))

                // Faults, with the sensor stopped:
                // - garbage at the head of the spool (a lower number than anything else);
                try Data("garbage".utf8).write(to: URL(fileURLWithPath: spool + "/" + String(format: "%020d", 1) + ".batch"))
                // - a batch an older version sealed and signed a week ago (the controller's
                //   window is 5 minutes: it is re-signed when sent);
                let weekAgo = Int64(Date().timeIntervalSince1970 * 1000) - 7 * 86_400_000
                let old = ScanEvent(time: weekAgo * 1_000_000, source: IPAddress("198.51.100.99")!, destination: IPAddress(lab.sensorV4)!,
                                    proto: .tcp, port: 79, kind: .tcpSYN, ipOptions: .notSet)
                let body = ReportProtocol.body(events: [old])
                let header = "{\"events\":1,\"signature\":\"\(String(repeating: "00", count: 64))\",\"digest\":\"\(Hex.encode(SHA256.digest(body)))\",\"timestamp\":\(weekAgo)}\n"
                try (Data(header.utf8) + Data(body)).write(to: URL(fileURLWithPath: spool + "/" + String(format: "%020llu", last + 1) + ".batch"))
                // - a zeroed sequence file;
                try "0".write(toFile: lab.file("state/uplink.sequence"), atomically: true, encoding: .utf8)
                // - and the controller down while the sensor detects.
                #expect(try lab.stop(controller) == 0)
                sensor = try start()
                #expect(lab.read(logs.last!).contains("uplink.sequence is missing, empty or unreadable"))
                try scan("1,7,9,11,79,111", v6: true)
                try lab.waitFor("the outage noticed", within: 15) { lab.read(logs.last!).contains("Controller unreachable") }
                #expect(stored().count == 6)
                controller = try serve("ctl2.out")
                try lab.waitFor("the spool delivered after the outage", within: 60) { stored().count == 13 && spooled().isEmpty }
                let events = stored()
                #expect(Set(events).count == 13, "none twice")
                #expect(events.contains { $0.contains("198.51.100.99") }, "the week-old batch arrived")
                #expect(((try? FileManager.default.contentsOfDirectory(atPath: spool + "/quarantine")) ?? []).count == 1, "garbage set aside, not deleted")
                var s = try status()
                #expect(s["quarantined_batches"] as? Int == 1 && s["dropped_events"] as? Int == 0 && s["delivered_events"] as? Int == 7, "\(s)")
                // One kept connection (and TLS session) for the spool's batches and the heartbeats,
                // not one handshake a request.
                let answered = s["answered"] as? Int ?? 0, opened = s["connections_opened"] as? Int ?? 0
                #expect(answered >= 2 && opened >= 1 && opened < answered, "connections \(opened) for \(answered) answered requests")
                #expect(lab.read(logs.last!).contains("quarantined"))

                // A rewound sequence file (valid, but below what the controller holds): the
                // controller says which it holds, the sensor renumbers and delivers.
                #expect(try lab.stop(sensor) == 0)
                try "1".write(toFile: lab.file("state/uplink.sequence"), atomically: true, encoding: .utf8)
                sensor = try start()
                try scan("7")
                try lab.waitFor("the renumbered batch stored", within: 30) { stored().count == 14 }
                s = try status()
                #expect((s["renumbered"] as? Int ?? 0) >= 1 && s["delivered_events"] as? Int == 1, "\(s)")

                // The controller no longer accepts this sensor: the spool is kept, the log says why.
                try Lab.run([ctl, "sensors", "revoke", "web-1", "--data", data])
                try scan("9,11")
                try lab.waitFor("the refusal", within: 30) { lab.read(logs.last!).contains("enroll it again") }
                #expect(!spooled().isEmpty, "refused batches stay in the spool")
                s = try status()
                #expect((s["refusals"] as? Int ?? 0) >= 1 && s["dropped_events"] as? Int == 0)
                #expect(try lab.stop(sensor) == 0)
                #expect(try lab.stop(controller) == 0)

                // The books balance: every event logged (the week-old one was never logged
                // here) is stored, still spooled, or was counted (the quarantined file held none).
                let waiting = spooled().compactMap { name -> Int? in
                    guard let text = try? String(contentsOfFile: spool + "/" + name, encoding: .utf8),
                          let line = text.split(separator: "\n").first,
                          let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
                    return o["events"] as? Int
                }.reduce(0, +)
                #expect(logged() == stored().count - 1 + waiting, "logged \(logged()), stored \(stored().count), spooled \(waiting)")
            }
        }
    }
}
