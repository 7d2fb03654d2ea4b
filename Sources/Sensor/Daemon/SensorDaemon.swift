import CLinux
import Foundation
import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
#endif

/// The long-running sensor: one thread, one poll loop over the capture handles (or the
/// connect-mode sockets), the signalfd and the netlink socket. Packets go
/// capture → parse → detect → respond → report without leaving this thread.
final class SensorDaemon {
    /// Packets read from one handle before looking at the others and at signals again:
    /// keeps a flood on one interface from starving the rest or delaying SIGTERM.
    static let batchSize = 1024
    /// Poll timeout: the longest a timer (socket refresh, summaries) can be late.
    static let pollMillis: Int32 = 250
    /// Poll timeout while events wait for the controller: they go out within `Uplink.maxAgeNanos`.
    static let uplinkPollMillis: Int32 = 20
    /// Pause after a wake-up that found only a few packets (see the loop).
    static let coalesceMicros: UInt32 = 1000
    /// Listener snapshot age before it is re-read (Portsentry bind()s once per packet).
    static let socketRefresh: Int64 = 2 * nanosPerSecond
    /// Gateways and resolvers change rarely; sessions are re-read anyway right before a block.
    static let protectedRefresh: Int64 = 5 * nanosPerSecond
    /// Established connections are re-read this often: an admin session that starts is
    /// protected here and reported to the controller within it (one sock_diag dump).
    static let sessionScan: Int64 = 1 * nanosPerSecond
    /// Block expiry and state saving.
    static let housekeeping: Int64 = 1 * nanosPerSecond
    /// Interfaces are re-read on every netlink event; this is the fallback period.
    static let interfaceRescan: Int64 = 30 * nanosPerSecond
    /// How often pcap drop counters are checked and reported when they grow.
    static let statsInterval: Int64 = 60 * nanosPerSecond

    private let logger = Diagnostics.logger
    private let configPath: String
    private var config: SensorConfig
    private let options: RunOptions
    private let pipeline: EventPipeline
    private var detector: Detector { pipeline.detector }
    private var responder: Responder { pipeline.responder }
    private var reporter: EventReporter {
        get { pipeline.reporter }
        set { pipeline.reporter = newValue }
    }
    private let signals: SignalInbox
    private let monitor = InterfaceMonitor()
    private var handles: [String: PcapHandle] = [:]
    private var connectSockets: ConnectModeSockets? = nil
    private var control: ControlServer? = nil
    private var alerts: AlertSender? {
        get { pipeline.alerts }
        set { pipeline.alerts = newValue }
    }
    /// Reports to the controller, when the sensor is enrolled.
    private var uplink: Uplink? {
        get { pipeline.uplink }
        set { pipeline.uplink = newValue }
    }
    /// Enforces the controller's fleet-wide block list, when the sensor is enrolled.
    private var fleet: FleetSubscription? = nil
    /// The controller's address, when its URL names one: never blocked here.
    private var controllerAddress: IPAddress? = nil
    private let started = Clock.monotonic()
    private var filterAddresses: [IPAddress] = []
    /// The on-link networks of this host's interfaces (reported so the controller can tell a
    /// plausible gateway claim from a foreign one).
    private var ownNetworks: [IPPrefix] = []
    private var sessions = SessionWatch()
    private var filterAnyListenersTCP = PortSet()
    private var filterAnyListenersUDP = PortSet()
    private var reportedDrops: [String: UInt64] = [:]
    private var stopping = false
    private let statePath: String
    /// A state-file write error is reported once, not every second.
    private var stateSaveFailed = false

