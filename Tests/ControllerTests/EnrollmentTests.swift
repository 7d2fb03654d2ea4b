@testable import Controller
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PortsentryShared
import Testing
@testable import ControllerCore

/// Enrollment cannot take over an existing sensor's name (its key, a revocation) unless the
/// operator made the token with `sensors add --replace`; the answer carries the controller's
/// TLS key pin. Both stores behave the same.
@Suite struct EnrollmentTests {
    static func token(_ store: any ControllerStore, _ text: String, for name: String, replace: Bool) async throws {
        try await store.addEnrollment(tokenHash: Data(SHA256.digest(Array(text.utf8))), sensor: name,
                                      expires: IngestTests.now / 1000 + 60, replace: replace)
    }

    static func present(_ client: some TestClientProtocol, _ token: String, _ key: Ed25519.PrivateKey) async throws -> (Int, String) {
        let body = #"{"token":"\#(token)","public_key":"\#(Hex.encode(try key.publicKey.raw))","version":"test"}"#
        return try await client.execute(uri: ReportProtocol.enrollPath, method: .post, body: ByteBuffer(string: body)) { response in
            (Int(response.status.code), String(buffer: response.body))
        }
    }

    @Test(arguments: IngestTests.backends) func reEnrollingANameNeedsAReplaceToken(backend: String) async throws {
        let f = try await IngestTests.Fixture(backend)
        try await Application(router: f.api.router()).test(.router) { client in
            let original = try await f.enroll(client, "web-1")
            let originalKey = Data(try original.publicKey.raw)

            // A plain token for an existing name: refused, key kept, token used up.
            try await Self.token(f.store, "again", for: "web-1", replace: false)
            let intruder = try Ed25519.PrivateKey.generate()
            let refused = try await Self.present(client, "again", intruder)
            #expect(refused.0 == 409 && refused.1.contains("--replace"), "\(refused)")
            #expect(try await f.store.sensor("web-1")?.publicKey == originalKey)
            #expect(try await Self.present(client, "again", intruder).0 == 401, "one-time even when refused")

            // Revoked stays revoked.
            #expect(try await f.store.revoke("web-1"))
            try await Self.token(f.store, "plain", for: "web-1", replace: false)
            #expect(try await Self.present(client, "plain", intruder).0 == 409)
            #expect(try await f.store.sensor("web-1")?.revoked == true)
            #expect(try await f.store.sensor("web-1")?.publicKey == originalKey)

            // The operator's explicit --replace: new key, reinstated.
            try await Self.token(f.store, "replace", for: "web-1", replace: true)
            let successor = try Ed25519.PrivateKey.generate()
            #expect(try await Self.present(client, "replace", successor).0 == 200)
            let now = try #require(try await f.store.sensor("web-1"))
            #expect(now.publicKey == Data(try successor.publicKey.raw) && !now.revoked)

            // A new name needs no replace token; a replace token for a new name works too.
            try await Self.token(f.store, "fresh", for: "web-2", replace: false)
            #expect(try await Self.present(client, "fresh", intruder).0 == 200)
            try await Self.token(f.store, "fresh-r", for: "web-3", replace: true)
            #expect(try await Self.present(client, "fresh-r", intruder).0 == 200)
        }
    }

    @Test func enrollmentReportsTheTLSPin() async throws {
        let f = try await IngestTests.Fixture("sqlite")
        let cert = f.directory.appendingPathComponent("tls.crt").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", f.directory.appendingPathComponent("tls.key").path, "-out", cert, "-days", "1",
                             "-subj", "/CN=127.0.0.1"]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        let pin = try TLSPin.pin(certificateFile: cert)
        var fleet = f.fleet
        fleet.tlsPin = pin
        let api = ControllerAPI(store: f.store, metrics: f.metrics, signingKey: try f.signing.publicKey, fleet: fleet,
                                logger: .init(label: "test"), clock: { IngestTests.now })
        try await Application(router: api.router()).test(.router) { client in
            try await Self.token(f.store, "t", for: "web-1", replace: false)
            let (status, body) = try await Self.present(client, "t", try Ed25519.PrivateKey.generate())
            #expect(status == 200)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            #expect(object["tls_pin"] as? String == pin)
            #expect(object["sensor"] as? String == "web-1")
        }
    }

    /// `sensors add NAME` for an existing name fails with a clear error unless --replace.
    @Test func sensorsAddRefusesAnExistingNameWithoutReplace() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pst-ctl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(path: directory.appendingPathComponent("controller.db").path)
        func add(_ extra: [String]) async throws {
            let command = try #require(try PortsentryController.parseAsRoot(["sensors", "add", "web-1", "--data", directory.path] + extra)
                                           as? Sensors.Add)
            try await command.run()
        }
        try await add([])  // a new name
        try await add([])  // still not enrolled: a new token replaces the pending one
        try await Self.token(store, "t", for: "web-1", replace: false)
        #expect(try await store.enroll(tokenHash: Data(SHA256.digest(Array("t".utf8))), publicKey: Data(count: 32),
                                       now: IngestTests.now / 1000, version: "t") != .refused)
        do {
            try await add([])
            Issue.record("an existing name was accepted without --replace")
        } catch {
            #expect("\(error)" == "a sensor named web-1 already exists (enrolled); a new enrollment would replace its key: pass --replace to allow that")
        }
        #expect(try await store.revoke("web-1"))
        do { try await add([]) } catch { #expect("\(error)".contains("(revoked)") && "\(error)".contains("and reinstate it")) }
        try await add(["--replace"])
    }
}
