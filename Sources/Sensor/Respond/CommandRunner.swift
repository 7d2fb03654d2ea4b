#if canImport(Glibc)
import Glibc
#endif

/// Runs external commands (KILL_ROUTE, KILL_RUN_CMD, ipset/iptables) with a deadline.
/// Children start with default signal dispositions and an empty mask (the daemon blocks
/// SIGTERM/SIGHUP for its signalfd and ignores SIGPIPE; a child must not inherit that).
/// A non-zero exit is a failure (Portsentry 2.0.7 counts it as success).
enum CommandRunner {
    struct Result: Sendable {
        var status: Int32
        var timedOut: Bool
        var stderr: String
        var succeeded: Bool { status == 0 && !timedOut }
        var summary: String {
            timedOut ? "timed out" : status >= 128 ? "killed by signal \(status - 128)" : "exited with status \(status)"
        }
    }

    /// Bound on captured stderr: enough for an error message.
    static let maxStderr = 4096

    static func shell(_ command: String, timeoutSeconds: Int64, stdin: String? = nil) -> Result {
        run(["/bin/sh", "-c", command], timeoutSeconds: timeoutSeconds, stdin: stdin)
    }

    static func run(_ argv: [String], timeoutSeconds: Int64, stdin: String? = nil) -> Result {
        var errPipe: [Int32] = [0, 0]
        var inPipe: [Int32] = [-1, -1]
        guard pipe(&errPipe) == 0 else { return Result(status: 127, timedOut: false, stderr: "pipe: \(errnoText())") }
        if stdin != nil, pipe(&inPipe) != 0 {
            close(errPipe[0]); close(errPipe[1])
            return Result(status: 127, timedOut: false, stderr: "pipe: \(errnoText())")
        }
        var pid: pid_t = 0
        let rc = spawn(argv, pid: &pid, stdin: stdin != nil ? inPipe : nil, stderr: errPipe)
        close(errPipe[1])
        if stdin != nil { close(inPipe[0]) }
        guard rc == 0 else {
            close(errPipe[0])
            if stdin != nil { close(inPipe[1]) }
            return Result(status: 127, timedOut: false, stderr: "cannot run \(argv[0]): \(errnoText(rc))")
        }
        if let stdin {
            writeAll(inPipe[1], stdin)
            close(inPipe[1])
        }
        let (raw, timedOut, captured) = reap(pid, stderr: errPipe[0], timeoutSeconds: timeoutSeconds)
        close(errPipe[0])
        let signal = raw & 0x7F
        let status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
        let text = String(decoding: captured, as: UTF8.self).split(separator: "\n").joined(separator: " | ")
        return Result(status: status, timedOut: timedOut, stderr: text)
    }

    /// posix_spawn with stdin from `stdin` (or /dev/null), stdout to /dev/null, stderr to the
    /// pipe, default signal dispositions and an empty mask (the daemon blocks its signals for
    /// signalfd; a child must not inherit that).
    private static func spawn(_ argv: [String], pid: inout pid_t, stdin: [Int32]?, stderr: [Int32]) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            posix_spawn_file_actions_adddup2(&actions, stdin[0], 0)
            posix_spawn_file_actions_addclose(&actions, stdin[1])
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stderr[1], 2)
        posix_spawn_file_actions_addclose(&actions, stderr[0])
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var args: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in args { free(a) } }
        return posix_spawn(&pid, argv[0], &actions, &attributes, &args, environ)
    }

    private static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { if n < 0, errno == EINTR { continue }; break }
            offset += n
        }
        bytes.removeAll()
    }

    /// Waits for the child, reading its stderr (at most `maxStderr` bytes kept) as it goes;
    /// past the deadline it is killed.
    private static func reap(_ pid: pid_t, stderr fd: Int32, timeoutSeconds: Int64) -> (raw: Int32, timedOut: Bool, stderr: [UInt8]) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var captured: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        func drain() {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                if captured.count < maxStderr { captured.append(contentsOf: buffer[0..<min(n, maxStderr - captured.count)]) }
            }
        }
        let deadline = Clock.monotonic() + timeoutSeconds * 1_000_000_000
        var raw: Int32 = 0
        var timedOut = false
        while true {
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid { break }
            if r < 0, errno != EINTR { raw = 127 << 8; break }
            drain()
            if Clock.monotonic() > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &raw, 0)
                timedOut = true
                break
            }
            usleep(2000)
        }
        drain()
        return (raw, timedOut, captured)
    }
}
