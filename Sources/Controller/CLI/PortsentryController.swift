import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import PortsentryShared

let controllerVersion = "3.0.0-dev"

@main
struct PortsentryController: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portsentry-controller",
        abstract: "Portsentry fleet controller: enrolls sensors and stores their signed reports.",
        version: controllerVersion,
        subcommands: [Init.self, Serve.self, Sensors.self, Events.self],
        defaultSubcommand: Serve.self
    )
}

/// A failure worth a one-line message and exit status 1.
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "Data directory (database, TLS and signing keys).")
    var directory: String = "/var/lib/portsentry-controller"

    @Option(name: .customLong("postgres-host"), help: "Use PostgreSQL on this host instead of the embedded SQLite database.")
    var postgresHost: String?
    @Option(name: .customLong("postgres-port")) var postgresPort = 5432
    @Option(name: .customLong("postgres-user")) var postgresUser = "portsentry"
    @Option(name: .customLong("postgres-database")) var postgresDatabase = "portsentry"
    @Option(name: .customLong("postgres-password-file"), help: "File holding the PostgreSQL password.")
    var postgresPasswordFile: String?

    var database: String { directory + "/controller.db" }
    var tlsKey: String { directory + "/tls.key" }
    var tlsCert: String { directory + "/tls.crt" }
    var signingKey: String { directory + "/signing.key" }

    /// SQLite in the data directory, or PostgreSQL when --postgres-host is given (several
    /// controller replicas can then share one database).
    func store() async throws -> any ControllerStore {
        if let host = postgresHost {
            var password: String? = nil
            if let file = postgresPasswordFile {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw Failure("cannot read \(file)") }
                password = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            do {
                return try await PostgresStore(.init(host: host, port: postgresPort, user: postgresUser, password: password,
                                                     database: postgresDatabase), logger: Logger(label: "portsentry-controller"))
            } catch {
                throw Failure("PostgreSQL at \(host):\(postgresPort)/\(postgresDatabase): \(String(reflecting: error))")
            }
        }
        guard FileManager.default.fileExists(atPath: database) else {
            throw Failure("\(database) does not exist: run `portsentry-controller init --data \(directory)` first")
        }
        return try SQLiteStore(path: database)
    }

    func loadSigningKey() throws -> Ed25519.PrivateKey {
        guard let text = try? String(contentsOfFile: signingKey, encoding: .utf8),
              let raw = Hex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Failure("\(signingKey): missing or not a hex Ed25519 key (run init)")
        }
        return try Ed25519.PrivateKey(raw: raw)
    }
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the data directory, a TLS certificate and key, and the block-list signing key.")
    @OptionGroup var data: DataOptions
    @Option(name: .customLong("name"), help: "DNS names and IP addresses sensors use to reach the controller (repeatable).")
    var names: [String] = ["localhost", "127.0.0.1"]

    func run() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: data.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard !fm.fileExists(atPath: data.database) else { throw Failure("\(data.directory) is already initialised") }
        let san = names.map { IPAddress($0) != nil ? "IP:\($0)" : "DNS:\($0)" }.joined(separator: ",")
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", data.tlsKey, "-out", data.tlsCert, "-days", "3650",
                             "-subj", "/CN=\(names.first ?? "portsentry-controller")", "-addext", "subjectAltName=\(san)"]
        openssl.standardError = FileHandle.nullDevice
        do { try openssl.run() } catch { throw Failure("cannot run /usr/bin/openssl to make the TLS certificate: \(error)") }
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw Failure("openssl failed to create the TLS certificate") }
        try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: data.tlsKey)
        let key = try Ed25519.PrivateKey.generate()
        _ = fm.createFile(atPath: data.signingKey, contents: Data(Hex.encode(key.raw).utf8), attributes: [.posixPermissions: 0o600])
        _ = try SQLiteStore(path: data.database)
        print("initialised \(data.directory)")
        print("  TLS certificate: \(data.tlsCert) (\(san))")
        print("  block-list signing key: \(Hex.encode(try key.publicKey.raw))")
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTPS service (the default command).")
    @OptionGroup var data: DataOptions
    @Option(name: .customLong("listen"), help: "Address to listen on.") var host = "0.0.0.0"
    @Option(name: .customLong("port"), help: "TCP port.") var port = 8443

    func run() async throws {
        let logger = { () -> Logger in
            var l = Logger(label: "portsentry-controller")
            l.logLevel = .info
            return l
        }()
        let store = try await data.store()
        let signing = try data.loadSigningKey()
        let chain: [NIOSSLCertificate]
        let privateKey: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(data.tlsCert)
            privateKey = try NIOSSLPrivateKey(file: data.tlsKey, format: .pem)
        } catch {
            throw Failure("\(data.tlsCert) / \(data.tlsKey): \(error)")
        }
        let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                           privateKey: .privateKey(privateKey))
        let api = ControllerAPI(store: store, metrics: IngestMetrics(), signingKey: try signing.publicKey, logger: logger,
                                clock: { Int64(Date().timeIntervalSince1970 * 1000) })
        let app = Application(router: api.router(), server: try .tls(.http1(), tlsConfiguration: tls),
                              configuration: .init(address: .hostname(host, port: port)),
                              onServerRunning: { channel in
                                  logger.notice("portsentry-controller \(controllerVersion) listening on \(channel.localAddress?.description ?? "?")")
                              },
                              logger: logger)
        try await app.runService()
    }
}

