import Foundation
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

/// Integers in wire messages are taken exactly or not at all.
@Suite struct WireIntegerTests {
    struct Holder: Decodable { var v: Int64 }

    func parsed(_ text: String) -> Int64? {
        try? WireJSON.decode(Holder.self, from: Array("{\"v\":\(text)}".utf8)).v
    }

    @Test func exactOrNothing() {
        #expect(parsed("9007199254740993") == 9_007_199_254_740_993)   // 2^53 + 1
        #expect(parsed("9223372036854775807") == Int64.max)
        #expect(parsed("-5") == -5)
        #expect(parsed("9223372036854775808") == nil)
        #expect(parsed("1.5") == nil)
        #expect(parsed("1e30") == nil)
        #expect(parsed("\"7\"") == nil)
        #expect(parsed("null") == nil)
    }

    @Test func refusalsNameTheField() {
        struct Outer: Decodable { var inner: [Holder] }
        #expect(throws: WireJSON.Malformed("inner.[1].v has the wrong type")) {
            try WireJSON.decode(Outer.self, from: Array(#"{"inner":[{"v":1},{"v":"x"}]}"#.utf8))
        }
        #expect(throws: WireJSON.Malformed("inner missing")) { try WireJSON.decode(Outer.self, from: Array("{}".utf8)) }
        #expect(throws: WireJSON.Malformed("not JSON")) { try WireJSON.decode(Outer.self, from: Array("{".utf8)) }
    }
}
