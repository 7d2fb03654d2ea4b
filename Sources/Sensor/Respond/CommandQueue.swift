import PortsentryShared
import Synchronization

/// Where KILL_* actions run, off the capture thread. A command may take up to KILL_TIMEOUT;
/// run inline it would stop capture for that long, and a scanner with many source addresses
/// could keep capture stopped. Jobs wait in a `BoundedWorker`; one that does not fit is
/// refused and counted. Results come back through `completed()`, drained by the capture
/// thread, which alone owns the responder's state.
final class CommandQueue: Sendable {
    /// Jobs waiting at most: with the circuit breaker's default of 60 blocks a minute this
    /// is a minute of commands at their worst (every one timing out takes longer anyway).
    static let capacity = 64

    struct Job: Sendable {
        /// The event as responded to so far, held until the actions have run.
        var event: ScanEvent
        /// Whether its line is to be written when they have.
        var report: Bool
        var run: @Sendable () -> KillActions.Outcome
    }

    struct Done: Sendable {
        var event: ScanEvent
        var report: Bool
        var outcome: KillActions.Outcome
    }

    /// Results not yet collected (shared with the worker's handler).
    private final class Results: Sendable {
        let list = Mutex<[Done]>([])
    }
    private let finished = Results()
    private let worker: BoundedWorker<Job>

    init() {
        let finished = self.finished
        worker = BoundedWorker(capacity: Self.capacity) { job in
            let outcome = job.run()
            finished.list.withLock { $0.append(Done(event: job.event, report: job.report, outcome: outcome)) }
        }
    }

    /// Queues `job`; false (and counted in `dropped`) when the queue is full.
    func submit(_ job: Job) -> Bool { worker.submit(job) }

    /// Jobs waiting or running now.
    var queued: Int {
        let load = worker.load
        return load.waiting + (load.running ? 1 : 0)
    }

    /// Jobs waiting for the worker (not counting the one it runs).
    var waitingJobs: Int { worker.load.waiting }

    var dropped: UInt64 { worker.dropped }

    /// Results since the last call, in the order the jobs ran.
    func completed() -> [Done] {
        finished.list.withLock { done in
            defer { done.removeAll(keepingCapacity: true) }
            return done
        }
    }

    /// Waits for every queued job to finish (shutdown, tests), then stops the worker.
    func drainAndStop() { worker.drainAndStop() }
}
