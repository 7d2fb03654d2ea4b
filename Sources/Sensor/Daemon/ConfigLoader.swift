import PortsentryShared

/// Finds and loads the configuration and its ignore file, the same way at start-up,
/// on SIGHUP and in `check-config`. Run as root, each file that drives what the sensor does
/// as root (the config, the ignore file, the KILL_ROUTE / KILL_RUN_CMD program) is refused
/// unless only root can write it (`StrictModes`).
enum ConfigLoader {
    enum Source: Equatable {
        case file(String)
        case builtIn
    }

    /// An explicit path must exist (a relative one is taken from the directory portsentry
    /// was started in, and kept absolute for SIGHUP); without one, /etc/portsentry/portsentry.conf is used
    /// if present, else the built-in default.
    static func resolve(explicit: String?) -> Source {
        if let explicit { return .file(StartDirectory.resolve(explicit)) }
        return access(DefaultConfig.path, F_OK) == 0 ? .file(DefaultConfig.path) : .builtIn
    }

    static func load(_ source: Source) throws(ConfigError) -> SensorConfig {
        switch source {
        case .file(let path): return try parse(path)
        case .builtIn: return DefaultConfig.load()
        }
    }

    static func load(path: String) throws(ConfigError) -> SensorConfig {
        path == builtInName ? DefaultConfig.load() : try parse(path)
    }

    private static func parse(_ path: String) throws(ConfigError) -> SensorConfig {
        try requireTrusted(path, "config file")
        let config = try ConfigParser.parse(file: path)
        try PathRules.check(config, file: path)
        for (key, command) in [("KILL_ROUTE", config.killRoute), ("KILL_RUN_CMD", config.killRunCmd)] {
            // The program is the command's first word; a bare name is found on root's PATH.
            guard let program = command?.split(whereSeparator: \.isWhitespace).first, program.hasPrefix("/") else { continue }
            try requireTrusted(String(program), "\(key) program in \(path)")
        }
        return config
    }

    /// The StrictModes check as a config error naming the file and what is wrong with it.
    static func requireTrusted(_ path: String, _ what: String, enforce: Bool = StrictModes.applies) throws(ConfigError) {
        if let problem = StrictModes.problem(path, enforce: enforce) {
            throw ConfigError(file: path, line: 0, message: "refused as \(what): \(problem); \(StrictModes.requirement)")
        }
    }

    static let builtInName = "<built-in default>"

    static func ignoreList(for config: SensorConfig) throws(ConfigError) -> [IPPrefix] {
        guard let path = config.ignoreFile else { return [] }
        try requireTrusted(path, "ignore file")
        return try IgnoreFile.parse(file: path)
    }
}

#if canImport(Glibc)
import Glibc
#endif