    init(configPath: String, config: SensorConfig, ignore: AddressSet, options: RunOptions) throws(TextFile.Failure) {
        self.configPath = configPath
        self.config = config
        self.options = options
        var host = HostView()
        host.serviceCheck = options.serviceCheck
        if let range = LocalSockets.ephemeralRange() { host.ephemeralPorts = range }
        let settings = SettingsBuilder.detection(config, options)
        let detector = Detector(settings: settings, host: host, ignore: ignore)
        let reporter = EventReporter(config: config, console: .logged(options.consoleFormat), legacy12: options.legacy12)
        statePath = config.stateDir + "/blocks.json"
        let firewall: (any FirewallBackend)?
        let blocks: BlockTable
        do {
            firewall = try FirewallFactory.make(config)
            blocks = try BlockTable.load(from: statePath, now: Clock.wallSeconds())
        } catch {
            throw TextFile.Failure(description: "\(error)")
        }
        let blockedFormat: BlockedHosts.Format
        switch (config.historyFormat, options.mode) {
        case (.portsentry2, _): blockedFormat = .binary
        case (.portsentry12, .connect): blockedFormat = .text12(tcp: "tcp", udp: "udp")
        case (.portsentry12, .stealth): blockedFormat = .text12(tcp: "stcp", udp: "sudp")
        case (.portsentry12, .advanced): blockedFormat = .text12(tcp: "atcp", udp: "audp")
        }
        let commandBlocks = try config.blockedFile.map { path throws(TextFile.Failure) in
            try BlockedHosts(file: path, format: blockedFormat)
        }
        let responder = Responder(config: config, firewall: firewall, blocks: blocks, commandBlocks: commandBlocks)
        responder.legacy12 = options.legacy12
        pipeline = EventPipeline(detector: detector, responder: responder, reporter: reporter)
        if let commandBlocks, commandBlocks.count > 0 {
            logger.notice("\(commandBlocks.count) hosts already blocked by KILL_* actions (BLOCKED_FILE \(commandBlocks.path ?? ""))")
        }
        signals = try SignalInbox()
        startAlerts(config.alerts)
        do {
            if let (enrollment, key) = try Enrollment.load(stateDir: config.stateDir) {
                uplink = try Uplink(enrollment: enrollment, key: key, stateDir: config.stateDir,
                                    maxSpoolBytes: config.spoolMaxMB << 20)
                logger.notice("Reporting to the controller at \(enrollment.url) as \(enrollment.sensor)")
                fleet = try FleetSubscription(enrollment: enrollment, key: key, firewall: try FirewallFactory.makeFleet(config),
                                              stateDir: config.stateDir, staleAfter: config.fleetStaleAfter)
                controllerAddress = URLComponents(string: enrollment.url)?.host.flatMap {
                    IPAddress($0.trimmingCharacters(in: CharacterSet(charactersIn: "[]")))
                }
            }
        } catch {
            throw TextFile.Failure(description: "controller enrollment in \(config.stateDir): \(error)")
        }
        try reporter.prepare()
        for warning in SettingsBuilder.warnings(settings, config, ephemeral: host.ephemeralPorts) {
            logger.warning("\(warning)")
        }
    }

