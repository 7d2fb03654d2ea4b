import ArgumentParser
import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
import SensorCore
#endif

let sensorVersion = "3.0.0-dev"

/// The `portsentry` command line; the binary (Sources/SensorMain) only calls this.
public enum SensorCommand {
    public static func main() { Portsentry.main() }
}

struct Portsentry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portsentry",
        abstract: "Port-scan detector and responder (Portsentry-compatible sensor).",
        discussion: """
            Without a subcommand the sensor runs in the foreground. It reads \(DefaultConfig.path) \
            (Portsentry 2.x or 1.2 syntax), or a built-in log-only default when that file does not exist.
            """,
        subcommands: [Run.self, Replay.self, CheckConfig.self, Blocks.self, Status.self, Enroll.self],
        defaultSubcommand: Run.self
    )
}

/// A failure that is not a usage mistake (bad config, unreadable file): printed as
/// `Error: ...` without the usage banner, exit status 1.
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Options shared by the commands that read a configuration.
struct ConfigOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("configfile"), .customLong("config")],
            help: "Config file (default: \(DefaultConfig.path), or the built-in default if absent).")
    var configFile: String?

    func load() throws -> (source: ConfigLoader.Source, config: SensorConfig, ignore: [IPPrefix]) {
        let source = ConfigLoader.resolve(explicit: configFile)
        do {
            let config = try ConfigLoader.load(source)
            return (source, config, try ConfigLoader.ignoreList(for: config))
        } catch {
            throw Failure(error.description)
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the sensor (the default command).")

    @OptionGroup var config: ConfigOptions

    @Flag(name: .customLong("stealth"), help: "Stealth mode: libpcap, tripwires are TCP_PORTS/UDP_PORTS (default).")
    var stealth = false
    @Flag(name: .customLong("connect"), help: "Connect mode: bind the ports; only completed handshakes count.")
    var connect = false
    @Flag(name: .customLong("advanced"), help: "Advanced mode (1.2 -atcp/-audp): every port below ADVANCED_PORTS_*.")
    var advanced = false

    @Flag(name: .customLong("tcp", withSingleDash: true), help: "1.2: connect mode, TCP only.") var legacyTCP = false
    @Flag(name: .customLong("udp", withSingleDash: true), help: "1.2: connect mode, UDP only.") var legacyUDP = false
    @Flag(name: .customLong("stcp", withSingleDash: true), help: "1.2: stealth mode, TCP only.") var legacySTCP = false
    @Flag(name: .customLong("sudp", withSingleDash: true), help: "1.2: stealth mode, UDP only.") var legacySUDP = false
    @Flag(name: .customLong("atcp", withSingleDash: true), help: "1.2: advanced mode, TCP only.") var legacyATCP = false
    @Flag(name: .customLong("audp", withSingleDash: true), help: "1.2: advanced mode, UDP only.") var legacyAUDP = false

    @Option(name: [.customShort("i"), .customLong("interface")],
            help: "Interface to capture on (repeatable); ALL, ALL_NLO (default: every interface with an address but loopback).")
    var interfaces: [String] = []
    @Option(name: [.customShort("x"), .customLong("exclude-interface")], help: "Interface never to capture on (repeatable).")
    var excluded: [String] = []
    @Option(name: [.customShort("l"), .customLong("logoutput")], help: "stdout or syslog (repeatable; default stdout).")
    var logOutputs: [String] = []
    @Option(name: .customLong("log-format"), help: "Scan lines on stdout/syslog: text (Portsentry 2.x) or json.")
    var logFormat: String = "text"
    @Option(name: [.customShort("m"), .customLong("method")], help: "pcap (default) or raw; both use libpcap here.")
    var method: String = "pcap"
    @Flag(name: [.customShort("L"), .customLong("disable-local-check")],
          help: "Accepted for compatibility; the host's own addresses are always ignored.")
    var disableLocalCheck = false
    @Flag(name: [.customShort("S"), .customLong("disable-service-check")],
          help: "Watch ports even when a local service listens on them.")
    var disableServiceCheck = false
    @Flag(name: .customLong("dry-run"), help: "Decide and log every block, change nothing (same as DRY_RUN=\"1\").")
    var dryRun = false
    @Flag(name: [.customShort("D"), .customLong("daemon")], help: "Detach and log to syslog (systemd users: leave off).")
    var daemonize = false
    @Flag(name: [.customShort("d"), .customLong("debug")], help: "Debug output.") var debug = false
    @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Verbose output.") var verbose = false
    @Flag(name: [.customShort("V"), .customLong("version")], help: "Print the version and exit.") var version = false

    func validate() throws {
        let modes = [stealth, connect, advanced].filter { $0 }.count
        let legacy = [legacyTCP, legacyUDP, legacySTCP, legacySUDP, legacyATCP, legacyAUDP].filter { $0 }.count
        if modes > 1 || (modes > 0 && legacy > 0) { throw ValidationError("Only one mode can be specified") }
        if legacy > 0, Set([legacyTCP || legacyUDP, legacySTCP || legacySUDP, legacyATCP || legacyAUDP]).count > 1,
           [legacyTCP || legacyUDP, legacySTCP || legacySUDP, legacyATCP || legacyAUDP].filter({ $0 }).count > 1 {
            throw ValidationError("1.2 modes of different kinds (-tcp/-udp, -stcp/-sudp, -atcp/-audp) cannot be combined")
        }
        for o in logOutputs where o != "stdout" && o != "syslog" {
            throw ValidationError("--logoutput takes stdout or syslog, not '\(o)'")
        }
        guard EventReporter.ConsoleFormat(rawValue: logFormat) != nil else {
            throw ValidationError("--log-format takes text or json, not '\(logFormat)'")
        }
        guard method == "pcap" || method == "raw" else { throw ValidationError("--method takes pcap or raw, not '\(method)'") }
        let special = interfaces.filter { $0 == "ALL" || $0 == "ALL_NLO" }
        if !special.isEmpty, interfaces.count > 1 {
            throw ValidationError("ALL and ALL_NLO cannot be combined with other interfaces")
        }
    }

    func runOptions() -> RunOptions {
        var o = RunOptions()
        if connect || legacyTCP || legacyUDP { o.mode = .connect }
        if advanced || legacyATCP || legacyAUDP { o.mode = .advanced }
        if legacyTCP || legacySTCP || legacyATCP || legacyUDP || legacySUDP || legacyAUDP {
            o.watchTCP = legacyTCP || legacySTCP || legacyATCP
            o.watchUDP = legacyUDP || legacySUDP || legacyAUDP
            o.legacy12 = true
        }
        switch interfaces.first {
        case nil, "ALL_NLO": o.interfaces.base = .allButLoopback
        case "ALL": o.interfaces.base = .all
        default: o.interfaces.base = .named(interfaces)
        }
        o.interfaces.excluded = Set(excluded)
        o.serviceCheck = !disableServiceCheck
        o.consoleFormat = EventReporter.ConsoleFormat(rawValue: logFormat) ?? .text
        return o
    }

    func run() throws {
        if version {
            print("Portsentry \(sensorVersion)")
            return
        }
        var destinations = LogOutput.Destinations(stdout: logOutputs.isEmpty || logOutputs.contains("stdout"),
                                                  syslog: logOutputs.contains("syslog"))
        if daemonize { destinations = .init(stdout: false, syslog: true) }
        LogOutput.bootstrap(destinations, level: debug ? .debug : verbose ? .info : .notice)
        let logger = Diagnostics.logger
        guard geteuid() == 0 else { throw Failure("You need to be root to run this.") }

        var (source, cfg, ignore) = try config.load()
        if dryRun { cfg.dryRun = true }
        let options = runOptions()
        let path: String
        switch source {
        case .file(let p): path = p
        case .builtIn:
            path = ConfigLoader.builtInName
            logger.notice("No \(DefaultConfig.path): using the built-in default (log only, stdout)")
        }
        if disableLocalCheck { logger.notice("-L: the host's own addresses are still never acted on") }
        if method == "raw" { logger.notice("-m raw: capturing with libpcap (same packets, same kernel filter)") }
        if daemonize, daemon(0, 0) != 0 { throw Failure("cannot detach: \(errnoText())") }

        logger.notice("Portsentry \(sensorVersion) starting: \(options.mode.rawValue) mode, config \(path)")
        let daemon: SensorDaemon
        do {
            daemon = try SensorDaemon(configPath: path, config: cfg, ignore: AddressSet(ignore), options: options)
        } catch {
            throw Failure(error.description)
        }
        let status = daemon.run()
        if status != 0 { throw ExitCode(status) }
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the detection pipeline over a pcap file and print the events.",
        discussion: "Packet timestamps drive all windows, so results are deterministic.")

    @Argument(help: "A pcap or pcapng file.") var file: String
    @OptionGroup var config: ConfigOptions
    @Option(name: .customLong("host"), help: "The protected host's address (repeatable; default: every destination).")
    var hosts: [String] = []
    @Flag(name: .customLong("advanced"), help: "Advanced mode tripwires (every port below ADVANCED_PORTS_*).")
    var advanced = false
    @Option(name: .customLong("log-format"), help: "text (HISTORY_FILE lines) or json.") var logFormat: String = "text"
    @Flag(name: .customLong("quiet"), help: "Print only the summary (for benchmarks).") var quiet = false

    func run() throws {
        // Events on stdout; everything else (dry-run decisions, summaries) on stderr.
        LogOutput.bootstrap(.init(stdout: false, syslog: false, stderr: true), level: .notice)
        let (_, cfg, ignore) = try config.load()
        var options = RunOptions()
        if advanced { options.mode = .advanced }
        guard let format = EventReporter.ConsoleFormat(rawValue: logFormat) else {
            throw ValidationError("--log-format takes text or json")
        }
        options.consoleFormat = format
        var addresses: [IPAddress] = []
        for h in hosts {
            guard let a = IPAddress(h) else { throw ValidationError("--host: '\(h)' is not an IP address") }
            addresses.append(a)
        }
        let runner = ReplayRunner(path: file, config: cfg, ignore: AddressSet(ignore), hosts: addresses,
                                  options: options, printEvents: !quiet)
        let s: ReplayRunner.Summary
        do { s = try runner.run() } catch { throw Failure(error.description) }
        let skipped = ParseSkip.allCases.map { "\($0.name)=\(s.skipped[$0, default: 0])" }.joined(separator: " ")
        let pps = s.seconds > 0 ? Int(Double(s.packets) / s.seconds) : 0
        Console.write("""
            replay: \(s.packets) packets in \(String(format3(s.seconds)))s (\(pps) packets/s), \(s.events) events; \
            skipped: \(skipped); probes=\(s.counters.probes) ignored=\(s.counters.ignored) \
            closed-port-scans=\(s.counters.closedPortScans) backscatter=\(s.counters.backscatter); \
            table \(s.tableOccupied)/\(s.tableCapacity), evictions \(s.evictions); max RSS \(s.maxRSSKiB) KiB
            """, toStderr: true)
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the config and ignore file, print what would be watched.")

    @OptionGroup var config: ConfigOptions
    @Flag(name: .customLong("advanced"), help: "Show advanced-mode tripwires.") var advanced = false

    func run() throws {
        let (source, cfg, ignore) = try config.load()
        var options = RunOptions()
        if advanced { options.mode = .advanced }
        let s = SettingsBuilder.detection(cfg, options)
        let name: String
        switch source {
        case .file(let p): name = p
        case .builtIn: name = ConfigLoader.builtInName
        }
        print("\(name): OK")
        print("  TCP tripwires (\(s.tripwireTCP.count)): \(s.tripwireTCP)")
        print("  UDP tripwires (\(s.tripwireUDP.count)): \(s.tripwireUDP)")
        print("  SCAN_TRIGGER \(cfg.scanTrigger) within \(cfg.scanTriggerWindow)s; closed-port detection "
              + (s.closedPortDetection ? "on (threshold \(s.closedPortThreshold), max gap \(cfg.closedPortMaxGap)s)" : "off"))
        print("  BLOCK_TCP \(cfg.blockTCP.rawValue), BLOCK_UDP \(cfg.blockUDP.rawValue)")
        print("  history: \(cfg.historyFile ?? "none") (format \(cfg.historyFormat.rawValue)); json: \(cfg.jsonLogFile ?? "none")")
        print("  ignore file: \(cfg.ignoreFile ?? "none") (\(ignore.count) entries)")
        // The enrollment files get the same ownership checks as at start.
        var quiet = Logger(label: "portsentry")
        quiet.logLevel = .error
        do {
            if let (e, _) = try Enrollment.load(stateDir: cfg.stateDir, logger: quiet) {
                print("  controller: \(e.url) as \(e.sensor), TLS key " + (e.pin.map { "pinned (\($0))" } ?? "NOT pinned"))
            }
        } catch {
            throw Failure("controller enrollment in \(cfg.stateDir): \(error)")
        }
        for w in SettingsBuilder.warnings(s, cfg, ephemeral: LocalSockets.ephemeralRange() ?? 32768...60999) {
            print("  warning: \(w)")
        }
    }
}

private func format3(_ v: Double) -> String {
    let scaled = Int((v * 1000).rounded())
    let frac = scaled % 1000
    return "\(scaled / 1000)." + (frac < 10 ? "00" : frac < 100 ? "0" : "") + "\(frac)"
}
