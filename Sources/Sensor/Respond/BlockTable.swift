import Foundation
import PortsentryShared

/// How long a block lasts: a base duration that grows for repeat offenders (like fail2ban's
/// `bantime.increment`), capped, or permanent.
struct BlockPolicy: Sendable, Equatable {
    /// nil: blocks are permanent.
    var baseSeconds: Int64? = 3600
    var factor: Int64 = 2
    var maxSeconds: Int64 = 7 * 86_400
    /// Offenses older than this are forgotten.
    var memorySeconds: Int64 = 30 * 86_400

    /// Duration of the `offense`-th block (1-based); nil is permanent.
    func seconds(forOffense offense: Int) -> Int64? {
        guard let base = baseSeconds else { return nil }
        var d = base
        for _ in 1..<max(offense, 1) {
            if d >= maxSeconds / max(factor, 1) { return maxSeconds }
            d *= factor
        }
        return min(d, maxSeconds)
    }
}

/// One block in force.
struct Block: Codable, Equatable, Sendable {
    enum Origin: String, Codable, Sendable { case detection, manual }

    var target: IPPrefix
    /// Wall-clock seconds since the epoch.
    var created: Int64
    /// nil: permanent.
    var expires: Int64?
    var origin: Origin
    var reason: String
    /// 1 for a first offense, 2 for the second within the policy's memory, ...
    var offense: Int

    func remaining(now: Int64) -> Int64? { expires.map { max($0 - now, 0) } }
}

/// The sensor's own record of what is blocked: the source of truth that the kernel sets
/// mirror, persisted so a restart restores every live block with its remaining time.
/// Bounded: at most `maxBlocks` blocks and `maxOffenders` remembered repeat offenders.
final class BlockTable {
    /// Far beyond what a host sees; a fleet list is bounded by the controller.
    static let maxBlocks = 1_000_000
    /// Repeat-offender memory; the oldest is forgotten first.
    static let maxOffenders = 100_000
    /// Refuse state files larger than this (about 200 bytes per block).
    static let maxStateBytes = 256 << 20

    struct Offender: Codable, Equatable, Sendable {
        var address: IPAddress
        var count: Int
        var last: Int64
    }

    private(set) var blocks: [IPPrefix: Block] = [:]
    private var networkBlocks: [IPPrefix] = []
    private var offenders: [IPAddress: Offender] = [:]
    /// Set by every change; cleared by `save`.
    private(set) var dirty = false

    var count: Int { blocks.count }

    /// The block covering `address` (its own, or a network containing it), if in force.
    func covering(_ address: IPAddress, now: Int64) -> Block? {
        if let b = blocks[IPPrefix(host: address)], b.expires.map({ $0 > now }) ?? true { return b }
        for p in networkBlocks where p.contains(address) {
            if let b = blocks[p], b.expires.map({ $0 > now }) ?? true { return b }
        }
        return nil
    }

    /// Records a new offense by `address` and returns its number (1 for a first offense).
    func recordOffense(_ address: IPAddress, policy: BlockPolicy, now: Int64) -> Int {
        var o = offenders[address] ?? Offender(address: address, count: 0, last: now)
        if now - o.last > policy.memorySeconds { o.count = 0 }
        o.count += 1
        o.last = now
        offenders[address] = o
        if offenders.count > Self.maxOffenders, let oldest = offenders.values.min(by: { $0.last < $1.last }) {
            offenders[oldest.address] = nil
        }
        dirty = true
        return o.count
    }

    enum InsertError: Error, CustomStringConvertible {
        case overlaps(IPPrefix)
        case full

        var description: String {
            switch self {
            case .overlaps(let p): return "overlaps the network block \(p); remove that first"
            case .full: return "the block list is full (\(BlockTable.maxBlocks) entries)"
            }
        }
    }

    /// Adds or replaces a block. Network blocks may not overlap each other (the kernel's
    /// interval sets refuse overlaps); hosts inside a blocked network are fine.
    func insert(_ block: Block) throws(InsertError) {
        if !block.target.isHost {
            if let other = networkBlocks.first(where: { $0 != block.target && overlaps($0, block.target) }) {
                throw .overlaps(other)
            }
        }
        if blocks[block.target] == nil {
            guard blocks.count < Self.maxBlocks else { throw .full }
            if !block.target.isHost { networkBlocks.append(block.target) }
        }
        blocks[block.target] = block
        dirty = true
    }

    @discardableResult
    func remove(_ target: IPPrefix) -> Block? {
        guard let b = blocks.removeValue(forKey: target) else { return nil }
        networkBlocks.removeAll { $0 == target }
        dirty = true
        return b
    }

    /// Drops blocks whose time is up (the kernel has already dropped them itself).
    func removeExpired(now: Int64) -> [Block] {
        let gone = blocks.values.filter { $0.expires.map { $0 <= now } ?? false }
        for b in gone { remove(b.target) }
        return gone
    }

    func removeAll() -> [Block] {
        let all = Array(blocks.values)
        blocks.removeAll()
        networkBlocks.removeAll()
        dirty = true
        return all
    }

    private func overlaps(_ a: IPPrefix, _ b: IPPrefix) -> Bool {
        a.contains(b.network) || b.contains(a.network)
    }

    // MARK: persistence

    private struct StateFile: Codable {
        var version: Int
        var blocks: [Block]
        var offenders: [Offender]
    }

    /// Writes the state atomically: a temporary file in the same directory, fsync, rename,
    /// fsync of the directory. A crash leaves the old file or the new one, never half of one.
    func save(to path: String) throws {
        let state = StateFile(version: 1, blocks: blocks.values.sorted { $0.created < $1.created },
                              offenders: offenders.values.sorted { $0.last < $1.last })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(state)
        try AtomicFile.write(data, to: path)
        dirty = false
    }

    /// Loads a state file; blocks that expired while the sensor was down are dropped.
    static func load(from path: String, now: Int64) throws -> BlockTable {
        let table = BlockTable()
        guard FileManager.default.fileExists(atPath: path) else { return table }
        let text: String
        do { text = try TextFile.read(path, limit: maxStateBytes) } catch {
            throw FirewallError("\(path): \(error.description)")
        }
        let state: StateFile
        do { state = try JSONDecoder().decode(StateFile.self, from: Data(text.utf8)) } catch {
            throw FirewallError("\(path): not a portsentry state file (\(error))")
        }
        guard state.version == 1 else { throw FirewallError("\(path): state version \(state.version) is not supported") }
        for b in state.blocks where b.expires.map({ $0 > now }) ?? true { try? table.insert(b) }
        for o in state.offenders { table.offenders[o.address] = o }
        table.dirty = false
        return table
    }
}
