/// Durations in config values: `300` (seconds), `90s`, `15m`, `2h`, `7d`.
enum DurationParser {
    static func seconds(_ text: String) throws(ConfigProblem) -> Int64 {
        let t = text.trimmingWhitespace().lowercased()
        guard let last = t.last else { throw ConfigProblem("empty duration") }
        var number = Substring(t)
        var unit: Int64 = 1
        switch last {
        case "s": unit = 1
        case "m": unit = 60
        case "h": unit = 3600
        case "d": unit = 86_400
        case "w": unit = 604_800
        case "0"..."9": break
        default: throw ConfigProblem("'\(text)': unknown unit '\(last)' (use s, m, h, d or w)")
        }
        if !last.isNumber { number = number.dropLast() }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int64(number),
              n <= 10 * 365 * 86_400 / unit else {
            throw ConfigProblem("'\(text)' is not a duration (e.g. 300, 90s, 15m, 2h, 7d)")
        }
        return n * unit
    }
}