    /// Runs until SIGTERM/SIGINT. Returns the process exit status.
    func run() -> Int32 {
        refreshSockets(force: true)
        refreshInterfaces()
        if options.mode == .connect {
            connectSockets = ConnectModeSockets(tcp: detector.settings.tripwireTCP, udp: detector.settings.tripwireUDP,
                                                banner: config.portBanner, logger: logger)
            if connectSockets?.isEmpty ?? true {
                logger.error("connect mode: no port could be bound; nothing to watch")
                return 1
            }
        } else if handles.isEmpty {
            logger.warning("no interface to capture on yet (\(options.interfaces.base)); waiting for one to appear")
        }
        // Blocking configured: set the firewall up now, so the first block is one element add,
        // and a firewall that cannot be used is an error at start, not at the first attack.
        if let firewall = responder.firewall, config.blockTCP == .block || config.blockUDP == .block {
            do { try firewall.prepare() } catch {
                logger.error("BLOCK_TCP/BLOCK_UDP=\"1\" but the \(firewall.name) firewall cannot be used: \(error.description)")
                return 1
            }
        }
        restoreBlocks()
        responder.refreshProtected()
        _ = sessions.scan(ports: config.protectPorts, ignoring: { self.detector.host.ownAddresses.contains($0) })
        publishProtected()
        fleet?.start()
        openControlSocket()
        Privileges.dropUnneeded(logger: logger)
        logger.notice("Portsentry is now active and listening.")

        var lastSockets = Clock.monotonic()
        var lastProtected = lastSockets
        var lastSessions = lastSockets
        var lastHousekeeping = lastSockets
        var lastHeartbeat: Int64? = nil
        var lastInterfaces = lastSockets
        var lastStats = lastSockets
        var interfacesDirty = false
        while !stopping {
            var busy = false
            var packets = 0
            for handle in handles.values {
                let n = drain(handle)
                packets += n
                if n == Self.batchSize { busy = true }
            }
            if packets > 0, !busy {
                // Traffic, but only a trickle per wake-up: let a few more packets gather
                // before the next poll. Under a flood this turns ~40,000 wake-ups a second
                // into ~1,000 (the cost is up to 1 ms of added latency); idle, nothing changes.
                usleep(Self.coalesceMicros)
            }
            var fds = pollSet()
            let timeout = busy || packets > 0 ? 0 : (uplink?.hasPending == true ? Self.uplinkPollMillis : Self.pollMillis)
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready > 0 {
                for pfd in fds where pfd.revents != 0 {
                    if pfd.fd == signals.fd { handleSignals() }
                    else if pfd.fd == monitor.fd { monitor.drain(); interfacesDirty = true }
                    else if let control, pfd.fd == control.fd { control.serve(handleControl) }
                    else if let connect = connectSockets, connect.owns(pfd.fd) {
                        connect.accept(fd: pfd.fd) { from, to, proto, port in
                            pipeline.connection(from: from, to: to, proto: proto, port: port, now: Clock.monotonic(),
                                                wallTime: Clock.wall())?.event.isActionable ?? false
                        }
                    }
                }
            }
            let now = Clock.monotonic()
            if now - lastSockets >= Self.socketRefresh {
                lastSockets = now
                refreshSockets(force: false)
            }
            if now - lastProtected >= Self.protectedRefresh {
                lastProtected = now
                responder.refreshProtected()
                publishProtected()
            }
            if now - lastSessions >= Self.sessionScan {
                lastSessions = now
                let fresh = sessions.scan(ports: config.protectPorts, ignoring: { self.detector.host.ownAddresses.contains($0) })
                if !fresh.isEmpty {
                    logger.notice("Live session on PROTECT_PORTS from \(fresh.map(\.description).joined(separator: ", ")): protected here and reported to the controller")
                    publishProtected()
                    fleet?.reprotect()
                    if let uplink {
                        lastHeartbeat = now
                        uplink.heartbeat(heartbeatStatus(), urgent: true)
                    }
                }
            }
            if now - lastHousekeeping >= Self.housekeeping {
                lastHousekeeping = now
                responder.expire(now: Clock.wallSeconds())
                saveBlocks()
                fleet?.checkStale(nowMillis: Clock.wall() / 1_000_000)
            }
            if interfacesDirty || now - lastInterfaces >= Self.interfaceRescan {
                interfacesDirty = false
                lastInterfaces = now
                refreshInterfaces()
            }
            if now - lastStats >= Self.statsInterval {
                lastStats = now
                reportDrops(final: false)
            }
            reporter.tick(now: now)
            alerts?.tick(now: now)
            uplink?.tick(now: now)
            if let uplink, lastHeartbeat.map({ now - $0 >= Int64(Uplink.heartbeatInterval) * nanosPerSecond }) ?? true {
                lastHeartbeat = now
                uplink.heartbeat(heartbeatStatus())
            }
        }
        uplink?.stop()
        fleet?.stop()
        alerts?.flush(waitSeconds: 5)
        alerts?.stop()
        saveBlocks()
        reportDrops(final: true)
        reporter.finish()
        logCounters()
        logger.notice("Portsentry is shutting down")
        return 0
    }

    // MARK: packets

