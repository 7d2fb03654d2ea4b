import CLinux
import Foundation
import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
import SensorCore
#endif

/// Alerts, the heartbeat payload and the protection report the controller reads.
extension SensorDaemon {
    // MARK: alerts

    func startAlerts(_ settings: AlertSettings) {
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
    func heartbeatStatus() -> Heartbeat {
        var received: Int64 = 0, dropped: Int64 = 0
        for h in handles.values {
            if let s = h.stats() { received += Int64(s.received); dropped += Int64(s.dropped + s.interfaceDropped) }
        }
        let c = detector.counters
        var h = Heartbeat()
        h.version = sensorVersion
        h.mode = options.mode.rawValue
        h.uptimeSeconds = (Clock.monotonic() - started) / nanosPerSecond
        h.interfaces = handles.keys.sorted()
        (h.pcapReceived, h.pcapDropped) = (received, dropped)
        (h.probes, h.closedPortScans) = (Int64(c.probes), Int64(c.closedPortScans))
        h.eventsWritten = Int64(reporter.limiter.written)
        h.eventsSuppressed = Int64(reporter.limiter.total.total)
        (h.blocks, h.breakerOpen) = (Int64(responder.blocks.count), responder.breakerOpen)
        h.protected = protectedAddresses()
        h.blocklistRevision = fleet?.status.revision ?? 0
        h.blocklistEntries = Int64(fleet?.status.entries ?? 0)
        h.blocklistSkipped = Int64(fleet?.status.skippedNow ?? 0)
        h.blocklistStale = fleet?.status.stale ?? false
        h.protection = protectionReport().bounded()
        h.uplink = uplink.map { u in
            var counters = u.counters
            let backlog = u.spoolBacklog
            (counters.spoolBatches, counters.spoolBytes) = (backlog.batches, backlog.bytes)
            return counters
        }
        return h
    }

    /// What the controller needs to keep this host, its neighbours and its admins off the
    /// fleet list (see `ProtectionReport`).
    func protectionReport() -> ProtectionReport {
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
    func protectedAddresses() -> [IPAddress] {
        var list = responder.protected.all.map(\.0)
        if let controllerAddress { list.append(controllerAddress) }
        return list
    }

    func publishProtected() {
        fleet?.setProtected(FleetSubscription.Protection(addresses: protectedAddresses() + filterAddresses + sessions.sessions,
                                                         ignored: detector.ignore.prefixes, sessionPorts: config.protectPorts))
    }

    // MARK: statistics

    func reportDrops(final: Bool) {
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

    func logCounters() {
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
