import Logging
import PortsentryShared
import SensorCore

/// Decides what to do about an actionable event and does it, then records the outcome in
/// the event's `noblock`/`blocked` fields before the line is written, as Portsentry does.
///
/// Order: protected addresses are never acted on; BLOCK_*="0" logs only; a host already
/// blocked is not blocked twice; the circuit breaker caps new blocks; then Portsentry's
/// DisposeTarget order (KILL_RUN_CMD first if asked, the native firewall, KILL_HOSTS_DENY,
/// KILL_ROUTE, KILL_RUN_CMD), each logged with Portsentry's attackalert line. A command that
/// exits non-zero is a failure. The host counts as blocked if any action succeeded.
final class Responder {
    private(set) var config: SensorConfig
    private let logger: Logger
    let firewall: (any FirewallBackend)?
    let blocks: BlockTable
    /// Hosts handed to the KILL_* actions (Portsentry's BLOCKED_FILE).
    let commandBlocks: BlockedHosts
    /// Started in a 1.2 mode: 1.2's wording for "ignoring" and "already blocked".
    var legacy12 = false
    private(set) var protected = ProtectedAddresses()
    private var breaker: CircuitBreaker
    /// When a protected address was last reported, so a spoofed flood "from" the gateway
    /// gives one line a minute, not one per packet.
    private var protectedWarned: [IPAddress: Int64] = [:]
    static let protectedWarningInterval: Int64 = 60
    private(set) var counters = Counters()
    /// Told about what deserves an alert beyond single events (breaker opened, failures).
    var onNotice: ((String) -> Void)? = nil
    /// Live: the KILL_* actions run here, off the capture thread. Nil (replay, tests): inline.
    let commandQueue: CommandQueue?
    /// Hosts whose KILL_* actions are queued or running: not queued twice.
    private var commandsInFlight: Set<IPAddress> = []

    struct Counters: Sendable {
        var blocked: UInt64 = 0
        var alreadyBlocked: UInt64 = 0
        var protectedSkipped: UInt64 = 0
        var breakerRefused: UInt64 = 0
        var failures: UInt64 = 0
        var expired: UInt64 = 0
        /// Packet capture time → kernel transaction committed, for native blocks.
        var lastBlockLatencyMicros: Int64 = 0
        var maxBlockLatencyMicros: Int64 = 0
    }

    /// False in replay: the host's gateways and sessions say nothing about a capture.
    private let readsHostState: Bool

    init(config: SensorConfig, firewall: (any FirewallBackend)?, blocks: BlockTable,
         commandBlocks: BlockedHosts? = nil, commandQueue: CommandQueue? = nil, readsHostState: Bool = true,
         logger: Logger = Diagnostics.logger) {
        self.config = config
        self.commandQueue = commandQueue
        self.readsHostState = readsHostState
        self.firewall = firewall
        self.blocks = blocks
        // Without BLOCKED_FILE (or in replay) the cache is in memory only.
        self.commandBlocks = commandBlocks ?? BlockedHosts()
        self.logger = logger
        breaker = CircuitBreaker(limit: config.blockRateLimit, window: config.blockRateWindow)
    }

    func update(_ config: SensorConfig) {
        self.config = config
        if config.blockRateLimit != breaker.limit || config.blockRateWindow != breaker.window {
            breaker = CircuitBreaker(limit: config.blockRateLimit, window: config.blockRateWindow)
        }
    }

    /// Re-reads gateways and resolvers.
    func refreshProtected() {
        guard readsHostState else { return }
        protected = ProtectedAddresses.read(gateways: config.protectGateways, resolvers: config.protectResolvers)
    }

    /// Why `prefix` must not be blocked, if it must not: a gateway or resolver in it, or a
    /// peer of an established session on PROTECT_PORTS (asked of the kernel now).
    func protection(covering prefix: IPPrefix) -> (IPAddress, ProtectedAddresses.Reason)? {
        if let hit = protected.all.first(where: { prefix.contains($0.0) }) { return hit }
        guard readsHostState, let peer = ProtectedAddresses.sessionPeer(in: prefix, ports: config.protectPorts) else { return nil }
        return (peer, .session)
    }

