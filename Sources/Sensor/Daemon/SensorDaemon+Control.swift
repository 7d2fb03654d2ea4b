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

    func handleControl(_ request: [String: Any]) -> [String: Any] {
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

    func status(now: Int64) -> [String: Any] {
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
                        "renumbered": c.renumbered, "spool_batches": backlog.batches, "spool_bytes": backlog.bytes,
                        "answered": c.answered, "connections_opened": c.connectionsOpened]
            } ?? ["enrolled": false],
        ]
    }
}
