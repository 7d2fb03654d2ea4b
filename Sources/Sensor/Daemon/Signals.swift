import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM/SIGINT (stop) and SIGHUP (reload) delivered through a signalfd, so they are
/// handled in the capture loop between packets, never inside a signal handler.
final class SignalInbox {
    enum Signal { case stop, reload }

    let fd: Int32

    init() throws(TextFile.Failure) {
        signal(SIGPIPE, SIG_IGN)
        let wanted: [Int32] = [SIGTERM, SIGINT, SIGHUP]
        fd = wanted.withUnsafeBufferPointer { clinux_block_and_signalfd($0.baseAddress, Int32($0.count)) }
        guard fd >= 0 else { throw TextFile.Failure(description: "signalfd: \(errnoText())") }
    }

    deinit { close(fd) }

    func take() -> [Signal] {
        var out: [Signal] = []
        var info = signalfd_siginfo()
        while read(fd, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            out.append(Int32(info.ssi_signo) == SIGHUP ? .reload : .stop)
        }
        return out
    }
}
