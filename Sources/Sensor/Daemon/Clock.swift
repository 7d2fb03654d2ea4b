#if canImport(Glibc)
import Glibc
#endif
import PortsentryShared
import SensorCore

enum Clock {
    /// Monotonic nanoseconds: orders detector state, immune to wall-clock steps.
    @inline(__always)
    static func monotonic() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * nanosPerSecond + Int64(ts.tv_nsec)
    }

    static func wallSeconds() -> Int64 { wall() / nanosPerSecond }

    static func wall() -> EpochNanos {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * nanosPerSecond + Int64(ts.tv_nsec)
    }
}
