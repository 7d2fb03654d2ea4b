import Foundation
import PortsentryShared
@testable import Sensor
import Testing

/// The sensor's side of the fleet block list: what a verified update does to the firewall,
/// what is refused, what is skipped, and what survives a restart.
@Suite struct FleetSubscriptionTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pst-fleet-\(UUID().uuidString)")
    let controllerKey = try! Ed25519.PrivateKey.generate()

    func subscription(_ firewall: DryRunFirewall) throws -> FleetSubscription {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let enrollment = Enrollment(url: "https://127.0.0.1:8443", sensor: "h1", caFile: "/dev/null", pin: nil,
                                    controllerSigningKey: Hex.encode(try controllerKey.publicKey.raw))
        return try FleetSubscription(enrollment: enrollment, key: try Ed25519.PrivateKey.generate(), firewall: firewall,
                                     stateDir: directory.path)
    }

    func prefix(_ s: String) -> IPPrefix { try! IPPrefix(parsing: s) }

    @Test func snapshotsDeltasProtectionAndRestart() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let firewall = DryRunFirewall()
        let s = try subscription(firewall)
        s.setProtected(.init(addresses: [IPAddress("10.0.0.254")!]))
        let now = Clock.wallSeconds()
        let snapshot = BlockListUpdate(revision: 3, base: 0, issuedMillis: 1000, add: [
            BlockEntry(prefix: prefix("198.51.100.1"), expires: now + 600),
            BlockEntry(prefix: prefix("10.0.0.0/24"), expires: 0),           // covers the gateway: skipped
            BlockEntry(prefix: prefix("198.51.100.2"), expires: now - 5),    // already expired
        ], remove: [])
        #expect(s.apply(snapshot))
        #expect(firewall.applied.count == 1)
        #expect(firewall.applied.first == .add(prefix("198.51.100.1"), seconds: 600))
        #expect(s.status.revision == 3)

        // A delta for another base is not applied; the sensor asks for a snapshot next.
        #expect(s.apply(BlockListUpdate(revision: 9, base: 7, issuedMillis: 2000, add: [BlockEntry(prefix: prefix("192.0.2.9"), expires: 0)], remove: [])))
        #expect(!firewall.applied.contains(.add(prefix("192.0.2.9"), seconds: nil)))

        // A stale snapshot (older revision, older issue time) is a replay: ignored.
        #expect(s.apply(BlockListUpdate(revision: 1, base: 0, issuedMillis: 500, add: [], remove: [])))
        #expect(firewall.applied.count == 1)

        // A fresh snapshot, then a delta from it: removals and additions in one change set.
        #expect(s.apply(BlockListUpdate(revision: 4, base: 0, issuedMillis: 3000, add: [BlockEntry(prefix: prefix("198.51.100.1"), expires: 0)], remove: [])))
        #expect(s.apply(BlockListUpdate(revision: 5, base: 4, issuedMillis: 4000, add: [BlockEntry(prefix: prefix("203.0.113.0/24"), expires: 0)],
                                        remove: [prefix("198.51.100.1")])))
        #expect(firewall.applied == [.add(prefix("203.0.113.0/24"), seconds: nil)] || firewall.applied.suffix(2) == [.remove(prefix("198.51.100.1")), .add(prefix("203.0.113.0/24"), seconds: nil)])

        // A restart restores what was last applied before the first poll.
        let restarted = DryRunFirewall()
        _ = try subscription(restarted)
        let state = try String(contentsOfFile: directory.appendingPathComponent("fleet-blocklist.json").path, encoding: .utf8)
        #expect(state.contains("203.0.113.0/24") && state.contains("\"revision\":5") && !state.contains("198.51.100.1"))
    }

    @Test func aCorruptStateFileFallsBackToThePreviousGeneration() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let s = try subscription(DryRunFirewall())
        #expect(s.apply(BlockListUpdate(revision: 1, base: 0, issuedMillis: 1000, add: [BlockEntry(prefix: prefix("192.0.2.1"), expires: 0)], remove: [])))
        #expect(s.apply(BlockListUpdate(revision: 2, base: 1, issuedMillis: 2000, add: [BlockEntry(prefix: prefix("192.0.2.2"), expires: 0)], remove: [])))
        let path = directory.appendingPathComponent("fleet-blocklist.json").path
        let good = try String(contentsOfFile: path, encoding: .utf8)
        // Altered in place (a flipped digit), truncated, zeroed: each is refused, and the
        // previous generation (revision 1) comes back.
        for corrupt in [good.replacingOccurrences(of: "192.0.2.2", with: "192.0.2.3"), String(good.prefix(good.count / 2)),
                        String(repeating: "\u{0}", count: good.count), ""] {
            try corrupt.write(toFile: path, atomically: true, encoding: .utf8)
            let restarted = DryRunFirewall()
            let again = try subscription(restarted)
            again.restore()
            #expect(again.status.revision == 1 && restarted.applied == [.add(prefix("192.0.2.1"), seconds: nil)], "\(corrupt.prefix(40))")
        }
        // Neither readable: nothing restored, said loudly (and no crash).
        try "x".write(toFile: path + ".prev", atomically: true, encoding: .utf8)
        let none = try subscription(DryRunFirewall())
        #expect(none.status.revision == 0)
        #expect(throws: FleetSubscription.StateError.self) { try FleetSubscription.decodeState("{\"revision\":1}") }
    }

    /// A state file written by the previous version (hand-built canonical JSON) still reads,
    /// checksum included, and this version writes the same bytes for the same state.
    @Test func stateFilesOfThePreviousFormatStillRead() throws {
        let state = #"{"entries":[{"expires":0,"prefix":"198.51.100.7"},{"expires":1900000000,"prefix":"2001:db8::/48"}],"issued_ms":5,"revision":3}"#
        let file = #"{"sha256":""# + Hex.encode(SHA256.digest(Array(state.utf8))) + #"","state":"# + state + "}"
        let decoded = try FleetSubscription.decodeState(file)
        #expect(decoded.revision == 3 && decoded.issuedMillis == 5)
        #expect(decoded.entries == [prefix("198.51.100.7"): 0, prefix("2001:db8::/48"): 1_900_000_000])
        #expect(String(decoding: FleetSubscription.encodeState(decoded), as: UTF8.self) == file)
        // One changed digit in the state: refused by the checksum, not half-read.
        #expect(throws: FleetSubscription.StateError.self) {
            try FleetSubscription.decodeState(file.replacingOccurrences(of: "1900000000", with: "1900000001"))
        }
    }

    @Test func entriesCoveringTheIgnoreFileOrANewSessionAreNotEnforcedHere() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let firewall = DryRunFirewall()
        let s = try subscription(firewall)
        s.setProtected(.init(addresses: [IPAddress("10.0.0.5")!], ignored: [prefix("198.51.100.0/24")]))
        #expect(s.apply(BlockListUpdate(revision: 1, base: 0, issuedMillis: 1000, add: [
            BlockEntry(prefix: prefix("198.51.100.0/23"), expires: 0),   // overlaps the ignore file
            BlockEntry(prefix: prefix("198.51.100.9"), expires: 0),      // inside it
            BlockEntry(prefix: prefix("192.0.2.7"), expires: 0),
            BlockEntry(prefix: prefix("192.0.2.8"), expires: 0),
        ], remove: [])))
        #expect(Set(firewall.applied.map { "\($0)" }) == Set([FirewallChange.add(prefix("192.0.2.7"), seconds: nil),
                                                                   .add(prefix("192.0.2.8"), seconds: nil)].map { "\($0)" }))
        #expect(firewall.applied.count == 2)
        #expect(s.status.skippedNow == 2 && s.status.skippedTotal == 2)
        // An admin logs in from 192.0.2.8 while its entry is in force: it leaves the kernel at once.
        s.setProtected(.init(addresses: [IPAddress("10.0.0.5")!, IPAddress("192.0.2.8")!], ignored: [prefix("198.51.100.0/24")]))
        s.reprotect()
        #expect(firewall.applied.last == .remove(prefix("192.0.2.8")))
        #expect(s.status.skippedNow == 3 && s.status.skippedTotal == 3)
        // Asking again changes nothing, and a later delta does not put it back.
        s.reprotect()
        #expect(s.apply(BlockListUpdate(revision: 2, base: 1, issuedMillis: 2000, add: [BlockEntry(prefix: prefix("192.0.2.8"), expires: 0)],
                                        remove: [])))
        #expect(firewall.applied.filter { $0 == .add(prefix("192.0.2.8"), seconds: nil) }.count == 1)
        #expect(s.status.skippedTotal == 3)
    }

    @Test func anAnswerIsAcceptedOnlyWithAReceiptForThePollThatAskedForIt() throws {
        let update = BlockListUpdate(revision: 2, base: 1, issuedMillis: 1, add: [], remove: [prefix("192.0.2.1")])
        let framed = try BlockListProtocol.frame(update, key: controllerKey)
        let answer = try PollReceipt.answer(sensor: "h1", pollMillis: 5000, revision: 2, answeredMillis: 5001, rest: framed, key: controllerKey)
        let pub = try controllerKey.publicKey
        #expect(try PollReceipt.open(answer, sensor: "h1", pollMillis: 5000, key: pub).1 == update)
        #expect(throws: BlockListProtocol.Refusal.self) { _ = try PollReceipt.open(answer, sensor: "h1", pollMillis: 5001, key: pub) }
        #expect(throws: BlockListProtocol.Refusal.self) { _ = try PollReceipt.open(answer, sensor: "h2", pollMillis: 5000, key: pub) }
        var tampered = answer
        tampered[tampered.count - 3] ^= 1
        #expect(throws: BlockListProtocol.Refusal.self) { _ = try PollReceipt.open(tampered, sensor: "h1", pollMillis: 5000, key: pub) }
        let nothing = try PollReceipt.answer(sensor: "h1", pollMillis: 6000, revision: 2, answeredMillis: 6001, rest: [], key: controllerKey)
        #expect(try PollReceipt.open(nothing, sensor: "h1", pollMillis: 6000, key: pub).1 == nil)
        #expect(throws: BlockListProtocol.Refusal.self) {
            _ = try PollReceipt.open(nothing, sensor: "h1", pollMillis: 6000, key: try Ed25519.PrivateKey.generate().publicKey)
        }
    }

    @Test func aSensorSaysSoWhenNoFreshAnswerArrivesInTime() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let s = try subscription(DryRunFirewall())
        let now = Clock.wall() / 1_000_000
        s.checkStale(nowMillis: now + 60_000)
        #expect(!s.status.stale, "within the default 120 s bound")
        s.checkStale(nowMillis: now + 121_000)
        #expect(s.status.stale)
    }

    @Test func onlyTheControllersKeyOpensAnUpdate() throws {
        let update = BlockListUpdate(revision: 2, base: 1, issuedMillis: 1, add: [], remove: [prefix("192.0.2.1")])
        let framed = try BlockListProtocol.frame(update, key: controllerKey)
        #expect(try BlockListProtocol.open(framed, key: try controllerKey.publicKey) == update)
        #expect(throws: BlockListProtocol.Refusal.self) {
            try BlockListProtocol.open(framed, key: try Ed25519.PrivateKey.generate().publicKey)
        }
        #expect(throws: BlockListProtocol.Refusal.self) { try BlockListProtocol.open(Array(framed.prefix(40)), key: try controllerKey.publicKey) }
    }
}
