import CLinux
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// After capture is open, keep only the capabilities the sensor still uses: NET_RAW (to
/// open captures on interfaces that appear later) and NET_ADMIN (the firewall). Everything
/// else root can do (read any file, ptrace, load modules, ...) is dropped from the
/// effective, permitted and bounding sets, and no_new_privs stops a regain through exec.
enum Privileges {
    static let keep: [Int32] = [CAP_NET_RAW, CAP_NET_ADMIN]

    static func dropUnneeded(logger: Logger) {
        guard geteuid() == 0 else { return }
        var mask: UInt64 = 0
        for cap in keep { mask |= 1 << UInt64(cap) }
        var dropped = 0
        for cap in Int32(0)...Int32(63) where mask & (1 << UInt64(cap)) == 0 {
            if clinux_prctl(PR_CAPBSET_DROP, UInt(cap)) == 0 { dropped += 1 }
        }
        _ = clinux_prctl(PR_SET_NO_NEW_PRIVS, 1)
        if clinux_capset(mask) != 0 {
            logger.warning("could not drop capabilities: \(errnoText())")
            return
        }
        logger.info("Dropped capabilities: keeping CAP_NET_RAW and CAP_NET_ADMIN only")
    }
}