    /// Reads up to `batchSize` packets; returns how many were read.
    @inline(__always)
    private func drain(_ handle: PcapHandle) -> Int {
        let now = Clock.monotonic()
        let link = handle.linkType
        let scale = handle.nanosecondStamps ? 1 : 1000
        var read = 0
        for _ in 0..<Self.batchSize {
            let next: PcapHandle.Next
            do { next = try handle.next() } catch {
                logger.error("\(error.description); closing this capture (it is reopened if the interface returns)")
                handles[handle.name] = nil
                return 0
            }
            guard case .packet(let frame, let seconds, let sub) = next else { return read }
            read += 1
            guard case .packet(let packet) = PacketParser.parse(frame, linkType: link) else { continue }
            let wall = Int64(seconds) * nanosPerSecond + Int64(sub * scale)
            pipeline.packet(packet, now: now, wallTime: wall)
        }
        return read
    }

    private func pollSet() -> [pollfd] {
        var fds = [pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0)]
        if monitor.fd >= 0 { fds.append(pollfd(fd: monitor.fd, events: Int16(POLLIN), revents: 0)) }
        for h in handles.values { fds.append(pollfd(fd: h.selectableFD, events: Int16(POLLIN), revents: 0)) }
        for fd in connectSockets?.fds ?? [] { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
        if let control { fds.append(pollfd(fd: control.fd, events: Int16(POLLIN), revents: 0)) }
        return fds
    }

    // MARK: blocks

    /// Fail-static restart: every block still in force goes back into the kernel, with its
    /// remaining time, in one transaction; expired ones were dropped when the state loaded.
    ///
    /// Only when this run blocks: a log-only sensor leaves the firewall as it found it and
    /// says what an earlier blocking run left behind.
    private func restoreBlocks() {
        let now = Clock.wallSeconds()
        let live = responder.blocks.blocks.values.map { ($0.target, seconds: $0.remaining(now: now)) }
        guard !live.isEmpty else { return }
        guard config.blockTCP == .block || config.blockUDP == .block else {
            logger.warning("\(live.count) block(s) left by an earlier run in \(statePath) are not enforced: this run does not block (BLOCK_TCP/BLOCK_UDP). Anything they left in the firewall stays until it expires; `portsentry blocks flush` lifts it and clears the file")
            return
        }
        guard let firewall = responder.firewall else { return }
        do {
            let started = Clock.monotonic()
            try firewall.replaceAll(live)
            let millis = (Clock.monotonic() - started) / 1_000_000
            logger.notice("Restored \(live.count) blocks from \(statePath) into \(firewall.name) with their remaining time in \(millis) ms")
        } catch {
            logger.error("Cannot restore \(live.count) blocks into \(firewall.name): \(error.description)")
        }
    }

    private func saveBlocks() {
        guard responder.blocks.dirty, !config.dryRun else { return }
        do {
            try AppendFile.makeDirectories(for: statePath, mode: 0o700)
            try responder.blocks.save(to: statePath)
            if stateSaveFailed { logger.notice("Block state saved to \(statePath) again") }
            stateSaveFailed = false
        } catch {
            if !stateSaveFailed { logger.error("Cannot save block state: \(error)") }
            stateSaveFailed = true
        }
    }

    // MARK: alerts

    private func startAlerts(_ settings: AlertSettings) {
        guard settings.enabled else {
            alerts = nil
            responder.onNotice = nil
            return
        }
        let sender = AlertSender(settings: settings)
        alerts = sender
        responder.onNotice = { text in sender.notice(text, now: Clock.monotonic()) }
    }

    /// What a heartbeat tells the controller.
    private func heartbeatStatus() -> CanonicalJSON {
        var received: Int64 = 0, dropped: Int64 = 0
        for h in handles.values {
            if let s = h.stats() { received += Int64(s.received); dropped += Int64(s.dropped + s.interfaceDropped) }
        }
        let c = detector.counters
        return .object([
            "version": .string(sensorVersion),
            "mode": .string(options.mode.rawValue),
            "uptime_seconds": .int((Clock.monotonic() - started) / nanosPerSecond),
            "interfaces": .array(handles.keys.sorted().map { .string($0) }),
            "pcap_received": .int(received), "pcap_dropped": .int(dropped),
            "probes": .int(Int64(c.probes)), "closed_port_scans": .int(Int64(c.closedPortScans)),
            "events_written": .int(Int64(reporter.limiter.written)),
            "events_suppressed": .int(Int64(reporter.limiter.total.total)),
            "blocks": .int(Int64(responder.blocks.count)), "breaker_open": .bool(responder.breakerOpen),
            "protected": .array(protectedAddresses().map { .string($0.description) }),
            "blocklist_revision": .int(fleet?.status.revision ?? 0),
            "blocklist_entries": .int(Int64(fleet?.status.entries ?? 0)),
            "blocklist_skipped": .int(Int64(fleet?.status.skippedNow ?? 0)),
            "blocklist_stale": .bool(fleet?.status.stale ?? false),
            "protection": protectionReport().canonical,
            "uplink": uplink.map { u in
                var c = u.counters.canonical
                let backlog = u.spoolBacklog
                if case .object(var fields) = c {
                    fields["spool_batches"] = .int(Int64(backlog.batches))
                    fields["spool_bytes"] = .int(Int64(backlog.bytes))
                    c = .object(fields)
                }
                return c
            } ?? .null,
        ])
    }

