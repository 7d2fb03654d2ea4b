import Foundation

/// The one JSON codec of every message either binary sends or reads: keys sorted, no
/// insignificant white space, slashes unescaped. Signatures cover the bytes as sent, so the
/// receiver never re-encodes what it verifies; the sorted keys only make bytes reproducible
/// where a file's checksum is recomputed (`FleetSubscription`'s state file).
///
/// Decoding is strict where `JSONSerialization` was loose: an integer field given 1.9, 1e300
/// or a number beyond Int64 is refused, not rounded or wrapped.
public enum WireJSON {
    public struct Malformed: Error, Equatable, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// `bytes` as a `T`, or `Malformed` naming the first field that did not fit.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Sequence<UInt8>) throws(Malformed) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch let error as DecodingError {
            throw Malformed(explain(error))
        } catch {
            throw Malformed("not JSON")
        }
    }

    /// `value`'s bytes. Encoding a message type cannot fail (strings, integers, booleans,
    /// arrays and objects only); a failure would be a programming error in that type.
    public static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try encoder.encode(value)) } catch {
            preconditionFailure("a wire message failed to encode: \(error)")
        }
    }

    /// The same, indented for a person (`--json` outputs of the CLIs).
    public static func pretty(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) } catch {
            preconditionFailure("a wire message failed to encode: \(error)")
        }
    }

    private static func explain(_ error: DecodingError) -> String {
        func path(_ c: [any CodingKey]) -> String {
            c.isEmpty ? "the message" : c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let c): return "\(path(c.codingPath + [key])) missing"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "\(path(c.codingPath)) has the wrong type"
        case .dataCorrupted(let c): return c.codingPath.isEmpty ? "not JSON" : "\(path(c.codingPath)) is malformed"
        @unknown default: return "malformed"
        }
    }
}
