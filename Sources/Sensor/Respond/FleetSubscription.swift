import Foundation
import Logging
import PortsentryShared
import SensorCore

/// Enforces the controller's fleet-wide block list. A thread of its own holds a long poll
/// (HTTPS through libcurl, pinned like every other call to the controller) from the revision
/// it last applied; each answer is verified against the controller's signing key pinned at
/// enrollment before anything touches the firewall, then applied to the fleet sets (separate
/// from the sensor's own blocks) and persisted.
///
/// Fail-static: when the controller is unreachable the last list stays in force (it is in
/// the kernel, with each entry's own timeout, and in STATE_DIR for restarts); the poll
/// reconnects with backoff and jitter.
///
/// The list gets the same protection as the sensor's own blocks: an entry covering an address
/// this host must never block (its own addresses, gateways, resolvers, the controller, its
/// ignore file, or the peer of a live session on PROTECT_PORTS, asked of the kernel when the
/// entry arrives) is not enforced here; skips are logged, counted and reported. When an admin
/// session starts while an entry covering its peer is in force, `reprotect` takes the entry
/// out of the kernel at once (and the nftables chain accepts established sessions on
/// PROTECT_PORTS before the fleet sets, so the session never drops in between).
final class FleetSubscription: @unchecked Sendable {
    /// The poll thread's handle: one connection to the controller, kept between polls.
    private let connection = CurlTransfer.Connection()
    static let backoffFirst = 0.5
    static let backoffMax = 10.0
    /// The poll is held open by the controller for up to this long.
    static let pollWaitSeconds = BlockListProtocol.maxWaitSeconds
    /// State file bound (a 100k-entry list is about 4 MB).
    static let maxStateBytes = 64 << 20

    let enrollment: Enrollment
    let key: Ed25519.PrivateKey
    let controllerKey: Ed25519.PublicKey
    let firewall: any FirewallBackend
    let statePath: String
    let logger: Logger
    let lock = NSLock()
    /// Serialises everything that changes `entries`, `skipped` or the kernel sets: the
    /// subscription thread applies updates, the daemon's thread re-protects.
    let applyLock = NSLock()
    var protection = Protection()
    var stopping = false
    // Subscription thread only.
    var revision: Int64 = 0
    var issuedMillis: Int64 = 0
    var appliedMillis: Int64 = 0
    var entries: [IPPrefix: Int64] = [:]
    var skipped: Set<IPPrefix> = []
    /// A delta did not fit what we hold: the next poll asks for a snapshot (revision 0).
    var wantSnapshot = false
    // Under `lock`, for status and heartbeats.
    var published = Status()
    /// The current state file is one this process wrote or read intact.
    var currentFileGood = false

    struct Status: Sendable {
        var revision: Int64 = 0
        var entries = 0
        var connected = false
        /// Entries held but not enforced here now, and skips counted since start.
        var skippedNow = 0
        var skippedTotal: Int64 = 0
        /// When the last fresh, signed answer from the controller arrived (epoch ms; 0: never).
        var lastFreshMillis: Int64 = 0
        /// No fresh answer for longer than the bound.
        var stale = false
    }

    /// What this host must never block.
    struct Protection: Sendable {
        var addresses: [IPAddress] = []
        var ignored: [IPPrefix] = []
        var sessionPorts = PortSet()
    }

    /// Seconds without a fresh signed answer before the sensor says its list may be stale.
    let staleAfter: Int64
    let startedMillis = Clock.wall() / 1_000_000

    init(enrollment: Enrollment, key: Ed25519.PrivateKey, firewall: any FirewallBackend, stateDir: String,
         staleAfter: Int64 = 120, logger: Logger = Diagnostics.logger) throws(FirewallError) {
        self.staleAfter = staleAfter
        guard let raw = Hex.decode(enrollment.controllerSigningKey), let pinned = try? Ed25519.PublicKey(raw: raw) else {
            throw FirewallError("the controller's signing key in the enrollment is unusable; enroll again")
        }
        self.enrollment = enrollment
        self.key = key
        controllerKey = pinned
        self.firewall = firewall
        statePath = stateDir + "/fleet-blocklist.json"
        self.logger = logger
        load()
    }

