import PortsentryShared

/// Finds and loads the configuration and its ignore file, the same way at start-up,
/// on SIGHUP and in `check-config`.
enum ConfigLoader {
    enum Source: Equatable {
        case file(String)
        case builtIn
    }

    /// An explicit path must exist; without one, /etc/portsentry/portsentry.conf is used
    /// if present, else the built-in default.
    static func resolve(explicit: String?) -> Source {
        if let explicit { return .file(explicit) }
        return access(DefaultConfig.path, F_OK) == 0 ? .file(DefaultConfig.path) : .builtIn
    }

    static func load(_ source: Source) throws(ConfigError) -> SensorConfig {
        switch source {
        case .file(let path): return try ConfigParser.parse(file: path)
        case .builtIn: return DefaultConfig.load()
        }
    }

    static func load(path: String) throws(ConfigError) -> SensorConfig {
        path == builtInName ? DefaultConfig.load() : try ConfigParser.parse(file: path)
    }

    static let builtInName = "<built-in default>"

    static func ignoreList(for config: SensorConfig) throws(ConfigError) -> [IPPrefix] {
        guard let path = config.ignoreFile else { return [] }
        return try IgnoreFile.parse(file: path)
    }
}

#if canImport(Glibc)
import Glibc
#endif
