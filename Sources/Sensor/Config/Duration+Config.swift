import PortsentryShared

/// Durations in config values and `blocks add --for`: Shared's syntax, bounded at ten years.
enum DurationParser {
    static let maxSeconds: Int64 = 10 * 365 * 86_400

    static func seconds(_ text: String) throws(ConfigProblem) -> Int64 {
        do { return try ConfigDuration.seconds(text, max: maxSeconds) } catch { throw ConfigProblem(error.description) }
    }
}