    /// What this host must never block; refreshed by the daemon.
    func setProtected(_ p: Protection) {
        lock.lock(); protection = p; lock.unlock()
    }

    var status: Status {
        lock.lock(); defer { lock.unlock() }
        return published
    }

    /// Takes out of the kernel every entry in force that now covers something protected (an
    /// admin session that just started). Called by the daemon when its session scan finds one.
    func reprotect() {
        applyLock.lock(); defer { applyLock.unlock() }
        let guardSet = Guard(protection: currentProtection())
        var changes: [FirewallChange] = []
        for p in entries.keys where !skipped.contains(p) {
            guard let why = guardSet.reason(p) else { continue }
            logger.warning("Fleet block list: no longer blocking \(p) here: \(why)")
            skipped.insert(p)
            changes.append(.remove(p))
            noteSkip()
        }
        guard !changes.isEmpty else { return }
        do { try firewall.apply(changes) } catch {
            logger.notice("Fleet block list: \(error.description); reloading the whole list")
            _ = replaceKernel(now: Clock.wallSeconds())
        }
        publish()
    }

    func start() {
        Thread.detachNewThread { [self] in run() }
    }

    func stop() {
        lock.lock(); stopping = true; lock.unlock()
    }

    var isStopping: Bool {
        lock.lock(); defer { lock.unlock() }
        return stopping
    }

    // MARK: the subscription thread

    func run() {
        restore()
        var delay = Self.backoffFirst
        var failing = false
        while !isStopping {
            switch pollOnce() {
            case .applied, .unchanged:
                if failing { logger.notice("Fleet block list: controller reachable again (revision \(revision))") }
                failing = false
                delay = Self.backoffFirst
                setConnected(true)
            case .failed(let why):
                checkStale(nowMillis: Clock.wall() / 1_000_000)
                if !failing { logger.warning("Fleet block list: \(why); keeping the last list (revision \(revision), \(entries.count) entries) and retrying") }
                failing = true
                setConnected(false)
                Thread.sleep(forTimeInterval: delay * Double.random(in: 0.5...1.0))
                delay = min(delay * 2, Self.backoffMax)
            }
        }
    }

    enum PollResult { case applied, unchanged, failed(String) }

    func pollOnce() -> PollResult {
        let digest = kernelDigest()
        let body = WireJSON.encode(PollRequest(revision: wantSnapshot ? 0 : revision, digest: digest, appliedMillis: appliedMillis,
                                               wait: Int64(Self.pollWaitSeconds)))
        let millis = Clock.wall() / 1_000_000
        guard let env = try? SignedEnvelope.sign(body: body, sensorID: enrollment.sensor, sequence: 0, timestampMillis: millis,
                                                 key: key, domain: BlockListProtocol.pollDomain) else { return .failed("cannot sign a poll") }
        let result = CurlTransfer.post(url: enrollment.url + BlockListProtocol.path, body: body, headers: [
            "\(ReportProtocol.sensorHeader): \(enrollment.sensor)",
            "\(ReportProtocol.timestampHeader): \(millis)",
            "\(ReportProtocol.digestHeader): \(Hex.encode(env.bodyDigest))",
            "\(ReportProtocol.signatureHeader): \(Hex.encode(env.signature))",
        ], caFile: enrollment.caFile, pin: enrollment.pin, timeout: Self.pollWaitSeconds + 15, limit: BlockListProtocol.maxUpdateBytes,
                                       reusing: connection)
        switch result {
        case .failure(let error): return .failed("controller unreachable (\(error.description))")
        case .success(let reply) where reply.status == 200:
            let update: BlockListUpdate?
            do {
                (_, update) = try PollReceipt.open(reply.body, sensor: enrollment.sensor, pollMillis: millis, key: controllerKey)
            } catch {
                logger.error("Fleet block list: refused an answer: \(error.description); the firewall is unchanged")
                return .failed(error.description)
            }
            noteFresh()
            guard let update else { return .unchanged }
            return apply(update) ? .applied : .failed("could not apply revision \(update.revision)")
        case .success(let reply):
            return .failed("controller answered \(reply.status): \(String(decoding: reply.body.prefix(200), as: UTF8.self))")
        }
    }

