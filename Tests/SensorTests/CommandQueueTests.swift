@testable import Sensor
import Foundation
import PortsentryShared
import Testing

/// KILL_* actions on the worker: the capture thread never waits for them, a host's actions
/// are queued once, their results come back and are remembered, and a full queue refuses
/// and counts rather than growing.
@Suite struct CommandQueueTests {
    func event(from source: String) -> ScanEvent {
        var e = ScanEvent(time: 0, source: IPAddress(source)!, destination: IPAddress("192.0.2.10")!, proto: .tcp,
                          port: 79, kind: .tcpSYN, ipOptions: .notSet)
        (e.ignored, e.triggered) = (.no, .yes)
        return e
    }

    /// Polls `condition` every 10 ms until it holds; false after `seconds`.
    func eventually(within seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    /// A KILL_ROUTE that waits until the test creates `go`: respond must return before it.
    func setUp() throws -> (Responder, CommandQueue, go: String, dir: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-cmdq-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var c = SensorConfig()
        c.blockTCP = .block
        c.firewall = .none
        c.killTimeout = 20
        c.blockRateLimit = 1000
        c.killRoute = "while [ ! -e \(dir)/go ]; do sleep 0.02; done; echo $TARGET$ >> \(dir)/done"
        let queue = CommandQueue()
        return (Responder(config: c, firewall: nil, blocks: BlockTable(), commandQueue: queue, readsHostState: false), queue,
                dir + "/go", dir)
    }

    @Test func theCaptureThreadNeverWaitsForACommand() throws {
        let (r, queue, go, dir) = try setUp()
        defer { _ = FileManager.default.createFile(atPath: go, contents: nil); queue.drainAndStop(); try? FileManager.default.removeItem(atPath: dir) }
        var e = event(from: "198.51.100.7")
        let deferred = r.respond(to: &e, now: 0)
        // Returned with the command still waiting for `go`: the outcome is not known yet.
        #expect(deferred && e.blocked == .unset && queue.queued == 1)
        var again = event(from: "198.51.100.7")
        r.respond(to: &again, now: 1)
        #expect(queue.queued == 1, "a host whose actions are in flight is not queued twice")
        _ = FileManager.default.createFile(atPath: go, contents: nil)
        #expect(eventually(within: 10) { queue.queued == 0 })
        let finished = r.collectCommandResults()
        #expect(finished.count == 1 && finished.first?.event.blocked == .yes && finished.first?.report == true)
        #expect(r.commandBlocks.contains(IPAddress("198.51.100.7")!) && r.counters.blocked == 1 && r.counters.failures == 0)
        #expect((try? String(contentsOfFile: dir + "/done", encoding: .utf8)) == "198.51.100.7\n")
    }

    @Test func aFullQueueRefusesAndCounts() throws {
        let (r, queue, go, dir) = try setUp()
        defer { _ = FileManager.default.createFile(atPath: go, contents: nil); queue.drainAndStop(); try? FileManager.default.removeItem(atPath: dir) }
        var first = event(from: "198.51.100.1")
        r.respond(to: &first, now: 0)
        #expect(eventually(within: 10) { queue.queued == 1 && queue.waitingJobs == 0 }, "the worker runs the first job")
        for i in 1...CommandQueue.capacity {   // `capacity` more wait behind it
            var e = event(from: "198.51.100.\(i + 1)")
            r.respond(to: &e, now: 0)
        }
        #expect(eventually(within: 10) { queue.queued == CommandQueue.capacity + 1 }, "queued \(queue.queued) dropped \(queue.dropped) breaker \(r.counters.breakerRefused) already \(r.counters.alreadyBlocked)")
        var overflow = event(from: "203.0.113.9")
        r.respond(to: &overflow, now: 0)
        #expect(queue.dropped == 1 && r.counters.failures == 1 && overflow.blocked == .no)
        _ = FileManager.default.createFile(atPath: go, contents: nil)
        #expect(eventually(within: 20) { queue.queued == 0 })
        #expect(r.collectCommandResults().count == CommandQueue.capacity + 1)
        #expect(r.counters.blocked == UInt64(CommandQueue.capacity + 1) && r.commandBlocks.count == CommandQueue.capacity + 1)
    }
}
