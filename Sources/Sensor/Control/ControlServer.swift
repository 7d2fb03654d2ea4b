import CLinux
import Foundation
import PortsentryShared

/// The local control socket: a Unix stream socket only root can reach (directory 0700,
/// socket 0600, peer credentials checked), one JSON request line in, one JSON reply line
/// out. Served from the capture loop: requests are small and answered at once.
final class ControlServer {
    /// A request larger than this is refused: commands are one short line.
    static let maxRequestBytes = 64 << 10
    /// A client that does not read its reply within this time is dropped.
    static let sendTimeoutSeconds = 2

    let path: String
    let fd: Int32

    struct Failure: Error, CustomStringConvertible { let description: String }

    init(path: String) throws(Failure) {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw Failure(description: "\(directory): \(errnoText())")
        }
        var st = stat()
        guard lstat(directory, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == geteuid() else {
            throw Failure(description: "\(directory) is not a directory owned by this user; refusing to put the control socket there")
        }
        // A socket file left by a sensor that died: remove it unless something answers on it.
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw Failure(description: "\(path) exists and is not a socket") }
            if ControlClient.answers(path) {
                throw Failure(description: "another sensor is already running (it answers on \(path))")
            }
            unlink(path)
        }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw Failure(description: "control socket: \(errnoText())") }
        var address = try ControlClient.address(path)
        let old = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard bound == 0, listen(s, 16) == 0 else {
            let message = errnoText()
            close(s)
            throw Failure(description: "\(path): \(message)")
        }
        fd = s
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Accepts one client and answers it with `handle`.
    func serve(_ handle: (ControlRequest) -> ControlReply) {
        let client = accept(fd, nil, nil)
        guard client >= 0 else { return }
        defer { close(client) }
        var timeout = timeval(tv_sec: Self.sendTimeoutSeconds, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) & ~O_NONBLOCK)
        let reply: ControlReply
        var credentials = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        if getsockopt(client, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0 || credentials.uid != 0 {
            reply = .failure("permission denied: the control socket is for root")
        } else if let request = ControlClient.readLine(client, limit: Self.maxRequestBytes) {
            do { reply = handle(try WireJSON.decode(ControlRequest.self, from: request)) } catch {
                reply = .failure("not a control request: \(error.description)")
            }
        } else {
            reply = .failure("no request, or larger than \(Self.maxRequestBytes) bytes")
        }
        ControlClient.writeLine(client, reply)
    }
}

/// `struct ucred` (pid, uid, gid), which glibc only declares under _GNU_SOURCE.
private struct PeerCredentials {
    var pid: Int32 = 0
    var uid: UInt32 = .max
    var gid: UInt32 = .max
}

/// The client side, used by `portsentry blocks` and `portsentry status`.
enum ControlClient {
    static func address(_ path: String) throws(ControlServer.Failure) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw ControlServer.Failure(description: "\(path): socket path too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return address
    }

    /// True when something accepts connections on `path` (a running sensor).
    static func answers(_ path: String) -> Bool {
        guard let fd = try? connect(path) else { return false }
        close(fd)
        return true
    }

    static func connect(_ path: String) throws(ControlServer.Failure) -> Int32 {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw ControlServer.Failure(description: errnoText()) }
        var address = try address(path)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let message = errnoText()
            close(s)
            throw ControlServer.Failure(description: "cannot reach the sensor at \(path): \(message) (is portsentry running?)")
        }
        return s
    }

    /// Sends one request and returns the reply object.
    static func request(_ path: String, _ request: ControlRequest, timeoutSeconds: Int = 30) throws(ControlServer.Failure) -> ControlReply {
        let s = try connect(path)
        defer { close(s) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        writeLine(s, request)
        guard let line = readLine(s, limit: 512 << 20),
              let reply = try? WireJSON.decode(ControlReply.self, from: line) else {
            throw ControlServer.Failure(description: "no valid reply from the sensor at \(path)")
        }
        return reply
    }

    static func readLine(_ fd: Int32, limit: Int) -> Data? {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while data.count <= limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { return data.isEmpty ? nil : data }
            data.append(contentsOf: buffer[0..<n])
            if let newline = data.firstIndex(of: 0x0A) { return data[..<newline] }
        }
        return nil
    }

    static func writeLine(_ fd: Int32, _ message: some Encodable) {
        let data = WireJSON.encode(message) + [0x0A]
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n <= 0 { if n < 0, errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}
