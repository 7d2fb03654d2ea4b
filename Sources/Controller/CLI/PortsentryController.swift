import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import ServiceLifecycle
import PortsentryShared

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
        // Everything made here is private from its creation: directory, keys, token, settings
        // (and what openssl writes), never created readable and narrowed afterwards.
        umask(0o077)
        try fm.createDirectory(atPath: data.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard !fm.fileExists(atPath: data.database) else { throw Failure("\(data.directory) is already initialised") }
        func createPrivate(_ path: String, _ text: String) throws {
            do { try PrivateFile.replace(path, contents: Array(text.utf8)) } catch { throw Failure(error.description) }
        }
        // openssl opens -keyout with O_TRUNC: an empty file made 0600 here keeps that mode.
        try createPrivate(data.tlsKey, "")
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
        let api = ControllerAPI(store: store, metrics: IngestMetrics(), signingKey: try signing.publicKey, fleet: fleet, logger: logger,
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

struct Sensors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Enroll, list and revoke sensors.",
                                                    subcommands: [Add.self, List.self, Revoke.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a one-time enrollment token for a sensor.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The sensor's name (letters, digits, . _ -).") var name: String
        @Option(name: .customLong("valid-for"), help: "Seconds the token stays valid.") var seconds = 86_400
        @Flag(name: .customLong("replace"),
              help: "NAME exists (enrolled or revoked): let this token replace its key, and reinstate it if revoked.")
        var replace = false

        func run() async throws {
            guard !name.isEmpty, name.count <= 64,
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
                throw ValidationError("a sensor name is 1-64 letters, digits, '.', '_' or '-'")
            }
            let store = try await data.store()
            // Enrolling an existing name would silently swap its key (whoever holds the token
            // becomes that sensor) and lift a revocation: only on explicit request.
            if !replace, let existing = try await store.sensor(name) {
                let state = existing.revoked ? "revoked" : "enrolled"
                throw Failure("a sensor named \(name) already exists (\(state)); a new enrollment would replace its key"
                              + (existing.revoked ? " and reinstate it" : "") + ": pass --replace to allow that")
            }
            var random = SystemRandomNumberGenerator()
            let token = Hex.encode((0..<24).map { _ in UInt8.random(in: .min ... .max, using: &random) })
            try await store.addEnrollment(tokenHash: Data(SHA256.digest(Array(token.utf8))), sensor: name,
                                          expires: Int64(Date().timeIntervalSince1970) + Int64(seconds), replace: replace)
            print(token)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enrolled sensors.")
        @OptionGroup var data: DataOptions
        @Flag(name: .customLong("json")) var json = false

        func run() async throws {
            let now = Int64(Date().timeIntervalSince1970)
            let store = try await data.store()
            let sensors = try await store.sensors()
            if json {
                let revision = try await store.currentRevision().revision
                let list = sensors.map { ControllerAPI.sensorObject($0, now: now, revision: revision) }
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
        if let since, Bounds.duration(since) == nil { throw ValidationError("--since: \(Bounds.durationError)") }
        let from = since.map { (Int64(Date().timeIntervalSince1970) - $0) * 1000 } ?? 0
        guard (0...1_000_000_000).contains(limit) else { throw ValidationError("--limit must be 0 to 1000000000") }
        let events = try await data.store().events(since: from, limit: limit)
        for e in events {
            if json {
                print(String(decoding: try JSONSerialization.data(withJSONObject: ControllerAPI.eventObject(e), options: [.sortedKeys]),
                             as: UTF8.self))
            } else {
                print("\(e.sensor)\t\(e.source) -> \(e.destination) \(e.proto)/\(e.port)\t\(e.type)")
            }
        }
    }
}

/// Parses an address or prefix argument with a clear error.
func parseScope(_ text: String) throws -> IPPrefix {
    do { return try IPPrefix(parsing: text) } catch { throw ValidationError("\(text): \(error.description)") }
}

struct Ban: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Block an address or prefix on every sensor.")
    @OptionGroup var data: DataOptions
    @Argument(help: "Address or prefix (192.0.2.7, 198.51.100.0/24, 2001:db8::/64).") var scope: String
    @Option(name: .customLong("duration"), help: "Seconds (0: until unbanned). Default: the policy's, with escalation.")
    var duration: Int64?
    @Option(name: .customLong("reason")) var reason = "manual ban"

    func run() async throws {
        let prefix = try parseScope(scope)
        if let duration, Bounds.duration(duration) == nil { throw ValidationError("--duration: \(Bounds.durationError)") }
        let (_, engine) = try await data.engine()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        switch try await engine.decide(scope: prefix, origin: .manual, reason: reason, duration: duration, nowMillis: now) {
        case .decided(let d, let revision):
            print("banned \(prefix) \(d.expires == 0 ? "until unbanned" : "until \(d.expires) (\(d.expires - now / 1000) s)") [decision \(d.id ?? 0), revision \(revision)]")
            for claim in engine.protected.claims(overlapping: prefix, now: now / 1000) {
                print("note: overlaps \(ProtectedRegistry.describe(claim)); that sensor will not enforce it on itself")
            }
        case .alreadyCovered(let d): print("\(prefix) is already covered by decision \(d.id ?? 0) on \(d.scope)")
        case .protected(let why), .allowlisted(let why), .knownPeer(let why): throw Failure("refused: \(why)")
        }
    }
}

struct Unban: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lift every decision overlapping an address or prefix.")
    @OptionGroup var data: DataOptions
    @Argument var scope: String

    func run() async throws {
        let prefix = try parseScope(scope)
        let (_, engine) = try await data.engine()
        let n = try await engine.unban(scope: prefix, nowMillis: Int64(Date().timeIntervalSince1970 * 1000))
        print(n == 0 ? "no active decision overlaps \(prefix)" : "lifted \(n) decision(s) overlapping \(prefix)")
    }
}

struct Allow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Allowlist an address or prefix: never blocked fleet-wide; decisions on it are lifted at once.")
    @OptionGroup var data: DataOptions
    @Argument var scope: String
    @Option(name: .customLong("duration"), help: "Seconds (0: until removed).") var duration: Int64 = 0
    @Option(name: .customLong("reason")) var reason = "allowlisted by an operator"
    @Flag(name: .customLong("remove"), help: "Remove the allowlist entry instead.") var remove = false

    func run() async throws {
        let prefix = try parseScope(scope)
        let (store, engine) = try await data.engine()
        if remove {
            guard try await store.removeAllow(scope: prefix.description) else { throw Failure("\(prefix) is not allowlisted") }
            print("removed \(prefix) from the allowlist")
            return
        }
        guard Bounds.duration(duration) != nil else { throw ValidationError("--duration: \(Bounds.durationError)") }
        let n = try await engine.allow(scope: prefix, seconds: duration, reason: reason, nowMillis: Int64(Date().timeIntervalSince1970 * 1000))
        print("allowlisted \(prefix)\(n > 0 ? "; lifted \(n) decision(s)" : "")")
    }
}

struct Decisions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fleet-wide decisions.", subcommands: [List.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decisions in force (--all: the newest 1000, any state).")
        @OptionGroup var data: DataOptions
        @Flag(name: .customLong("all")) var all = false
        @Flag(name: .customLong("json")) var json = false

        func run() async throws {
            let store = try await data.store()
            let now = Int64(Date().timeIntervalSince1970)
            let list = all ? try await store.recentDecisions(limit: 1000) : try await store.activeDecisions(now: now)
            for d in list {
                if json {
                    let out = try JSONSerialization.data(withJSONObject: ControllerAPI.decisionObject(d), options: [.sortedKeys])
                    print(String(decoding: out, as: UTF8.self))
                } else {
                    let until = d.expires == 0 ? "until unbanned" : (d.expires > now ? "\(d.expires - now)s left" : "expired")
                    print("\(d.id ?? 0)\t\(d.scope)\t\(d.origin)\t\(d.revoked ? "lifted" : until)\toffence \(d.offense)\t\(d.reason)")
                }
            }
        }
    }
}
