import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import ServiceLifecycle
import PortsentryShared
import ControllerCore

let controllerVersion = "3.0.0-dev"

/// The `portsentry-controller` command line; the binary (Sources/ControllerMain) only calls this.
public enum ControllerCommand {
    public static func main() async { await PortsentryController.main() }
}

struct PortsentryController: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portsentry-controller",
        abstract: "Portsentry fleet controller: enrolls sensors and stores their signed reports.",
        version: controllerVersion,
        subcommands: [Init.self, Serve.self, Sensors.self, Events.self, Ban.self, Unban.self, Allow.self, Decisions.self],
        defaultSubcommand: Serve.self
    )
}

/// A failure worth a one-line message and exit status 1.
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "Data directory (settings, database, TLS and signing keys).")
    var directory: String = "/var/lib/portsentry-controller"

    @Option(name: .customLong("postgres-host"), help: "Use PostgreSQL on this host instead of the embedded SQLite database.")
    var postgresHost: String?
    @Option(name: .customLong("postgres-port")) var postgresPort: Int?
    @Option(name: .customLong("postgres-user")) var postgresUser: String?
    @Option(name: .customLong("postgres-database")) var postgresDatabase: String?
    @Option(name: .customLong("postgres-password-file"), help: "File holding the PostgreSQL password.")
    var postgresPasswordFile: String?

    var database: String { directory + "/controller.db" }
    var tlsKey: String { directory + "/tls.key" }
    var tlsCert: String { directory + "/tls.crt" }
    var signingKey: String { directory + "/signing.key" }
    var configFile: String { directory + "/controller.conf" }
    var operatorTokenFile: String { directory + "/operator.token" }

    /// Run as root, the files that say what the controller trusts are refused unless only
    /// root can write them (`StrictModes`, like sshd's).
    func requireTrusted(_ path: String, _ what: String) throws {
        do { try StrictModes.check(path, what: what) } catch { throw Failure(error.description) }
    }

    /// `controller.conf` with the command-line options on top.
    func config() throws -> ControllerConfig {
        try requireTrusted(configFile, "controller settings")
        var c: ControllerConfig
        do { c = try ControllerConfig.load(configFile) } catch { throw Failure(error.description) }
        if let postgresHost { c.postgresHost = postgresHost }
        if let postgresPort { c.postgresPort = postgresPort }
        if let postgresUser { c.postgresUser = postgresUser }
        if let postgresDatabase { c.postgresDatabase = postgresDatabase }
        if let postgresPasswordFile { c.postgresPasswordFile = postgresPasswordFile }
        return c
    }

    /// SQLite in the data directory, or PostgreSQL when a host is configured (several
    /// controller replicas can then share one database).
    func store() async throws -> any ControllerStore {
        let c = try config()
        if let host = c.postgresHost {
            var password: String? = nil
            if let file = c.postgresPasswordFile {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw Failure("cannot read \(file)") }
                password = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let settings = PostgresStore.Settings(host: host, port: c.postgresPort, user: c.postgresUser, password: password,
                                                  database: c.postgresDatabase, tls: c.postgresTLS, caFile: c.postgresCAFile)
            let deadline = c.postgresConnectTimeout
            let databaseLog = DatabaseLog(base: Logger(label: "portsentry-controller"))
            do {
                // The client retries a refused connection forever; a controller that cannot reach
                // its database within the deadline says so and exits instead of hanging.
                return try await withThrowingTaskGroup(of: (any ControllerStore)?.self) { group in
                    group.addTask { try await PostgresStore(settings, logger: databaseLog.logger) }
                    group.addTask {
                        try await Task.sleep(for: .seconds(deadline))
                        return nil
                    }
                    defer { group.cancelAll() }
                    guard let first = try await group.next(), let store = first else {
                        throw Failure("PostgreSQL at \(host):\(c.postgresPort)/\(c.postgresDatabase) did not answer within \(deadline) s (POSTGRES_CONNECT_TIMEOUT); last error: \(databaseLog.lastError ?? "none reported"). Check that it runs and that this host may connect")
                    }
                    return store
                }
            } catch let failure as Failure {
                throw failure
            } catch {
                throw Failure("PostgreSQL at \(host):\(c.postgresPort)/\(c.postgresDatabase): \(String(reflecting: error))")
            }
        }
        guard FileManager.default.fileExists(atPath: database) else {
            throw Failure("\(database) does not exist: run `portsentry-controller init --data \(directory)` first")
        }
        do { return try SQLiteStore(path: database, create: false) } catch let e as SQLiteStore.NotOurs { throw Failure(e.description) }
    }

    func loadSigningKey() throws -> Ed25519.PrivateKey {
        try requireTrusted(signingKey, "block-list signing key")
        guard let text = try? String(contentsOfFile: signingKey, encoding: .utf8),
              let raw = Hex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Failure("\(signingKey): missing or not a hex Ed25519 key (run init)")
        }
        return try Ed25519.PrivateKey(raw: raw)
    }

    func operatorToken() throws -> String? {
        try requireTrusted(operatorTokenFile, "operator API token")
        return (try? String(contentsOfFile: operatorTokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The pin of the served TLS certificate (`sha256//BASE64`).
    func tlsPin() throws -> String {
        do { return try TLSPin.pin(certificateFile: tlsCert) } catch { throw Failure(error.description) }
    }

    /// The decision engine as the CLI uses it: same checks as the service.
    func engine() async throws -> (any ControllerStore, DecisionEngine) {
        let store = try await store()
        let policy = try config().policy
        let protected = ProtectedRegistry(configured: policy.protected, sessionGrace: policy.sessionGrace, peerMemory: policy.peerMemory)
        let now = Int64(Date().timeIntervalSince1970)
        for s in try await store.sensors() where !s.revoked { protected.update(sensor: s.name, status: s.status, now: now) }
        var logger = Logger(label: "portsentry-controller")
        logger.logLevel = .warning
        return (store, DecisionEngine(store: store, policy: policy, protected: protected, logger: logger, published: nil))
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
        // Everything made here is private from its creation: directory, keys, token, settings,
        // never created readable and narrowed afterwards.
        umask(0o077)
        try fm.createDirectory(atPath: data.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard !fm.fileExists(atPath: data.database) else { throw Failure("\(data.directory) is already initialised") }
        func createPrivate(_ path: String, _ text: String) throws {
            do { try PrivateFile.replace(path, contents: Array(text.utf8)) } catch { throw Failure(error.description) }
        }
        let tls: (certificate: String, key: String)
        do { tls = try SelfSignedCertificate.make(names: names) } catch { throw Failure(error.description) }
        try createPrivate(data.tlsKey, tls.key)
        try createPrivate(data.tlsCert, tls.certificate)
        let san = names.joined(separator: ", ")
        let key = try Ed25519.PrivateKey.generate()
        try createPrivate(data.signingKey, Hex.encode(key.raw))
        _ = try SQLiteStore(path: data.database)
        try createPrivate(data.configFile, ControllerConfig.documented + "\n")
        var random = SystemRandomNumberGenerator()
        let token = Hex.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &random) })
        try createPrivate(data.operatorTokenFile, token + "\n")
        print("initialised \(data.directory)")
        print("  settings: \(data.configFile)")
        print("  operator API token: \(data.operatorTokenFile)")
        print("  TLS certificate: \(data.tlsCert) (\(san))")
        print("  TLS public-key pin: \(try data.tlsPin())")
        print("  block-list signing key: \(Hex.encode(try key.publicKey.raw))")
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTPS service (the default command).")
    @OptionGroup var data: DataOptions
    @Option(name: .customLong("listen"), help: "Address to listen on (LISTEN).") var host: String?
    @Option(name: .customLong("port"), help: "TCP port (PORT).") var port: Int?

    func run() async throws {
        let logger = { () -> Logger in
            var l = Logger(label: "portsentry-controller")
            l.logLevel = .info
            return l
        }()
        let config = try data.config()
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
        let token = try data.operatorToken()
        var fleet = try await FleetServices.make(store: store, signing: signing, policy: config.policy, operatorToken: token,
                                                 logger: logger)
        fleet.tlsPin = try data.tlsPin()
        let api = ControllerAPI(store: store, metrics: IngestMetrics(registry: fleet.metrics.registry), signingKey: try signing.publicKey, fleet: fleet, logger: logger,
                                clock: { Int64(Date().timeIntervalSince1970 * 1000) })
        let address = host ?? config.listen, tcpPort = port ?? config.port
        let budget = ConnectionLimits.connectionBudget(logger: logger)
        let app = Application(router: api.router(),
                              server: try .tls(.http1(configuration: .init(idleTimeout: .seconds(ConnectionLimits.idleSeconds))),
                                               tlsConfiguration: tls),
                              configuration: .init(address: .hostname(address, port: tcpPort), backlog: 1024,
                                                   availableConnectionsDelegate: .maximum(budget, logger: logger)),
                              onServerRunning: { channel in
                                  logger.notice("portsentry-controller \(controllerVersion) listening on \(channel.localAddress?.description ?? "?")")
                              },
                              logger: logger)
        if token == nil { logger.warning("No \(data.operatorTokenFile): the operator API is disabled") }
        let retention = RetentionService(store: store, events: config.eventRetention, changes: config.changeRetention,
                                         decisions: config.decisionRetention, metrics: fleet.metrics, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: app), .init(service: FleetFollower(fleet: fleet)),
                                                                 .init(service: retention)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