    var breakerOpen: Bool { breaker.isOpen }

    /// `now` is wall-clock seconds (block expiry survives restarts). `quiet` leaves out the
    /// per-event lines ("already blocked", 1.2's "Ignoring ... response"): the output
    /// limiter did not admit this event's lines, so a flood cannot flood the log through them.
    /// True when the event's KILL_* actions went to the worker: its outcome, and so the
    /// event's line, come from `collectCommandResults` once they have run (Portsentry writes
    /// the line after its actions, and the line says whether they worked).
    @discardableResult
    func respond(to event: inout ScanEvent, now: Int64, quiet: Bool = false) -> Bool {
        guard event.isActionable else { return false }
        let source = event.source
        let ip = source.description

        if let reason = protected.reason(for: source) {
            markProtected(&event, reason: reason, now: now)
            return false
        }
        let mode = event.proto == .tcp ? config.blockTCP : config.blockUDP
        if mode == .logOnly {
            event.noblock = .yes
            event.blocked = .no
            if legacy12, !quiet { logger.notice("attackalert: Ignoring \(event.proto) response per configuration file setting.") }
            return false
        }
        // About to act: is the source an admin's session peer right now?
        if let (_, reason) = protection(covering: IPPrefix(host: source)) {
            markProtected(&event, reason: reason, now: now)
            return false
        }
        event.noblock = .no
        // What this mode asks for, and what is already done for this host.
        let wantsNative = mode == .block && config.nativeFirewall != .none
        let wantsCommands = mode == .runCommandOnly || (mode == .block && config.hasKillActions)
        let runNative = wantsNative && blocks.covering(source, now: now) == nil
        let runCommands = wantsCommands && !commandBlocks.contains(source) && !commandsInFlight.contains(source)
        if !runNative, !runCommands {
            if !quiet {
                if legacy12, event.kind == .connect {
                    logger.notice("attackalert: Host: \(ip) is already blocked. Ignoring")
                } else {
                    logger.notice("attackalert: Host: \(ip)/\(ip) is already blocked Ignoring")
                }
            }
            counters.alreadyBlocked += 1
            event.blocked = .yes
            return false
        }
        let (allowed, transition) = breaker.request(now: now)
        if transition == .opened {
            let text = "Circuit breaker open: \(breaker.limit) blocks started within \(config.blockRateWindow)s; "
                + "no new blocks until the rate falls (events are still logged)"
            logger.error("attackalert: \(text)")
            onNotice?(text)
        }
        guard allowed else {
            counters.breakerRefused += 1
            event.blocked = .no
            return false
        }
        guard let done = dispose(event, mode: mode, native: runNative, commands: runCommands, now: now, report: !quiet) else {
            return true
        }
        event.blocked = TriState(done)
        return false
    }

    private func markProtected(_ event: inout ScanEvent, reason: ProtectedAddresses.Reason, now: Int64) {
        event.ignored = .yes
        event.ignoreReason = .protected
        event.noblock = .yes
        event.blocked = .no
        counters.protectedSkipped += 1
        if protectedWarned[event.source].map({ now - $0 >= Self.protectedWarningInterval }) ?? true {
            protectedWarned[event.source] = now
            if protectedWarned.count > 1024 { protectedWarned.removeAll() }
            logger.warning("""
                attackalert: Host \(event.source) is protected (\(reason.rawValue)); not acting on probes \
                "from" it (they are most likely spoofed)
                """)
        }
    }

