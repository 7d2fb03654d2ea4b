#if canImport(Glibc)
import Glibc
#endif

/// Reads whole small text files (config, ignore list, /proc) with a size bound and an
/// error that says what went wrong, without Foundation.
enum TextFile {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func read(_ path: String, limit: Int) throws(Failure) -> String {
        let bytes = try readBytes(path, limit: limit)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Failure(description: "is not UTF-8 text")
        }
        return text
    }

    /// The whole file, refused if it is not a regular file or is larger than `limit`.
    static func readBytes(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        // Non-blocking open: opening a FIFO for reading would otherwise wait for a writer forever.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw Failure(description: "cannot open: \(errnoText())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure(description: "cannot stat: \(errnoText())") }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw Failure(description: "is a directory, expected a file")
        default: throw Failure(description: "is not a regular file (a FIFO, socket or device), expected a file")
        }
        // Back to blocking reads for a regular file.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "read failed: \(errnoText())")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > limit { throw Failure(description: "larger than the \(limit >> 10) KiB limit") }
        }
        return bytes
    }
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}