    /// What the controller needs to keep this host, its neighbours and its admins off the
    /// fleet list (see `ProtectionReport`).
    private func protectionReport() -> ProtectionReport {
        var r = ProtectionReport()
        r.addresses = filterAddresses.filter { !$0.isLoopback }
        r.networks = ownNetworks
        for (address, reason) in responder.protected.all {
            switch reason {
            case .gateway: r.gateways.append(address)
            case .resolver: r.resolvers.append(address)
            default: break
            }
        }
        if let controllerAddress { r.controller = [controllerAddress] }
        r.ignored = detector.ignore.prefixes
        r.sessions = sessions.sessions.sorted()
        r.peers = sessions.takePeers()
        r.fleetSkipped = fleet?.status.skippedTotal ?? 0
        return r.bounded()
    }

    /// Gateways, resolvers and the controller: never blocked here, and reported so the
    /// controller never blocks them fleet-wide.
    private func protectedAddresses() -> [IPAddress] {
        var list = responder.protected.all.map(\.0)
        if let controllerAddress { list.append(controllerAddress) }
        return list
    }

    private func publishProtected() {
        fleet?.setProtected(FleetSubscription.Protection(addresses: protectedAddresses() + filterAddresses + sessions.sessions,
                                                         ignored: detector.ignore.prefixes, sessionPorts: config.protectPorts))
    }

    // MARK: control socket

    /// CONTROL_SOCKET, or, for the second of Debian's two 1.2 processes (`-tcp` and `-udp`
    /// share one config), a socket named after its mode next to it.
    private func openControlSocket() {
        do {
            control = try ControlServer(path: config.controlSocket)
            return
        } catch {
            if let mode = options.legacy12Name, ControlClient.answers(config.controlSocket) {
                let path = Self.socketPath(config.controlSocket, mode: mode)
                if let server = try? ControlServer(path: path) {
                    control = server
                    logger.notice("\(config.controlSocket) is another sensor's (Debian starts -tcp and -udp as two processes); this -\(mode) one answers on \(path) (portsentry status --socket \(path))")
                    return
                }
            }
            logger.error("Control socket unavailable (portsentry blocks/status will not work): \(error.description)")
        }
    }

    /// `/run/portsentry/control.sock` → `/run/portsentry/control-udp.sock`.
    static func socketPath(_ path: String, mode: String) -> String {
        let directory = PathRules.parent(of: path)
        var name = String(path.dropFirst(directory == "/" ? 1 : directory.count + 1))
        var suffix = ""
        if let dot = name.lastIndex(of: "."), dot != name.startIndex {
            suffix = String(name[dot...])
            name = String(name[..<dot])
        }
        return (directory == "/" ? "" : directory) + "/" + name + "-" + mode + suffix
    }

