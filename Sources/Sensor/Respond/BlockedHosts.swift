import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
#endif

/// Portsentry's block cache: the hosts this sensor has handed to its KILL_* actions
/// (KILL_HOSTS_DENY, KILL_ROUTE, KILL_RUN_CMD). A host in it is "already blocked", and its
/// actions are not run again. What those actions did (a hosts.deny line, a route) cannot
/// be undone from here, so entries never expire; `portsentry blocks remove` forgets one.
///
/// With BLOCKED_FILE set, the cache is that file, in Portsentry 2.x's format: one record per
/// host, the address family as a 16-bit number in host byte order (2 for IPv4, 10 for IPv6
/// on Linux) followed by the 4 or 16 address bytes. So "already blocked" survives a restart,
/// as it does in Portsentry, and scripts that read the file keep working. Without
/// BLOCKED_FILE the cache lasts as long as the process (Portsentry 2.x would then repeat the
/// actions on every event, which lets one scanner run KILL_RUN_CMD thousands of times).
///
/// A 1.2 configuration (HISTORY_FORMAT "1.2", the default for files with 1.2-only keys)
/// gets 1.2's form instead: text files `BLOCKED_FILE.<mode>` (`.tcp`/`.udp` in connect mode,
/// `.stcp`/`.sudp` stealth, `.atcp`/`.audp` advanced) holding the same lines as the 1.2
/// history (`epoch - date Host: ip/ip Port: N TCP Blocked`). 1.2 empties them at every
/// start; here they are read back, so "already blocked" survives a restart in both forms.
///
/// The native firewall's blocks are not in here: they expire, and live in STATE_DIR.
final class BlockedHosts {
    enum Format: Sendable, Equatable {
        /// Portsentry 2.x: binary records in BLOCKED_FILE itself.
        case binary
        /// Portsentry 1.2: text lines in BLOCKED_FILE.<tcp suffix> and .<udp suffix>.
        case text12(tcp: String, udp: String)
    }

    /// Bound on remembered hosts: a million records is 18 MiB of IPv6 at most.
    static let maxHosts = 1_000_000
    static let recordFamilyBytes = 2
    static var maxFileBytes: Int { maxHosts * (recordFamilyBytes + 16) }

    let path: String?
    let format: Format
    private(set) var hosts: Set<IPAddress> = []
    /// Hosts not remembered because the cache was full, and file writes that failed.
    private(set) var refusedFull: UInt64 = 0
    private(set) var writeFailures: UInt64 = 0
    private let logger: Logger

    /// A cache in memory only: no BLOCKED_FILE, or a replay.
    init(logger: Logger = Diagnostics.logger) {
        path = nil
        format = .binary
        self.logger = logger
    }

