import Foundation
import PortsentryShared
import Testing

/// The real `portsentry-controller` over real TLS with its real store (SQLite, and the
/// PostgreSQL server scripts/test.sh starts), on loopback. Batches are signed here and posted
/// with curl, which verifies the controller's certificate.
extension EndToEnd {
    @Suite struct ControllerProcessTests {
        static var binary: String {
            Lab.packageRoot.appendingPathComponent(".build/debug/portsentry-controller").path
        }

        @Test(arguments: ["sqlite", "postgres"]) func everyAcknowledgedBatchSurvivesSIGKILL(backend: String) throws {
            try withLab(61) { lab in
                let data = lab.file("controller")
                // SQLite: the controller runs on the test namespace's loopback. PostgreSQL
                // listens on the machine's loopback, so there the controller does too (on a
                // test port; still loopback only).
                var database: [String] = []
                var namespace: String? = lab.sensorNS
                var port = "8443"
                if backend == "postgres" {
                    guard let spec = ProcessInfo.processInfo.environment["PORTSENTRY_TEST_POSTGRES"]?.split(separator: ":"), spec.count == 5 else {
                        throw Lab.Failure(description: "PORTSENTRY_TEST_POSTGRES is not set: run the tests with scripts/test.sh (it starts PostgreSQL)")
                    }
                    try lab.write("pg.password", String(spec[3]))
                    database = ["--postgres-host", String(spec[0]), "--postgres-port", String(spec[1]), "--postgres-user", String(spec[2]),
                                "--postgres-database", String(spec[4]), "--postgres-password-file", lab.file("pg.password")]
                    namespace = nil
                    port = "18461"
                }
                func cli(_ args: [String]) throws -> String { try Lab.run([Self.binary] + args + ["--data", data] + database) }
                try Lab.run([Self.binary, "init", "--data", data, "--name", "127.0.0.1"])
                // A name of this run's own: the PostgreSQL database outlives one run of the suite.
                let name = "web-" + UUID().uuidString.prefix(8).lowercased()
                let token = try cli(["sensors", "add", name]).trimmingCharacters(in: .whitespacesAndNewlines)
                func serve(_ log: String) throws -> Child {
                    let args = [Self.binary, "serve", "--data", data, "--listen", "127.0.0.1", "--port", port] + database
                    let c = try namespace.map { try lab.spawn($0, args, log: log) } ?? lab.spawnHere(args, log: log)
                    try lab.waitFor("the controller to listen", within: 30) {
                        if !c.isRunning { throw Lab.Failure(description: "controller exited:\n\(lab.read(log))") }
                        return lab.read(log).contains("listening on")
                    }
                    return c
                }
                func curl(_ path: String, _ extra: [String]) throws -> String {
                    let args = ["curl", "-sS", "--cacert", data + "/tls.crt", "-w", "\n%{http_code}"] + extra + ["https://127.0.0.1:\(port)" + path]
                    return try namespace.map { try lab.exec($0, args) } ?? Lab.run(args)
                }
                func storedEvents() throws -> Int {
                    try cli(["events", "--json", "--limit", "100000000"]).split(separator: "\n").count
                }
                let before = try storedEvents()
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
                    let env = try SignedEnvelope.sign(body: body, sensorID: name, sequence: UInt64(sequence),
                                                      timestampMillis: Int64(Date().timeIntervalSince1970 * 1000), key: key)
                    let reply = try curl(ReportProtocol.eventsPath, ["-X", "POST", "--data-binary", "@" + bodyFile,
                        "-H", "\(ReportProtocol.sensorHeader): \(name)", "-H", "\(ReportProtocol.sequenceHeader): \(sequence)",
                        "-H", "\(ReportProtocol.timestampHeader): \(env.timestampMillis)",
                        "-H", "\(ReportProtocol.digestHeader): \(Hex.encode(env.bodyDigest))",
                        "-H", "\(ReportProtocol.signatureHeader): \(Hex.encode(env.signature))"])
                    if reply.hasSuffix("\n200") { acknowledged += 5 }
                }
                #expect(acknowledged == 200)
                _ = try lab.stop(controller, signal: SIGKILL)

                controller = try serve("controller2.out")
                #expect(try storedEvents() - before == acknowledged, "every acknowledged event is in the store after SIGKILL")
                // A replay of batch 1 after the restart is still refused.
                let list = try cli(["sensors", "list", "--json"])
                #expect(list.contains("\"last_sequence\" : 40"))
                #expect(try lab.stop(controller) == 0)
            }
        }
    }
}