    /// A fresh, signed answer arrived: the list is known to be current.
    func noteFresh() {
        let now = Clock.wall() / 1_000_000
        lock.lock()
        let silent = published.lastFreshMillis > 0 && now - published.lastFreshMillis > staleAfter * 1000
        published.lastFreshMillis = now
        published.stale = false
        lock.unlock()
        if silent { logger.notice("Fleet block list: fresh signed answers from the controller again (revision \(revision))") }
    }

    /// Says so, once, when no fresh signed answer has arrived for longer than `staleAfter`:
    /// someone withholding updates must not freeze this sensor's list silently.
    func checkStale(nowMillis: Int64) {
        lock.lock()
        let since = published.lastFreshMillis > 0 ? published.lastFreshMillis : startedMillis
        let stale = nowMillis - since > staleAfter * 1000
        let newly = stale && !published.stale
        published.stale = stale
        lock.unlock()
        if newly {
            logger.error("Fleet block list: no fresh signed answer from the controller for \((nowMillis - since) / 1000) s (bound \(staleAfter) s): updates may be withheld; enforcing revision \(status.revision) as it stands")
        }
    }

    /// Applies a verified update; false if the firewall refused it.
    func apply(_ update: BlockListUpdate) -> Bool {
        applyLock.lock(); defer { applyLock.unlock() }
        let now = Clock.wallSeconds()
        if update.isSnapshot {
            // A snapshot replaces everything, unless it is older than what we hold (a replay).
            guard update.revision >= revision || update.issuedMillis > issuedMillis else {
                logger.warning("Fleet block list: ignored a stale snapshot (revision \(update.revision), holding \(revision))")
                return true
            }
            entries = [:]
            wantSnapshot = false
            for e in update.add where e.isLive(at: now) { entries[e.prefix] = e.expires }
            guard replaceKernel(now: now) else { return false }
        } else {
            guard update.base == revision else {
                logger.warning("Fleet block list: a delta from revision \(update.base) does not apply to \(revision); asking for a snapshot")
                wantSnapshot = true
                return true
            }
            var changes: [FirewallChange] = []
            for p in update.remove where entries.removeValue(forKey: p) != nil {
                if !skipped.contains(p) { changes.append(.remove(p)) }
            }
            let guardSet = Guard(protection: currentProtection())
            for e in update.add where e.isLive(at: now) {
                if let why = guardSet.reason(e.prefix) {
                    if !skipped.contains(e.prefix) {
                        logger.warning("Fleet block list: not blocking \(e.prefix): \(why)")
                        noteSkip()
                        // In force until now (an extension of an entry that covers a new session): out of the kernel.
                        if entries[e.prefix] != nil { changes.append(.remove(e.prefix)) }
                    }
                    skipped.insert(e.prefix)
                    entries[e.prefix] = e.expires
                    continue
                }
                // Re-adding an existing element would keep its old timeout: remove first.
                if entries[e.prefix] != nil { changes.append(.remove(e.prefix)) }
                entries[e.prefix] = e.expires
                changes.append(.add(e.prefix, seconds: e.expires == 0 ? nil : e.expires - now))
            }
            skipped = skipped.filter { entries[$0] != nil }
            do { try firewall.apply(changes) } catch {
                // An element the kernel already expired cannot be deleted: converge instead.
                logger.notice("Fleet block list: delta not applicable as is (\(error.description)); reloading the whole list")
                guard replaceKernel(now: now) else { return false }
            }
        }
        revision = update.revision
        issuedMillis = max(issuedMillis, update.issuedMillis)
        appliedMillis = Clock.wall() / 1_000_000
        save()
        publish()
        logger.info("Fleet block list: revision \(revision) applied (\(entries.count) entries, \(update.isSnapshot ? "snapshot" : "delta +\(update.add.count) -\(update.remove.count)"))")
        return true
    }

