import PortsentryShared
import Testing

/// The one duration syntax both binaries read.
@Suite struct ConfigDurationTests {
    let year: Int64 = 365 * 86_400

    @Test func unitsCaseAndBlanks() throws {
        for (text, seconds) in [("300", Int64(300)), ("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604_800),
                                ("2w", 1_209_600), (" 10M ", 600), ("0", 0)] {
            #expect(try ConfigDuration.seconds(text, max: 10 * year) == seconds, "\(text)")
        }
    }

    /// A typo is an error, never a different number: no unit letter is dropped, no digits
    /// overflow, nothing beyond the bound.
    @Test func malformedHugeAndUnknownAreRefused() {
        for text in ["", "s", "1y", "5x", "-5", "1.5h", "10 m", "99999999999999999999999d", "9223372036854775807w",
                     "999999999999999999d", "11y", "3651d"] {
            #expect(throws: ConfigDuration.Problem.self, "\(text)") { try ConfigDuration.seconds(text, max: 10 * year) }
        }
    }
}
