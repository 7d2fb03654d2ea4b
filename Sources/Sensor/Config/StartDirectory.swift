#if canImport(Glibc)
import Glibc
#endif

/// The directory the sensor was started in. Relative paths in the config
/// (`HISTORY_FILE="./portsentry.history"`, as Portsentry's own tests write them) and a
/// relative `-c portsentry.conf` are resolved against it when the config is read, as
/// Portsentry resolves them against its working directory. It is captured once, before
/// anything can change directory (`-D` detaches with daemon(0,0), which moves to /), so a
/// SIGHUP reload resolves them the same way.
enum StartDirectory {
    static let path: String = {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let ok = buffer.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { getcwd($0, b.count) != nil }
        }
        guard ok, let end = buffer.firstIndex(of: 0) else { return "/" }
        return String(decoding: buffer[..<end], as: UTF8.self)
    }()

    /// `relative` as an absolute path: `./a/b` and `a/b` both become `<start>/a/b`.
    static func resolve(_ relative: String) -> String {
        if relative.hasPrefix("/") { return relative }
        var rest = Substring(relative)
        while rest.hasPrefix("./") { rest = rest.dropFirst(2).drop { $0 == "/" } }
        if rest.isEmpty || rest == "." { return path }
        return (path == "/" ? "" : path) + "/" + rest
    }
}