    func replaceKernel(now: Int64) -> Bool {
        let before = skipped
        skipped = []
        let guardSet = Guard(protection: currentProtection())
        var blocks: [(IPPrefix, seconds: Int64?)] = []
        for (p, expires) in entries where expires == 0 || expires > now {
            if let why = guardSet.reason(p) {
                if !before.contains(p) {
                    logger.warning("Fleet block list: not blocking \(p): \(why)")
                    noteSkip()
                }
                skipped.insert(p)
                continue
            }
            blocks.append((p, seconds: expires == 0 ? nil : expires - now))
        }
        do { try firewall.replaceAll(blocks) } catch {
            logger.error("Fleet block list: cannot load \(blocks.count) entries into \(firewall.name): \(error.description)")
            return false
        }
        return true
    }

    func currentProtection() -> Protection {
        lock.lock(); defer { lock.unlock() }
        return protection
    }

    /// The protection checks for one apply: the live sessions are asked of the kernel once,
    /// not once per entry (a snapshot may hold 100,000).
    struct Guard {
        let protection: Protection
        let sessions: [IPAddress]

        init(protection: Protection) {
            self.protection = protection
            if protection.sessionPorts.isEmpty {
                sessions = []
            } else if let all = SocketDiag.established() {
                sessions = all.filter { protection.sessionPorts.contains($0.localPort) }.map(\.remote)
            } else {
                sessions = ProtectedAddresses.sessionPeers(ports: protection.sessionPorts, procNet: "/proc/net")
            }
        }

        func reason(_ prefix: IPPrefix) -> String? {
            if let a = protection.addresses.first(where: { prefix.contains($0) }) {
                return "it covers \(a), which this host must never block"
            }
            if let p = protection.ignored.first(where: { prefix.contains($0.network) || $0.contains(prefix.network) }) {
                return "it overlaps \(p) in the ignore file"
            }
            if let a = sessions.first(where: { prefix.contains($0) }) {
                return "it covers \(a), the peer of a live session on PROTECT_PORTS"
            }
            return nil
        }
    }

    func noteSkip() {
        lock.lock(); published.skippedTotal += 1; lock.unlock()
    }

    func publish() {
        lock.lock()
        published.revision = revision
        published.entries = entries.count
        published.skippedNow = skipped.count
        lock.unlock()
    }

    /// What the kernel's fleet sets hold, plus what was deliberately skipped: equal to the
    /// controller's digest when nothing has drifted.
    func kernelDigest() -> String {
        applyLock.lock(); defer { applyLock.unlock() }
        let now = Clock.wallSeconds()
        var held: [BlockEntry]
        if let nft = firewall as? NftablesFirewall, let kernel = try? nft.entries() {
            held = kernel
        } else if let ipt = firewall as? IptablesFirewall, let kernel = try? ipt.entries() {
            held = kernel
        } else {
            held = entries.filter { !skipped.contains($0.key) }.map { BlockEntry(prefix: $0.key, expires: $0.value) }
        }
        held += skipped.compactMap { p in entries[p].map { BlockEntry(prefix: p, expires: $0) } }
        return BlockListProtocol.digest(held, now: now)
    }

    func setConnected(_ connected: Bool) {
        lock.lock(); published.connected = connected; lock.unlock()
    }

}