    /// Portsentry's DisposeTarget, for the parts not yet done for this host: the native
    /// block and/or the KILL_* actions. True if any action succeeded; nil when the outcome is
    /// not known yet (the KILL_* actions went to the worker and no native block was tried).
    private func dispose(_ event: ScanEvent, mode: SensorConfig.BlockMode, native: Bool, commands: Bool, now: Int64,
                         report: Bool) -> Bool? {
        let kill = KillActions(config: config, logger: logger)
        var done = KillActions.Outcome()
        var queued = false
        if commands, commandQueue == nil { merge(kill.run(.beforeNative, for: event, mode: mode), into: &done) }
        var nativeBlock: Block? = nil
        if native {
            nativeBlock = blockNatively(event, now: now, attempted: &done.attempted, succeeded: &done.succeeded)
        }
        if commands {
            if let commandQueue {
                var held = event
                held.blocked = native ? TriState(done.succeeded) : .unset
                queued = commandQueue.submit(.init(event: held, report: report) {
                    var outcome = kill.run(.beforeNative, for: event, mode: mode)
                    let rest = kill.run(.afterNative, for: event, mode: mode)
                    (outcome.attempted, outcome.succeeded) = (outcome.attempted || rest.attempted, outcome.succeeded || rest.succeeded)
                    outcome.failures += rest.failures
                    return outcome
                })
                if queued {
                    commandsInFlight.insert(event.source)
                } else {
                    counters.failures += 1
                    logger.error("attackalert: KILL_* actions for \(event.source) not run: \(CommandQueue.capacity) commands are already waiting (the commands are slower than the blocks asked of them)")
                }
            } else {
                merge(kill.run(.afterNative, for: event, mode: mode), into: &done)
            }
        }
        if done.succeeded, let nativeBlock { try? blocks.insert(nativeBlock) }
        if queued {
            // The rest comes with the KILL_* outcome (`collectCommandResults`).
            counters.failures += UInt64(done.failures)
            if done.succeeded { counters.blocked += 1 }
            return nil
        }
        guard done.attempted else { return false }
        settle(event, done, commandsRan: commands)
        return done.succeeded
    }

    private func merge(_ o: KillActions.Outcome, into done: inout KillActions.Outcome) {
        done.attempted = done.attempted || o.attempted
        done.succeeded = done.succeeded || o.succeeded
        done.failures += o.failures
    }

    /// Counts one DisposeTarget's outcome and remembers what worked: the native block until
    /// it expires, the KILL_* actions for good (Portsentry's BLOCKED_FILE).
    private func settle(_ event: ScanEvent, _ done: KillActions.Outcome, commandsRan: Bool) {
        counters.failures += UInt64(done.failures)
        if done.succeeded {
            counters.blocked += 1
            if commandsRan { commandBlocks.add(event) }
        } else {
            let ip = event.source.description
            logger.error("attackalert: Error during target dispose \(ip)/\(ip)!")
            onNotice?("Could not block \(ip): every configured action failed (see the log)")
        }
    }

    /// The events whose KILL_* actions the worker finished since the last call, each with
    /// its final `blocked` (a native block or any action worked), and whether its line is to
    /// be written (the output limiter admitted it). Capture thread.
    func collectCommandResults() -> [(event: ScanEvent, report: Bool)] {
        guard let commandQueue else { return [] }
        return commandQueue.completed().map { finished in
            var event = finished.event
            let nativeWorked = event.blocked == .yes
            commandsInFlight.remove(event.source)
            counters.failures += UInt64(finished.outcome.failures)
            if finished.outcome.succeeded {
                commandBlocks.add(event)
                if !nativeWorked { counters.blocked += 1 }
            } else if finished.outcome.attempted, !nativeWorked {
                let ip = event.source.description
                logger.error("attackalert: Error during target dispose \(ip)/\(ip)!")
                onNotice?("Could not block \(ip): every configured action failed (see the log)")
            }
            event.blocked = TriState(nativeWorked || finished.outcome.succeeded)
            return (event, finished.report)
        }
    }