    private func handleControl(_ request: [String: Any]) -> [String: Any] {
        let now = Clock.wallSeconds()
        func fail(_ message: String) -> [String: Any] { ["ok": false, "error": message] }
        func target() -> Result<IPPrefix, FirewallError> {
            guard let text = request["target"] as? String else { return .failure(FirewallError("missing target")) }
            do { return .success(try IPPrefix(parsing: text)) } catch { return .failure(FirewallError(error.description)) }
        }
        switch request["command"] as? String {
        case "status":
            return ["ok": true, "status": status(now: now)]
        case "blocks.list":
            let list = responder.blocks.blocks.values.sorted { $0.created < $1.created }.map { b -> [String: Any] in
                var o: [String: Any] = ["target": b.target.description, "created": b.created, "origin": b.origin.rawValue,
                                        "reason": b.reason, "offense": b.offense]
                if let e = b.expires { o["expires"] = e; o["remaining"] = max(e - now, 0) }
                return o
            }
            let cached = responder.commandBlocks.hosts.sorted().map { a -> [String: Any] in
                ["target": IPPrefix(host: a).description, "origin": "kill-actions",
                 "reason": "KILL_* actions ran (BLOCKED_FILE); permanent until removed"]
            }
            return ["ok": true, "blocks": list + cached, "firewall": responder.firewall?.name ?? "none"]
        case "blocks.add":
            let t: IPPrefix
            switch target() {
            case .failure(let e): return fail(e.description)
            case .success(let p): t = p
            }
            if let why = protectionConflict(t) { return fail("refusing to block \(t): \(why)") }
            let seconds: Int64? = (request["permanent"] as? Bool) == true ? nil
                : (request["seconds"] as? Int).map(Int64.init) ?? config.blockPolicy.baseSeconds
            do {
                let b = try responder.manualBlock(t, seconds: seconds, now: now)
                saveBlocks()
                return ["ok": true, "target": b.target.description, "expires": b.expires as Any]
            } catch { return fail(error.description) }
        case "blocks.remove":
            switch target() {
            case .failure(let e): return fail(e.description)
            case .success(let t):
                do {
                    _ = try responder.manualUnblock(t)
                    saveBlocks()
                    return ["ok": true, "target": t.description]
                } catch { return fail(error.description) }
            }
        case "blocks.flush":
            do {
                let n = try responder.flushAll()
                saveBlocks()
                return ["ok": true, "removed": n]
            } catch { return fail(error.description) }
        case let other:
            return fail("unknown command \(other ?? "(none)")")
        }
    }

    /// Why `target` must not be blocked, if it must not: it covers the host itself, an
    /// ignored network, a gateway, a resolver or an admin's session.
    private func protectionConflict(_ target: IPPrefix) -> String? {
        for p in detector.host.ownAddresses.prefixes where target.contains(p.network) {
            return "it covers this host's own address \(p.network)"
        }
        for p in detector.ignore.prefixes where target.contains(p.network) || p.contains(target.network) {
            return "it overlaps \(p) in the ignore file"
        }
        responder.refreshProtected()
        if let (address, reason) = responder.protection(covering: target) {
            return "it covers \(address), a \(reason.rawValue)"
        }
        return nil
    }

