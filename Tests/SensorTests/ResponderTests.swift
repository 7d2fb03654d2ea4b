@testable import Sensor
import PortsentryShared
import Testing

@Suite struct ResponderTests {
    func event(from source: String, port: UInt16 = 79) -> ScanEvent {
        var e = ScanEvent(time: 0, source: IPAddress(source)!, destination: IPAddress("192.0.2.10")!, proto: .tcp,
                          port: port, kind: .tcpSYN, ipOptions: .notSet)
        e.ignored = .no
        e.triggered = .yes
        return e
    }

    func responder(_ configure: (inout SensorConfig) -> Void) -> (Responder, DryRunFirewall) {
        var c = SensorConfig()
        c.blockTCP = .block
        c.firewall = .nftables
        configure(&c)
        let fake = DryRunFirewall()
        return (Responder(config: c, firewall: fake, blocks: BlockTable(), readsHostState: false), fake)
    }

    @Test func blocksOnceThenReportsAlreadyBlocked() {
        let (r, fw) = responder { $0.blockPolicy.baseSeconds = 600 }
        var first = event(from: "198.51.100.7")
        r.respond(to: &first, now: 1000)
        #expect(first.noblock == .no && first.blocked == .yes)
        #expect(fw.applied == [.add(IPPrefix(host: IPAddress("198.51.100.7")!), seconds: 600)])
        var again = event(from: "198.51.100.7", port: 1)
        r.respond(to: &again, now: 1001)
        #expect(again.blocked == .yes)
        #expect(fw.applied.count == 1)
        #expect(r.counters.alreadyBlocked == 1)
    }

    @Test func logOnlyAndNotActionableEventsAreLeftAlone() {
        let (r, fw) = responder { $0.blockTCP = .logOnly }
        var e = event(from: "198.51.100.7")
        r.respond(to: &e, now: 0)
        #expect(e.noblock == .yes && e.blocked == .no)
        var below = event(from: "198.51.100.8")
        below.triggered = .no
        r.respond(to: &below, now: 0)
        #expect(below.noblock == .unset)
        #expect(fw.applied.isEmpty)
    }

    @Test func breakerStopsNewBlocksPastTheLimit() {
        let (r, fw) = responder { $0.blockRateLimit = 2; $0.blockRateWindow = 60 }
        var outcomes: [TriState] = []
        for i in 1...5 {
            var e = event(from: "198.51.100.\(i)")
            r.respond(to: &e, now: 100)
            outcomes.append(e.blocked)
        }
        #expect(outcomes == [.yes, .yes, .no, .no, .no])
        #expect(r.breakerOpen && r.counters.breakerRefused == 3 && fw.applied.count == 2)
        // A minute later the breaker closes.
        r.expire(now: 161)
        var later = event(from: "198.51.100.9")
        r.respond(to: &later, now: 161)
        #expect(later.blocked == .yes && !r.breakerOpen)
    }

    @Test func failingCommandIsAFailure() {
        let (r, _) = responder { $0.firewall = .none; $0.killRoute = "exit 1 # $TARGET$" }
        var e = event(from: "198.51.100.7")
        r.respond(to: &e, now: 0)
        #expect(e.blocked == .no)
        #expect(r.counters.failures == 1)
        #expect(r.blocks.count == 0)
    }

    @Test func runCommandOnlyRunsKillRunCmd() {
        let (r, fw) = responder { $0.blockTCP = .runCommandOnly; $0.killRunCmd = "test \"$TARGET$:$PORT$:$MODE$\" = \"198.51.100.7:79:stealth\"" }
        var e = event(from: "198.51.100.7")
        r.respond(to: &e, now: 0)
        #expect(e.blocked == .yes)   // the test command succeeded: tokens were substituted
        #expect(fw.applied.isEmpty)  // BLOCK=2 never touches the firewall
    }

    @Test func repeatOffendersGetLongerBlocks() {
        let (r, fw) = responder { $0.blockPolicy = BlockPolicy(baseSeconds: 60, factor: 3, maxSeconds: 3600) }
        for round in 0..<3 {
            var e = event(from: "198.51.100.7")
            r.respond(to: &e, now: Int64(round) * 1000)
            r.expire(now: Int64(round) * 1000 + 999)
        }
        let seconds = fw.applied.compactMap { change -> Int64? in
            if case .add(_, let s) = change { return s }
            return nil
        }
        #expect(seconds == [60, 180, 540])
    }
}
