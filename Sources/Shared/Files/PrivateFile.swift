#if canImport(Glibc)
import Glibc
#endif

/// Secrets (private keys, tokens) are born private: the file is created with mode 0600 by
/// the open call itself (O_CREAT|O_EXCL, never following a link), so there is no moment at
/// which it exists with wider permissions, and no existing file's mode or owner is reused.
public enum PrivateFile {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ message: String) { description = message }
    }

    /// Creates `path` (which must not exist) with mode 0600, writes `contents` and syncs it.
    public static func create(_ path: String, contents: [UInt8], mode: UInt32 = 0o600) throws(Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw Failure("\(path): cannot create: \(String(cString: strerror(errno)))") }
        // Exactly `mode`, whatever the umask (it can only have narrowed it).
        fchmod(fd, mode_t(mode))
        var ok = contents.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { if n < 0, errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        let message = String(cString: strerror(errno))
        close(fd)
        guard ok else {
            unlink(path)
            throw Failure("\(path): cannot write: \(message)")
        }
    }

    /// Replaces `path` with a new private file: removes what is there first (the caller
    /// owns the directory), then creates it as `create` does.
    public static func replace(_ path: String, contents: [UInt8], mode: UInt32 = 0o600) throws(Failure) {
        if unlink(path) != 0, errno != ENOENT {
            throw Failure("\(path): cannot remove the old file: \(String(cString: strerror(errno)))")
        }
        try create(path, contents: contents, mode: mode)
    }
}
