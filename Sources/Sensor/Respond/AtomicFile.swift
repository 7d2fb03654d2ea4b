import Foundation
import PortsentryShared
#if canImport(Glibc)
import Glibc
#endif

/// Whole-file replacement that survives a crash at any point. The new content is written to
/// a fresh file created 0600 (never an existing temporary file reused with its old mode or
/// owner), then renamed over the old one.
enum AtomicFile {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func write(_ data: Data, to path: String) throws(Failure) {
        try write([UInt8](data), to: path, mode: 0o600)
    }

    static func write(_ bytes: [UInt8], to path: String, mode: UInt32) throws(Failure) {
        let directory = PathRules.parent(of: path)
        let temporary = path + ".tmp"
        do { try PrivateFile.replace(temporary, contents: bytes, mode: mode) } catch { throw Failure(description: error.description) }
        guard rename(temporary, path) == 0 else {
            let message = errnoText()
            unlink(temporary)
            throw Failure(description: "\(path): cannot write: \(message)")
        }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
