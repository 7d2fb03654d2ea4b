import Foundation
import Testing

/// STATE_DIR on a full disk (a 1 MiB tmpfs) while the controller is down and a spoofed flood
/// produces events faster than anything could store them: batches that cannot be written are
/// counted as dropped, and every sealed event is either in the spool or in that count.
extension EndToEnd {
    @Suite struct SpoolDiskFullTests {
        @Test func aFullStateDirectoryDropsBatchesAndCountsEveryOne() throws {
            try withLab(69) { lab in
                let ctl = ControllerProcessTests.binary
                let data = lab.file("controller")
                let state = lab.file("state")
                try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
                try Lab.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", state])
                // Lazy: a sensor still running after a failure cannot keep the mount busy.
                defer { _ = try? Lab.run(["umount", "-l", state], allowFailure: true) }

                try Lab.run([ctl, "init", "--data", data, "--name", "127.0.0.1"])
                let token = try Lab.run([ctl, "sensors", "add", "web-1", "--data", data]).trimmingCharacters(in: .whitespacesAndNewlines)
                let controller = try lab.serveController(data, log: "ctl.out")
                let config = lab.uplinkConfig + "\nLOG_RATE=\"100000\"\nLOG_BURST=\"100000\"\n"
                try lab.write("portsentry.conf", config)
                try lab.exec(lab.sensorNS, [Lab.sensorBinary, "enroll", "https://127.0.0.1:8443", token, "--ca-file", data + "/tls.crt",
                                            "-c", lab.file("portsentry.conf")])
                #expect(try lab.stop(controller) == 0)

                let sensor = try lab.startSensor(config: config)
                try lab.exec(lab.attackerNS, ["timeout", "-k", "1", "3", "hping3", "-q", "-S", "-p", "79", "--rand-source", "--flood",
                                              lab.sensorV4], allowFailure: true)
                func uplink() -> [String: Any] {
                    let text = (try? lab.exec(lab.sensorNS, [Lab.sensorBinary, "status", "--json", "-c", lab.file("portsentry.conf")])) ?? "{}"
                    return ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any])?["uplink"] as? [String: Any] ?? [:]
                }
                try lab.waitFor("batches dropped on the full disk", within: 20) { (uplink()["dropped_batches"] as? Int ?? 0) > 0 }
                #expect(lab.read("sensor.out").contains("Cannot spool a batch"))
                #expect(try lab.stop(sensor) == 0)

                // The books balance: what was sealed is in the spool or counted as dropped.
                let log = lab.read("sensor.out")
                let summary = try #require(log.split(separator: "\n").last { $0.contains("Uplink: ") }.map(String.init), "\(log.suffix(2000))")
                func number(before word: String) -> Int {
                    let parts = summary.components(separatedBy: " ")
                    guard let i = parts.firstIndex(where: { $0.hasPrefix(word) }), i > 0 else { return -1 }
                    return Int(parts[i - 1]) ?? -1
                }
                let sealed = number(before: "events"), dropped = number(before: "dropped")
                let spooled = ((try? FileManager.default.contentsOfDirectory(atPath: state + "/spool")) ?? []).filter { $0.hasSuffix(".batch") }
                    .compactMap { name -> Int? in
                        guard let text = try? String(contentsOfFile: state + "/spool/" + name, encoding: .utf8),
                              let line = text.split(separator: "\n").first,
                              let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
                        return o["events"] as? Int
                    }.reduce(0, +)
                print("SpoolDiskFullTests: \(summary.split(separator: "Uplink: ").last ?? ""); \(spooled) events in the spool files")
                #expect(sealed > 0 && dropped > 0 && sealed == dropped + spooled, "\(summary); spooled \(spooled)")
            }
        }
    }
}