    private func status(now: Int64) -> [String: Any] {
        let c = detector.counters
        let r = responder.counters
        var interfaces: [[String: Any]] = []
        for (name, handle) in handles.sorted(by: { $0.key < $1.key }) {
            var o: [String: Any] = ["name": name]
            if let s = handle.stats() { o["received"] = s.received; o["dropped"] = s.dropped; o["interface_dropped"] = s.interfaceDropped }
            interfaces.append(o)
        }
        return [
            "version": sensorVersion, "mode": options.mode.rawValue,
            "uptime_seconds": (Clock.monotonic() - started) / nanosPerSecond,
            "interfaces": interfaces,
            "detector": ["probes": c.probes, "ignored": c.ignored, "below_trigger": c.belowTrigger,
                         "closed_port_scans": c.closedPortScans, "negative_replies": c.negativeReplies,
                         "backscatter": c.backscatter, "service_running": c.serviceRunning,
                         "table_used": detector.tableOccupied, "table_capacity": detector.tableCapacity,
                         "table_bytes": detector.tableMemoryBytes,
                         "table_evictions": detector.tableEvictions],
            "blocking": ["firewall": responder.firewall?.name ?? "none", "dry_run": config.dryRun,
                         "blocks": responder.blocks.count, "kill_action_hosts": responder.commandBlocks.count,
                         "blocked": r.blocked, "already_blocked": r.alreadyBlocked,
                         "protected_skipped": r.protectedSkipped, "breaker_open": responder.breakerOpen,
                         "breaker_refused": r.breakerRefused, "failures": r.failures, "expired": r.expired,
                         "last_block_latency_us": r.lastBlockLatencyMicros, "max_block_latency_us": r.maxBlockLatencyMicros],
            "output": ["written": reporter.limiter.written, "suppressed": reporter.limiter.total.total],
            "fleet": fleet.map { f -> [String: Any] in
                let s = f.status
                return ["revision": s.revision, "entries": s.entries, "connected": s.connected, "skipped_now": s.skippedNow,
                        "skipped_total": s.skippedTotal, "stale": s.stale,
                        "fresh_age_seconds": s.lastFreshMillis == 0 ? -1 : (Clock.wall() / 1_000_000 - s.lastFreshMillis) / 1000]
            } ?? ["enrolled": false],
            "uplink": uplink.map { u -> [String: Any] in
                let c = u.counters
                let backlog = u.spoolBacklog
                return ["sealed_events": c.sealedEvents, "delivered_events": c.deliveredEvents, "quarantined_events": c.quarantinedEvents,
                        "dropped_events": c.droppedEvents, "sealed_batches": c.sealedBatches, "delivered_batches": c.deliveredBatches,
                        "quarantined_batches": c.quarantinedBatches, "dropped_batches": c.droppedBatches, "refusals": c.refusals,
                        "renumbered": c.renumbered, "spool_batches": backlog.batches, "spool_bytes": backlog.bytes]
            } ?? ["enrolled": false],
        ]
    }

    // MARK: host state

    private func refreshInterfaces() {
        let all = InterfaceMonitor.current()
        let addresses = Array(Set(all.filter(\.isUp).flatMap(\.addresses))).sorted()
        ownNetworks = Array(Set(all.filter { $0.isUp && !$0.isLoopback }.flatMap(\.networks))).sorted { $0.description < $1.description }
        detector.host.ownAddresses = AddressSet(addresses.map { IPPrefix(host: $0) })
        guard options.mode != .connect else { return }
        let wanted = Set(all.filter { options.interfaces.selects($0) }.map(\.name))
        for name in handles.keys where !wanted.contains(name) {
            handles[name] = nil
            logger.notice("Interface \(name) is gone or has no address; capture stopped")
        }
        var opened = false
        for name in wanted.sorted() where handles[name] == nil {
            do {
                handles[name] = try PcapHandle.live(interface: name, bufferBytes: config.captureBufferMB << 20)
                opened = true
                logger.info("Ready Device: \(name)")
            } catch {
                logger.error("\(error.description)")
            }
        }
        if opened || addresses != filterAddresses {
            if addresses != filterAddresses {
                logger.info("Watching \(addresses.count) addresses on \(handles.count) interfaces: \(handles.keys.sorted().joined(separator: ", "))")
            }
            installFilters(addresses: addresses)
        }
    }

    private func refreshSockets(force: Bool) {
        guard let snap = LocalSockets.read() else {
            if force { logger.warning("cannot read /proc/net: the service check sees no listeners") }
            return
        }
        detector.host.tcpListeners = snap.tcpListeners
        detector.host.udpListeners = snap.udpListeners
        detector.host.boundTCPPorts = snap.boundTCPPorts
        if !force, snap.tcpListeners.anyAddress != filterAnyListenersTCP
            || snap.udpListeners.anyAddress != filterAnyListenersUDP {
            installFilters(addresses: filterAddresses)
        }
    }

    /// Installs the most precise kernel filter each handle accepts.
    private func installFilters(addresses: [IPAddress]) {
        filterAddresses = addresses
        filterAnyListenersTCP = detector.host.tcpListeners.anyAddress
        filterAnyListenersUDP = detector.host.udpListeners.anyAddress
        var tcp = detector.settings.tripwireTCP
        var udp = detector.settings.tripwireUDP
        if options.serviceCheck {
            tcp.subtract(filterAnyListenersTCP)
            udp.subtract(filterAnyListenersUDP)
        }
        let filter = CaptureFilter(addresses: addresses, tcpPorts: tcp, udpPorts: udp,
                                   negativeReplies: detector.settings.closedPortDetection)
        for handle in handles.values {
            var installed = false
            for expression in filter.expressions() {
                do {
                    try handle.setFilter(expression)
                    installed = true
                    logger.debug("\(handle.name): filter \(expression)")
                    break
                } catch {
                    logger.debug("\(error.description)")
                }
            }
            if !installed { logger.error("\(handle.name): no kernel filter could be installed; every packet reaches the sensor") }
        }
    }