struct Sensors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Enroll, list and revoke sensors.",
                                                    subcommands: [Add.self, List.self, Revoke.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a one-time enrollment token for a sensor.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The sensor's name (letters, digits, . _ -).") var name: String
        @Option(name: .customLong("valid-for"), help: "Seconds the token stays valid.") var seconds = 86_400

        func run() async throws {
            guard !name.isEmpty, name.count <= 64,
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
                throw ValidationError("a sensor name is 1-64 letters, digits, '.', '_' or '-'")
            }
            let store = try await data.store()
            var random = SystemRandomNumberGenerator()
            let token = Hex.encode((0..<24).map { _ in UInt8.random(in: .min ... .max, using: &random) })
            try await store.addEnrollment(tokenHash: Data(SHA256.digest(Array(token.utf8))), sensor: name,
                                          expires: Int64(Date().timeIntervalSince1970) + Int64(seconds))
            print(token)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enrolled sensors.")
        @OptionGroup var data: DataOptions
        @Flag(name: .customLong("json")) var json = false

        func run() async throws {
            let now = Int64(Date().timeIntervalSince1970)
            let sensors = try await data.store().sensors()
            if json {
                let list = sensors.map { s -> [String: Any] in
                    var o: [String: Any] = ["name": s.name, "revoked": s.revoked, "last_sequence": s.lastSequence,
                                            "last_seen": s.lastSeen, "lag_seconds": now - s.lastSeen, "version": s.version]
                    if let status = try? JSONSerialization.jsonObject(with: Data(s.status.utf8)) { o["status"] = status }
                    return o
                }
                let out = try JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: out, as: UTF8.self))
                return
            }
            for s in sensors {
                print("\(s.name)\t\(s.revoked ? "revoked" : "active")\tlast seen \(now - s.lastSeen)s ago\tbatches \(s.lastSequence)\t\(s.version)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse every further report from a sensor.")
        @OptionGroup var data: DataOptions
        @Argument var name: String

        func run() async throws {
            guard try await data.store().revoke(name) else { throw Failure("no sensor named \(name)") }
            print("revoked \(name)")
        }
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Events received from sensors.")
    @OptionGroup var data: DataOptions
    @Option(name: .customLong("since"), help: "Only events received in the last N seconds.") var since: Int64?
    @Option(name: .customLong("limit")) var limit = 1000
    @Flag(name: .customLong("json")) var json = false

    func run() async throws {
        let from = since.map { (Int64(Date().timeIntervalSince1970) - $0) * 1000 } ?? 0
        let events = try await data.store().events(since: from, limit: limit)
        for e in events {
            if json {
                let object: [String: Any] = ["id": e.id, "sensor": e.sensor, "time_ns": e.timeNs, "source": e.source,
                                             "destination": e.destination, "protocol": e.proto, "port": e.port,
                                             "type": e.type, "evidence": e.evidence]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print("\(e.sensor)\t\(e.source) -> \(e.destination) \(e.proto)/\(e.port)\t\(e.type)")
            }
        }
    }
}