    private func blockNatively(_ event: ScanEvent, now: Int64, attempted: inout Bool, succeeded: inout Bool) -> Block? {
        attempted = true
        let offense = blocks.recordOffense(event.source, policy: config.blockPolicy, now: now)
        let seconds = config.blockPolicy.seconds(forOffense: offense)
        let target = IPPrefix(host: event.source)
        let block = Block(target: target, created: now, expires: seconds.map { now + $0 }, origin: .detection,
                          reason: reason(event), offense: offense)
        let how = "\(config.dryRun ? "dry-run" : firewall?.name ?? "firewall") for \(DurationText.format(seconds))"
            + (offense > 1 ? " (offense \(offense))" : "")
        if config.dryRun {
            logger.notice("attackalert: [dry run] Host \(event.source) has been blocked via \(how)")
            succeeded = true
            return block
        }
        guard let firewall else { return nil }
        do {
            let applyStart = Clock.wall()
            try firewall.apply([.add(target, seconds: seconds)])
            let applyMicros = (Clock.wall() - applyStart) / 1000
            // The packet's capture time stamp to now: how long the scanner had before the drop.
            let latency = max((Clock.wall() - event.time) / 1000, 0)
            counters.lastBlockLatencyMicros = latency
            counters.maxBlockLatencyMicros = max(counters.maxBlockLatencyMicros, latency)
            logger.notice("attackalert: Host \(event.source) has been blocked via \(how)")
            logger.info("Block of \(event.source) in the kernel \(latency) µs after its packet was captured (nftables transaction \(applyMicros) µs, before it \((applyStart - event.time) / 1000) µs)")
            succeeded = true
            return block
        } catch {
            counters.failures += 1
            logger.error("attackalert: cannot block \(event.source) via \(firewall.name): \(error.description)")
            return nil
        }
    }

    private func reason(_ e: ScanEvent) -> String { "\(e.kind.label) on \(e.proto) port \(e.port)" }

    // MARK: manual control (the control socket)

    /// `portsentry blocks add`: blocks `target` now, or extends a block already in force.
    func manualBlock(_ target: IPPrefix, seconds: Int64?, now: Int64) throws(FirewallError) -> Block {
        let block = Block(target: target, created: now, expires: seconds.map { now + $0 }, origin: .manual,
                          reason: "added by the administrator", offense: 1)
        let existing = blocks.blocks[target]
        if !config.dryRun {
            guard let firewall else { throw FirewallError("no firewall is configured (FIREWALL=\"none\" and no native backend)") }
            // Extending means remove + add in one transaction: re-adding keeps the old timeout.
            let changes: [FirewallChange] = (existing == nil ? [] : [.remove(target)]) + [.add(target, seconds: seconds)]
            try firewall.apply(changes)
        }
        do { try blocks.insert(block) } catch {
            if existing == nil, !config.dryRun { try? firewall?.apply([.remove(target)]) }
            throw FirewallError(error.description)
        }
        logger.notice("attackalert: Host \(target) has been blocked by the administrator for \(DurationText.format(seconds))")
        return block
    }

    /// `portsentry blocks remove`.
    func manualUnblock(_ target: IPPrefix) throws(FirewallError) -> Block? {
        let forgotten = target.isHost && commandBlocks.remove(target.network)
        if forgotten {
            logger.notice("\(target.network) removed from the block cache\(commandBlocks.path.map { " (\($0))" } ?? ""): its KILL_* actions run again on its next event; what they did (hosts.deny line, route) stays until removed by hand")
        }
        guard let existing = blocks.blocks[target] else {
            if forgotten { return nil }
            throw FirewallError("\(target) is not blocked")
        }
        if !config.dryRun, let firewall, existing.expires != nil || config.nativeFirewall != .none {
            try firewall.apply([.remove(target)])
        }
        blocks.remove(target)
        logger.notice("Block on \(target) removed by the administrator")
        return existing
    }

    /// `portsentry blocks flush`: every block lifted, in the kernel and in the state.
    func flushAll() throws(FirewallError) -> Int {
        if !config.dryRun, let firewall { try firewall.replaceAll([]) }
        let n = blocks.removeAll().count + commandBlocks.removeAll()
        logger.notice("All \(n) blocks removed by the administrator")
        return n
    }

    /// Forgets blocks whose time is up (the kernel dropped them on its own).
    func expire(now: Int64) {
        for b in blocks.removeExpired(now: now) {
            counters.expired += 1
            logger.notice("Block on \(b.target) expired (\(b.reason))")
        }
        breaker.prune(now: now)
    }
}

enum DurationText {
    /// `1h`, `1h59m58s`, `7d`; nil is "ever" (a permanent block).
    static func format(_ seconds: Int64?) -> String {
        guard var s = seconds else { return "ever" }
        if s == 0 { return "0s" }
        var out = ""
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60), ("s", 1)] where s >= size {
            out += "\(s / size)\(unit)"
            s %= size
        }
        return out
    }
}

extension String {
    /// Plain substring replacement without Foundation.
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
