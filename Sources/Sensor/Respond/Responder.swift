import Logging
import PortsentryShared

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
         commandBlocks: BlockedHosts? = nil, readsHostState: Bool = true, logger: Logger = Diagnostics.logger) {
        self.config = config
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
    func respond(to event: inout ScanEvent, now: Int64, quiet: Bool = false) {
        guard event.isActionable else { return }
        let source = event.source
        let ip = source.description

        if let reason = protected.reason(for: source) {
            markProtected(&event, reason: reason, now: now)
            return
        }
        let mode = event.proto == .tcp ? config.blockTCP : config.blockUDP
        if mode == .logOnly {
            event.noblock = .yes
            event.blocked = .no
            if legacy12, !quiet { logger.notice("attackalert: Ignoring \(event.proto) response per configuration file setting.") }
            return
        }
        // About to act: is the source an admin's session peer right now?
        if let (_, reason) = protection(covering: IPPrefix(host: source)) {
            markProtected(&event, reason: reason, now: now)
            return
        }
        event.noblock = .no
        // What this mode asks for, and what is already done for this host.
        let wantsNative = mode == .block && config.nativeFirewall != .none
        let wantsCommands = mode == .runCommandOnly || (mode == .block && config.hasKillActions)
        let runNative = wantsNative && blocks.covering(source, now: now) == nil
        let runCommands = wantsCommands && !commandBlocks.contains(source)
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
            return
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
            return
        }
        event.blocked = TriState(dispose(event, mode: mode, native: runNative, commands: runCommands, now: now))
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

    /// What one DisposeTarget did: whether anything was tried, whether anything worked, and
    /// whether a KILL_* action worked (those are remembered for good in BLOCKED_FILE).
    private struct Disposal {
        var attempted = false
        var succeeded = false
        var commandSucceeded = false

        mutating func commandWorked() {
            succeeded = true
            commandSucceeded = true
        }
    }

    /// Portsentry's DisposeTarget, for the parts not yet done for this host: the native
    /// block and/or the KILL_* actions. True if any action succeeded.
    private func dispose(_ event: ScanEvent, mode: SensorConfig.BlockMode, native: Bool, commands: Bool, now: Int64) -> Bool {
        let ip = event.source.description
        var done = Disposal()
        let runFirst = config.killRunCmdFirst
        if commands, let cmd = config.killRunCmd, runFirst || mode == .runCommandOnly {
            runCommand(cmd, for: event, &done) { "External command run for host: \(ip) using command: \"\($0)\"" }
        }
        var nativeBlock: Block? = nil
        if native {
            nativeBlock = blockNatively(event, now: now, attempted: &done.attempted, succeeded: &done.succeeded)
        }
        if mode == .block, commands {
            if let line = config.killHostsDeny { addToHostsDeny(line, for: event, &done) }
            if let route = config.killRoute {
                runCommand(route, for: event, &done) { "Host \(ip) has been blocked via dropped route using command: \"\($0)\"" }
            }
            if let cmd = config.killRunCmd, !runFirst {
                runCommand(cmd, for: event, &done) { "External command run for host: \(ip) using command: \"\($0)\"" }
            }
        }
        guard done.attempted else { return false }
        if done.succeeded {
            counters.blocked += 1
            // Remembered so that nothing is done twice: the native block until it expires,
            // the KILL_* actions for good (Portsentry's BLOCKED_FILE).
            if let nativeBlock { try? blocks.insert(nativeBlock) }
            if done.commandSucceeded { commandBlocks.add(event) }
        } else {
            logger.error("attackalert: Error during target dispose \(ip)/\(ip)!")
            onNotice?("Could not block \(ip): every configured action failed (see the log)")
        }
        return done.succeeded
    }

    /// KILL_ROUTE or KILL_RUN_CMD with $TARGET$, $PORT$ and $MODE$ filled in, under KILL_TIMEOUT.
    private func runCommand(_ template: String, for event: ScanEvent, _ done: inout Disposal, describe: (String) -> String) {
        let ip = event.source.description
        done.attempted = true
        let cmd = template.replacingAll("$TARGET$", with: ip).replacingAll("$PORT$", with: "\(event.port)")
            .replacingAll("$MODE$", with: event.kind == .connect ? "connect" : "stealth")
        if config.dryRun {
            logger.notice("attackalert: [dry run] \(describe(cmd))")
            done.commandWorked()
            return
        }
        let result = CommandRunner.shell(cmd, timeoutSeconds: config.killTimeout)
        if result.succeeded {
            logger.notice("attackalert: \(describe(cmd))")
            done.commandWorked()
        } else {
            counters.failures += 1
            logger.error("attackalert: command for host \(ip) failed (\(result.summary)): \"\(cmd)\"\(result.stderr.isEmpty ? "" : ": \(result.stderr)")")
        }
    }

    /// KILL_HOSTS_DENY: the line, with $TARGET$ (IPv6 in brackets) and $PORT$, added once.
    private func addToHostsDeny(_ line: String, for event: ScanEvent, _ done: inout Disposal) {
        let ip = event.source.description
        done.attempted = true
        let text = line.replacingAll("$TARGET$", with: event.source.isIPv4 ? ip : "[\(ip)]")
            .replacingAll("$PORT$", with: "\(event.port)")
        if config.dryRun {
            logger.notice("attackalert: [dry run] Host \(ip) has been blocked via wrappers with string: \"\(text)\"")
            done.commandWorked()
            return
        }
        do {
            switch try HostsDenyFile.add(line: text, to: config.hostsDenyFile) {
            case .added: logger.notice("attackalert: Host \(ip) has been blocked via wrappers with string: \"\(text)\"")
            case .alreadyPresent: logger.notice("Host \(ip) already in hosts.deny file, skipping.")
            }
            done.commandWorked()
        } catch {
            counters.failures += 1
            logger.error("attackalert: cannot block \(ip) via wrappers: \(error.description)")
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
