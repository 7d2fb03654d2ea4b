/// Durations as both binaries read them (portsentry.conf, controller.conf, command lines):
/// `300` (seconds), `90s`, `15m`, `2h`, `7d`, `2w`, case and surrounding blanks ignored.
/// Any run of digits is checked without overflow, and the result is bounded by `max`.
public enum ConfigDuration {
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    private static let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]

    public static func seconds(_ text: String, max: Int64) throws(Problem) -> Int64 {
        let t = String(text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()).lowercased()
        guard let last = t.last else { throw Problem(description: "empty duration") }
        var digits = Substring(t)
        var unit: Int64 = 1
        if let u = units[last] {
            unit = u
            digits = digits.dropLast()
        } else if !(last.isASCII && last.isNumber) {
            throw Problem(description: "'\(text)': unknown unit '\(last)' (use s, m, h, d or w)")
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int64(digits) else {
            throw Problem(description: "'\(text)' is not a duration (e.g. 300, 90s, 15m, 2h, 7d)")
        }
        let (product, overflow) = n.multipliedReportingOverflow(by: unit)
        guard !overflow, product <= max else {
            throw Problem(description: "'\(text)' is longer than \(max) seconds")
        }
        return product
    }
}
