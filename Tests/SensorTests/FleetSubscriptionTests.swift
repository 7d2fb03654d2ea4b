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
        s.setProtected([IPAddress("10.0.0.254")!])
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
