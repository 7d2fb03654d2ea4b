import Foundation
import PortsentryShared
import Synchronization
import ControllerCore

/// Builds what each sensor needs to reach the current block list: a delta from its revision
/// (the latest state of every scope changed since), or a snapshot when it has nothing, is too
/// far behind, or has drifted. Every answer is signed with the controller's key. The newest
/// snapshot is built and signed once per revision and shared by every sensor.
final class BlockListService: Sendable {
    /// Changes in one delta at most; a sensor further behind gets a snapshot instead.
    static let maxDeltaChanges = 10_000

    let store: any ControllerStore
    private let key: Ed25519.PrivateKey
    private let cache = Mutex<(revision: Int64, second: Int64, entries: [BlockEntry], framed: [UInt8]?, digest: String)?>(nil)

    init(store: any ControllerStore, key: Ed25519.PrivateKey) {
        self.store = store
        self.key = key
    }

    /// Every live entry: one per scope, lasting as long as its longest active decision.
    func entries(now: Int64) async throws -> [BlockEntry] {
        var byScope: [String: Int64] = [:]
        for d in try await store.activeDecisions(now: now) {
            let e = byScope[d.scope]
            byScope[d.scope] = (e == 0 || d.expires == 0) ? 0 : max(e ?? 0, d.expires)
        }
        return byScope.compactMap { scope, expires in (try? IPPrefix(parsing: scope)).map { BlockEntry(prefix: $0, expires: expires) } }
            .sorted { $0.prefix.description < $1.prefix.description }
    }

    /// The current snapshot's entries, framed bytes and digest, built once per revision and second.
    private func current(revision: Int64, nowMillis: Int64) async throws -> (entries: [BlockEntry], framed: [UInt8], digest: String) {
        let second = nowMillis / 1000
        if let c = cache.withLock({ $0 }), c.revision == revision, let framed = c.framed {
            let digest = c.second == second ? c.digest : BlockListProtocol.digest(c.entries, now: second)
            return (c.entries, framed, digest)
        }
        let list = try await entries(now: second)
        let framed = try BlockListProtocol.frame(BlockListUpdate(revision: max(revision, 1), base: 0, issuedMillis: nowMillis,
                                                                 add: list, remove: []), key: key)
        let digest = BlockListProtocol.digest(list, now: second)
        cache.withLock { $0 = (revision, second, list, framed, digest) }
        return (list, framed, digest)
    }

    func digest(revision: Int64, nowMillis: Int64) async throws -> String {
        try await current(revision: revision, nowMillis: nowMillis).digest
    }

    /// A signed snapshot of the list at `revision`.
    func snapshot(revision: Int64, nowMillis: Int64) async throws -> [UInt8] {
        try await current(revision: revision, nowMillis: nowMillis).framed
    }

    /// The signed answer to one poll: a receipt for it, then `rest` (an update, or nothing).
    func answer(sensor: String, pollMillis: Int64, revision: Int64, rest: [UInt8], nowMillis: Int64) throws -> [UInt8] {
        try PollReceipt.answer(sensor: sensor, pollMillis: pollMillis, revision: revision, answeredMillis: nowMillis, rest: rest, key: key)
    }

    /// A signed update taking a sensor from `base` to `revision` (nil: nothing to send).
    func update(from base: Int64, to revision: Int64, nowMillis: Int64) async throws -> (bytes: [UInt8], snapshot: Bool)? {
        if base == revision { return nil }
        // Nothing held, too far behind, or ahead of us (a restored database): start over.
        if base <= 0 || base > revision { return (try await snapshot(revision: revision, nowMillis: nowMillis), true) }
        // Retention pruned changes this sensor has not seen: only a snapshot is complete.
        if let oldest = try await store.oldestChange(), oldest > base + 1 {
            return (try await snapshot(revision: revision, nowMillis: nowMillis), true)
        }
        let changes = try await store.changes(after: base, limit: Self.maxDeltaChanges + 1)
        guard changes.count <= Self.maxDeltaChanges, let last = changes.last else {
            return (try await snapshot(revision: revision, nowMillis: nowMillis), true)
        }
        var latest: [String: Int64] = [:]
        for c in changes { latest[c.scope] = c.expires }
        let now = nowMillis / 1000
        var add: [BlockEntry] = []
        var remove: [IPPrefix] = []
        for (scope, expires) in latest.sorted(by: { $0.key < $1.key }) {
            guard let p = try? IPPrefix(parsing: scope) else { continue }
            if expires == 0 || expires > now { add.append(BlockEntry(prefix: p, expires: expires)) } else { remove.append(p) }
        }
        let update = BlockListUpdate(revision: last.revision, base: base, issuedMillis: nowMillis, add: add, remove: remove)
        return (try BlockListProtocol.frame(update, key: key), false)
    }
}