    // MARK: signals

    private func handleSignals() {
        for s in signals.take() {
            switch s {
            case .stop: stopping = true
            case .reload: reload()
            }
        }
    }

    /// SIGHUP: re-read config and ignore file; keep all per-source state. A bad file is
    /// reported and the running configuration stays in force.
    private func reload() {
        let newConfig: SensorConfig
        let ignore: AddressSet
        do {
            newConfig = try ConfigLoader.load(path: configPath)
            ignore = AddressSet(try ConfigLoader.ignoreList(for: newConfig))
        } catch {
            logger.error("Reload failed, keeping the running configuration: \(error.description)")
            return
        }
        var settings = SettingsBuilder.detection(newConfig, options)
        if settings.tableCapacity != detector.settings.tableCapacity {
            logger.warning("STATE_TABLE_SIZE changes take effect on restart (the table keeps its \(detector.tableCapacity) entries)")
            settings.tableCapacity = detector.settings.tableCapacity
        }
        if newConfig.blockedFile != config.blockedFile {
            logger.warning("BLOCKED_FILE changes take effect on restart (still using \(config.blockedFile ?? "none"))")
        }
        let newReporter = EventReporter(config: newConfig, console: .logged(options.consoleFormat), legacy12: options.legacy12)
        do { try newReporter.prepare() } catch {
            logger.error("Reload failed, keeping the running configuration: \(error.description)")
            return
        }
        let oldAlerts = config.alerts
        config = newConfig
        detector.settings = settings
        detector.ignore = ignore
        reporter.finish()
        reporter = newReporter
        responder.update(newConfig)
        if newConfig.alerts != oldAlerts {
            alerts?.flush(waitSeconds: 2)
            alerts?.stop()
            startAlerts(newConfig.alerts)
        }
        installFilters(addresses: filterAddresses)
        publishProtected()
        fleet?.reprotect()
        logger.notice("Configuration reloaded from \(configPath) (\(ignore.count) ignore entries); per-source state kept")
    }

    // MARK: statistics

    private func reportDrops(final: Bool) {
        for (name, handle) in handles.sorted(by: { $0.key < $1.key }) {
            guard let s = handle.stats() else { continue }
            let dropped = s.dropped + s.interfaceDropped
            if final || dropped > reportedDrops[name, default: 0] {
                let message = "pcap \(name): \(s.received) packets received, \(s.dropped) dropped by the kernel buffer, "
                    + "\(s.interfaceDropped) dropped by the interface"
                if dropped > reportedDrops[name, default: 0] { logger.warning("\(message)") } else { logger.info("\(message)") }
                reportedDrops[name] = dropped
            }
        }
    }

    private func logCounters() {
        if let u = uplink?.counters {
            let backlog = uplink?.spoolBacklog.batches ?? 0
            logger.notice("Uplink: \(u.sealedEvents) events sealed in \(u.sealedBatches) batches; \(u.deliveredEvents) delivered, \(u.quarantinedEvents) quarantined, \(u.droppedEvents) dropped (spool full or unwritable); \(backlog) batches wait in the spool")
        }
        let c = detector.counters
        logger.info("""
            Counters: probes=\(c.probes) ignored=\(c.ignored) below-trigger=\(c.belowTrigger) \
            closed-port-scans=\(c.closedPortScans) negative-replies=\(c.negativeReplies) backscatter=\(c.backscatter) \
            service-running=\(c.serviceRunning) possible-connection=\(c.possibleConnection) \
            table=\(detector.tableOccupied)/\(detector.tableCapacity) evictions=\(detector.tableEvictions)
            """)
    }
}