    /// Loads BLOCKED_FILE, creating it empty when it does not exist (as Portsentry does).
    /// A damaged tail (a cut-off record, an unknown family) is dropped and the file
    /// rewritten with the records before it, and that is said in the log.
    init(file path: String, format: Format = .binary, logger: Logger = Diagnostics.logger) throws(TextFile.Failure) {
        self.path = path
        self.format = format
        self.logger = logger
        if case .text12(let tcp, let udp) = format {
            for file in [path + "." + tcp, path + "." + udp] { try loadText(file) }
            return
        }
        var st = stat()
        if lstat(path, &st) != 0 {
            try AppendFile.makeDirectories(for: path)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw TextFile.Failure(description: "BLOCKED_FILE \(path): cannot create: \(errnoText())") }
            close(fd)
            return
        }
        let bytes: [UInt8]
        do { bytes = try TextFile.readBytes(path, limit: Self.maxFileBytes) } catch {
            throw TextFile.Failure(description: "BLOCKED_FILE \(path): \(error.description)")
        }
        let (addresses, problem) = Self.decode(bytes)
        hosts = Set(addresses)
        if let problem {
            logger.warning("BLOCKED_FILE \(path): \(problem); the \(addresses.count) records before it are kept and the file is rewritten")
            if let failure = rewrite() { throw TextFile.Failure(description: failure) }
        }
    }

    /// The records in `bytes`, and what is wrong with the rest, if anything.
    static func decode(_ bytes: [UInt8]) -> ([IPAddress], String?) {
        var out: [IPAddress] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= recordFamilyBytes else {
                return (out, "\(bytes.count - offset) stray bytes at offset \(offset)")
            }
            let family = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt16.self) }
            let length: Int
            switch Int32(family) {
            case AF_INET: length = 4
            case AF_INET6: length = 16
            default: return (out, "unknown address family \(family) at offset \(offset)")
            }
            let start = offset + recordFamilyBytes
            guard bytes.count - start >= length else { return (out, "a cut-off record at offset \(offset)") }
            let address = bytes.withUnsafeBytes { raw in
                length == 4 ? IPAddress(ipv4Bytes: raw.baseAddress! + start) : IPAddress(ipv6Bytes: raw.baseAddress! + start)
            }
            out.append(address)
            offset = start + length
        }
        return (out, nil)
    }

    static func encode(_ address: IPAddress) -> [UInt8] {
        var family = UInt16(address.isIPv4 ? AF_INET : AF_INET6)
        var out = withUnsafeBytes(of: &family) { Array($0) }
        out.append(contentsOf: address.isIPv4 ? Array(address.bytes[12..<16]) : address.bytes)
        return out
    }

    /// Reads a 1.2 text file: the address is what follows the last `/` of the `Host:` field.
    /// Lines that do not parse are skipped and counted in the log.
    private func loadText(_ file: String) throws(TextFile.Failure) {
        var st = stat()
        guard lstat(file, &st) == 0 else { return }
        let text: String
        do { text = try TextFile.read(file, limit: Self.maxFileBytes * 4) } catch {
            throw TextFile.Failure(description: "BLOCKED_FILE \(file): \(error.description)")
        }
        var unreadable = 0
        for line in text.split(whereSeparator: \.isNewline) {
            if let address = Self.address12(line), hosts.count < Self.maxHosts { hosts.insert(address) } else { unreadable += 1 }
        }
        if unreadable > 0 { logger.warning("BLOCKED_FILE \(file): \(unreadable) lines are not 1.2 block records; skipped") }
    }

    static func address12(_ line: Substring) -> IPAddress? {
        guard let host = line.firstRange(of: "Host: "), let port = line.firstRange(of: " Port: "),
              host.upperBound <= port.lowerBound else { return nil }
        let field = line[host.upperBound..<port.lowerBound]
        let literal = field.lastIndex(of: "/").map { field[field.index(after: $0)...] } ?? field
        return IPAddress(literal)
    }

    /// The file a host blocked for `proto` is recorded in.
    func file(for proto: TransportProtocol) -> String? {
        guard let path else { return nil }
        switch format {
        case .binary: return path
        case .text12(let tcp, let udp): return path + "." + (proto == .tcp ? tcp : udp)
        }
    }

    func contains(_ address: IPAddress) -> Bool { hosts.contains(address) }

    var count: Int { hosts.count }

    /// Remembers the event's source, appending its record to BLOCKED_FILE. A failure to
    /// write is logged and counted; the host is still remembered for this run.
    func add(_ event: ScanEvent) {
        let address = event.source
        guard !hosts.contains(address) else { return }
        guard hosts.count < Self.maxHosts else {
            refusedFull += 1
            if refusedFull == 1 { logger.error("Block cache full (\(Self.maxHosts) hosts): further hosts are not remembered") }
            return
        }
        hosts.insert(address)
        guard let path = file(for: event.proto) else { return }
        let record: [UInt8]
        switch format {
        case .binary: record = Self.encode(address)
        case .text12: record = Array(((EventFormatter.portsentry12History(event) ?? "") + "\n").utf8)
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o640)
        let written = fd < 0 ? -1 : record.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let message = errnoText()
        if fd >= 0 { close(fd) }
        if written != record.count {
            writeFailures += 1
            logger.error("BLOCKED_FILE \(path): cannot record \(address): \(message)")
        }
    }

    /// Forgets `address` (its KILL_* actions will run again on its next event).
    @discardableResult
    func remove(_ address: IPAddress) -> Bool {
        guard hosts.remove(address) != nil else { return false }
        if let failure = rewrite() { logger.error("\(failure)") }
        return true
    }

    func removeAll() -> Int {
        let n = hosts.count
        hosts.removeAll()
        if let failure = rewrite() { logger.error("\(failure)") }
        return n
    }

    /// Replaces BLOCKED_FILE with the hosts remembered now, atomically (1.2 files keep the
    /// lines of the hosts still remembered).
    private func rewrite() -> String? {
        guard let path else { return nil }
        if case .text12(let tcp, let udp) = format {
            for file in [path + "." + tcp, path + "." + udp] {
                guard let text = try? TextFile.read(file, limit: Self.maxFileBytes * 4) else { continue }
                let kept = text.split(whereSeparator: \.isNewline).filter { Self.address12($0).map(hosts.contains) ?? false }
                do { try AtomicFile.write(Array(kept.map { $0 + "\n" }.joined().utf8), to: file, mode: 0o640) } catch {
                    writeFailures += 1
                    return "BLOCKED_FILE \(file): cannot rewrite: \(error)"
                }
            }
            return nil
        }
        var bytes: [UInt8] = []
        for address in hosts.sorted() { bytes += Self.encode(address) }
        do {
            try AtomicFile.write(bytes, to: path, mode: 0o640)
            return nil
        } catch {
            writeFailures += 1
            return "BLOCKED_FILE \(path): cannot rewrite: \(error)"
        }
    }
}
