import CLinux
import Foundation
import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
import SensorCore
#endif

/// The control socket: `portsentry status` and `portsentry blocks ...`.
extension SensorDaemon {
    // MARK: control socket

    /// CONTROL_SOCKET, or, for the second of Debian's two 1.2 processes (`-tcp` and `-udp`
    /// share one config), a socket named after its mode next to it.
    func openControlSocket() {
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

    func handleControl(_ request: ControlRequest) -> ControlReply {
        let now = Clock.wallSeconds()
        func target() -> Result<IPPrefix, ConfigProblem> {
            guard let text = request.target else { return .failure(ConfigProblem("missing target")) }
            do { return .success(try IPPrefix(parsing: text)) } catch { return .failure(ConfigProblem(error.description)) }
        }
        switch request.command {
        case .status:
            return ControlReply(status: status(now: now))
        case .blocksList:
            return ControlReply(blocks: blockViews(now: now), firewall: responder.firewall?.name ?? "none")
        case .blocksAdd:
            let t: IPPrefix
            switch target() {
            case .failure(let e): return .failure(e.description)
            case .success(let p): t = p
            }
            if let why = protectionConflict(t) { return .failure("refusing to block \(t): \(why)") }
            let seconds: Int64? = request.permanent == true ? nil : request.seconds ?? config.blockPolicy.baseSeconds
            if let seconds, !(0...DurationParser.maxSeconds).contains(seconds) {
                return .failure("seconds must be 0 to \(DurationParser.maxSeconds) (ten years)")
            }
            do {
                let b = try responder.manualBlock(t, seconds: seconds, now: now)
                saveBlocks()
                return ControlReply(target: b.target.description, expires: b.expires)
            } catch { return .failure(error.description) }
        case .blocksRemove:
            switch target() {
            case .failure(let e): return .failure(e.description)
            case .success(let t):
                do {
                    _ = try responder.manualUnblock(t)
                    saveBlocks()
                    return ControlReply(target: t.description)
                } catch { return .failure(error.description) }
            }
        case .blocksFlush:
            do {
                let n = try responder.flushAll()
                saveBlocks()
                return ControlReply(removed: n)
            } catch { return .failure(error.description) }
        }
    }

    private func blockViews(now: Int64) -> [BlockView] {
        let held = responder.blocks.blocks.values.sorted { $0.created < $1.created }.map { b in
            BlockView(target: b.target.description, origin: b.origin.rawValue, reason: b.reason, created: b.created, offense: b.offense,
                      expires: b.expires, remaining: b.expires.map { max($0 - now, 0) })
        }
        let cached = responder.commandBlocks.hosts.sorted().map { a in
            BlockView(target: IPPrefix(host: a).description, origin: "kill-actions",
                      reason: "KILL_* actions ran (BLOCKED_FILE); permanent until removed")
        }
        return held + cached
    }

    /// Why `target` must not be blocked, if it must not: it covers the host itself, an
    /// ignored network, a gateway, a resolver or an admin's session.
    func protectionConflict(_ target: IPPrefix) -> String? {
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

    func status(now: Int64) -> SensorStatus {
        let c = detector.counters
        let r = responder.counters
        let interfaces = handles.sorted(by: { $0.key < $1.key }).map { name, handle in
            let s = handle.stats()
            return SensorStatus.Interface(name: name, received: s?.received, dropped: s?.dropped, interfaceDropped: s?.interfaceDropped)
        }
        let detection = SensorStatus.Detection(
            probes: c.probes, ignored: c.ignored, belowTrigger: c.belowTrigger, closedPortScans: c.closedPortScans,
            negativeReplies: c.negativeReplies, backscatter: c.backscatter, serviceRunning: c.serviceRunning,
            tableUsed: detector.tableOccupied, tableCapacity: detector.tableCapacity, tableBytes: detector.tableMemoryBytes,
            tableEvictions: detector.tableEvictions)
        let blocking = SensorStatus.Blocking(
            firewall: responder.firewall?.name ?? "none", dryRun: config.dryRun, blocks: responder.blocks.count,
            killActionHosts: responder.commandBlocks.count, blocked: r.blocked, alreadyBlocked: r.alreadyBlocked,
            protectedSkipped: r.protectedSkipped, breakerOpen: responder.breakerOpen, breakerRefused: r.breakerRefused,
            failures: r.failures, expired: r.expired, lastBlockLatencyMicros: r.lastBlockLatencyMicros,
            maxBlockLatencyMicros: r.maxBlockLatencyMicros, commandsQueued: responder.commandQueue?.queued ?? 0,
            commandsDropped: responder.commandQueue?.dropped ?? 0)
        var fleetStatus = SensorStatus.Fleet(enrolled: fleet != nil)
        if let f = fleet?.status {
            (fleetStatus.revision, fleetStatus.entries, fleetStatus.connected) = (f.revision, f.entries, f.connected)
            (fleetStatus.skippedNow, fleetStatus.skippedTotal, fleetStatus.stale) = (f.skippedNow, f.skippedTotal, f.stale)
            fleetStatus.freshAgeSeconds = f.lastFreshMillis == 0 ? -1 : (Clock.wall() / 1_000_000 - f.lastFreshMillis) / 1000
        }
        return SensorStatus(
            version: sensorVersion, mode: options.mode.rawValue, uptimeSeconds: (Clock.monotonic() - started) / nanosPerSecond,
            interfaces: interfaces, detector: detection, blocking: blocking,
            output: .init(written: reporter.limiter.written, suppressed: reporter.limiter.total.total), fleet: fleetStatus,
            uplink: uplink.map { u in
                var counters = u.counters
                let backlog = u.spoolBacklog
                (counters.spoolBatches, counters.spoolBytes) = (backlog.batches, backlog.bytes)
                return counters
            })
    }
}
