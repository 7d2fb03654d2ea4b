import Foundation
import PortsentryShared
import Testing

/// The real `portsentry-controller` over real TLS with its real SQLite store, on a test
/// namespace's loopback. Batches are signed here (the sensor's uplink is not built yet) and
/// posted with curl, which verifies the controller's certificate.
extension EndToEnd {
    @Suite struct ControllerProcessTests {
        static var binary: String {
            Lab.packageRoot.appendingPathComponent(".build/debug/portsentry-controller").path
        }

        @Test func everyAcknowledgedBatchSurvivesSIGKILL() throws {
            try withLab(61) { lab in
                let data = lab.file("controller")
                try Lab.run([Self.binary, "init", "--data", data, "--name", "127.0.0.1"])
                let token = try Lab.run([Self.binary, "sensors", "add", "web-1", "--data", data])
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                func serve(_ log: String) throws -> Child {
                    let c = try lab.spawn(lab.sensorNS, [Self.binary, "serve", "--data", data, "--listen", "127.0.0.1", "--port", "8443"],
                                          log: log)
                    try lab.waitFor("the controller to listen", within: 30) { lab.read(log).contains("listening on") }
                    return c
                }
                func curl(_ path: String, _ extra: [String]) throws -> String {
                    try lab.exec(lab.sensorNS, ["curl", "-sS", "--cacert", data + "/tls.crt", "-w", "\n%{http_code}"]
                                 + extra + ["https://127.0.0.1:8443" + path])
                }
                var controller = try serve("controller1.out")

                let key = try Ed25519.PrivateKey.generate()
                let enrolled = try curl(ReportProtocol.enrollPath, ["-X", "POST", "-d",
                    #"{"token":"\#(token)","public_key":"\#(Hex.encode(try key.publicKey.raw))"}"#])
                #expect(enrolled.hasSuffix("\n200"), "\(enrolled)")

                // 40 batches of 5 events, each acknowledged, then SIGKILL at once.
                var acknowledged = 0
                for sequence in 1...40 {
                    let events = (0..<5).map { i -> ScanEvent in
                        var e = ScanEvent(time: Int64(Date().timeIntervalSince1970) * 1_000_000_000, source: IPAddress("198.51.100.7")!,
                                          destination: IPAddress("192.0.2.10")!, proto: .tcp, port: UInt16(sequence * 10 + i),
                                          kind: .tcpSYN, ipOptions: .notSet)
                        e.ignored = .no
                        e.triggered = .yes
                        return e
                    }
                    let body = ReportProtocol.body(events: events)
                    let bodyFile = lab.file("batch.json")
                    try Data(body).write(to: URL(fileURLWithPath: bodyFile))
                    let env = try SignedEnvelope.sign(body: body, sensorID: "web-1", sequence: UInt64(sequence),
                                                      timestampMillis: Int64(Date().timeIntervalSince1970 * 1000), key: key)
                    let reply = try curl(ReportProtocol.eventsPath, ["-X", "POST", "--data-binary", "@" + bodyFile,
                        "-H", "\(ReportProtocol.sensorHeader): web-1", "-H", "\(ReportProtocol.sequenceHeader): \(sequence)",
                        "-H", "\(ReportProtocol.timestampHeader): \(env.timestampMillis)",
                        "-H", "\(ReportProtocol.digestHeader): \(Hex.encode(env.bodyDigest))",
                        "-H", "\(ReportProtocol.signatureHeader): \(Hex.encode(env.signature))"])
                    if reply.hasSuffix("\n200") { acknowledged += 5 }
                }
                #expect(acknowledged == 200)
                _ = try lab.stop(controller, signal: SIGKILL)

                controller = try serve("controller2.out")
                let stored = try Lab.run([Self.binary, "events", "--data", data, "--json", "--limit", "10000"])
                    .split(separator: "\n").count
                #expect(stored == acknowledged, "every acknowledged event is in the store after SIGKILL")
                // A replay of batch 1 after the restart is still refused.
                let list = try Lab.run([Self.binary, "sensors", "list", "--data", data, "--json"])
                #expect(list.contains("\"last_sequence\" : 40"))
                #expect(try lab.stop(controller) == 0)
            }
        }
    }
}
