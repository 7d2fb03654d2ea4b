import Foundation

/// One background thread working through a bounded FIFO: what keeps slow work (KILL_*
/// commands, writing the spool) off the capture thread without letting a backlog grow
/// without limit. A job that does not fit is refused and counted; the caller says what that
/// costs (a dropped batch, a command not run).
///
/// The thread starts with the first job, from the thread that submits it, so it inherits
/// that thread's signal mask: the daemon blocks SIGTERM and SIGHUP for its signalfd, and a
/// thread made before it did would take the signal's default action (the process dies).
final class BoundedWorker<Job: Sendable>: @unchecked Sendable {
    let capacity: Int
    private let handle: @Sendable (Job) -> Void
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var waiting: [Job] = []
    private var running = false
    private var started = false
    private var stopping = false
    private var refused: UInt64 = 0

    init(capacity: Int, handle: @escaping @Sendable (Job) -> Void) {
        self.capacity = capacity
        self.handle = handle
    }

    /// Queues `job`; false (and counted) when `capacity` jobs already wait or it is stopping.
    func submit(_ job: Job) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping, waiting.count < capacity else {
            refused += 1
            return false
        }
        waiting.append(job)
        if !started {
            started = true
            Thread.detachNewThread { [self] in work() }
        }
        condition.broadcast()
        return true
    }

    /// Jobs waiting, and whether one is running now.
    var load: (waiting: Int, running: Bool) {
        condition.lock()
        defer { condition.unlock() }
        return (waiting.count, running)
    }

    /// Jobs refused since start.
    var dropped: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return refused
    }

    /// Waits until every queued job has run, then stops the thread (shutdown, tests).
    func drainAndStop() {
        condition.lock()
        while !waiting.isEmpty || running { condition.wait() }
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        while let job = next() {
            handle(job)
            condition.lock()
            running = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The next job, or nil once stopping with nothing left.
    private func next() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while waiting.isEmpty, !stopping { condition.wait() }
        guard !waiting.isEmpty else { return nil }
        running = true
        return waiting.removeFirst()
    }
}
