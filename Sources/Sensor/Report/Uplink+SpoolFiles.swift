import Foundation
import PortsentryShared

/// The spool's file format: `NNNNNNNNNNNNNNNNNNNN.batch` (the sequence, zero-padded so names
/// sort in order), a one-line JSON header with the event count, then the batch body as it will
/// be signed and sent.
extension Uplink {
    static func spoolFile(events: Int, body: [UInt8]) -> Data {
        Data(WireJSON.encode(SpoolHeader(events: events, v: 2)) + [0x0A] + body)
    }

    /// A spool file's first line: how many events the batch holds, and the format's version.
    struct SpoolHeader: Codable {
        var events: Int
        var v: Int?
    }

    struct Spooled {
        var sequence: UInt64
        var events: Int
        var body: [UInt8]
    }

    static func size(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    static func name(_ sequence: UInt64) -> String {
        let digits = String(sequence)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".batch"
    }

    static func spooled(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".batch") }.sorted()
    }

    /// A spool file, or nil when it is not a readable batch (empty, truncated, garbage, too large).
    /// Files from older versions (signed when spooled) read the same: they are re-signed when sent.
    static func read(_ path: String) -> Spooled? {
        guard size(path) <= maxSpoolFileBytes, let data = FileManager.default.contents(atPath: path),
              let newline = data.firstIndex(of: 0x0A),
              let events = (try? WireJSON.decode(SpoolHeader.self, from: data[..<newline]))?.events, events > 0,
              let sequence = UInt64((path as NSString).lastPathComponent.prefix(20)), sequence > 0,
              newline + 1 < data.endIndex else { return nil }
        return Spooled(sequence: sequence, events: events, body: Array(data[(newline + 1)...]))
    }
}
