import CLinux
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
    /// Listener snapshot age before it is re-read (Portsentry bind()s once per packet).
    static let socketRefresh: Int64 = 1 * nanosPerSecond
    /// Interfaces are re-read on every netlink event; this is the fallback period.
    static let interfaceRescan: Int64 = 30 * nanosPerSecond
    /// How often pcap drop counters are checked and reported when they grow.
    static let statsInterval: Int64 = 60 * nanosPerSecond

    private let logger = Diagnostics.logger
    private let configPath: String
    private var config: SensorConfig
    private let options: RunOptions
    private let detector: Detector
    private var reporter: EventReporter
    private let responder: Responder
    private let signals: SignalInbox
    private let monitor = InterfaceMonitor()
    private var handles: [String: PcapHandle] = [:]
    private var connectSockets: ConnectModeSockets? = nil
    private var filterAddresses: [IPAddress] = []
    private var filterAnyListenersTCP = PortSet()
    private var filterAnyListenersUDP = PortSet()
    private var reportedDrops: [String: UInt64] = [:]
    private var stopping = false

    init(configPath: String, config: SensorConfig, ignore: AddressSet, options: RunOptions) throws(TextFile.Failure) {
        self.configPath = configPath
        self.config = config
        self.options = options
        var host = HostView()
        host.serviceCheck = options.serviceCheck
        if let range = LocalSockets.ephemeralRange() { host.ephemeralPorts = range }
        let settings = SettingsBuilder.detection(config, options)
        detector = Detector(settings: settings, host: host, ignore: ignore)
        reporter = EventReporter(config: config, consoleFormat: options.consoleFormat)
        responder = Responder(config: config)
        signals = try SignalInbox()
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
        Privileges.dropUnneeded(logger: logger)
        logger.notice("Portsentry is now active and listening.")

        var lastSockets = Clock.monotonic()
        var lastInterfaces = lastSockets
        var lastStats = lastSockets
        var interfacesDirty = false
        while !stopping {
            var busy = false
            for handle in handles.values where drain(handle) { busy = true }
            var fds = pollSet()
            let ready = poll(&fds, nfds_t(fds.count), busy ? 0 : Self.pollMillis)
            if ready > 0 {
                for pfd in fds where pfd.revents != 0 {
                    if pfd.fd == signals.fd { handleSignals() }
                    else if pfd.fd == monitor.fd { monitor.drain(); interfacesDirty = true }
                    else if let connect = connectSockets, connect.owns(pfd.fd) {
                        connect.accept(fd: pfd.fd) { from, to, proto, port in
                            let now = Clock.monotonic()
                            if var d = detector.connection(from: from, to: to, proto: proto, port: port,
                                                           now: now, wallTime: Clock.wall()) {
                                responder.respond(to: &d.event)
                                reporter.report(d, now: now)
                                return d.event.isActionable
                            }
                            return false
                        }
                    }
                }
            }
            let now = Clock.monotonic()
            if now - lastSockets >= Self.socketRefresh {
                lastSockets = now
                refreshSockets(force: false)
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
        }
        reportDrops(final: true)
        reporter.finish()
        logCounters()
        logger.notice("Portsentry is shutting down")
        return 0
    }

    // MARK: packets

    /// Reads up to `batchSize` packets; true if the batch was full (more may be waiting).
    @inline(__always)
    private func drain(_ handle: PcapHandle) -> Bool {
        let now = Clock.monotonic()
        let link = handle.linkType
        let scale = handle.nanosecondStamps ? 1 : 1000
        for _ in 0..<Self.batchSize {
            let next: PcapHandle.Next
            do { next = try handle.next() } catch {
                logger.error("\(error.description); closing this capture (it is reopened if the interface returns)")
                handles[handle.name] = nil
                return false
            }
            guard case .packet(let frame, let seconds, let sub) = next else { return false }
            guard case .packet(let packet) = PacketParser.parse(frame, linkType: link) else { continue }
            let wall = Int64(seconds) * nanosPerSecond + Int64(sub * scale)
            if var d = detector.process(packet, now: now, wallTime: wall) {
                responder.respond(to: &d.event)
                reporter.report(d, now: now)
            }
        }
        return true
    }

    private func pollSet() -> [pollfd] {
        var fds = [pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0)]
        if monitor.fd >= 0 { fds.append(pollfd(fd: monitor.fd, events: Int16(POLLIN), revents: 0)) }
        for h in handles.values { fds.append(pollfd(fd: h.selectableFD, events: Int16(POLLIN), revents: 0)) }
        for fd in connectSockets?.fds ?? [] { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
        return fds
    }

    // MARK: host state

    private func refreshInterfaces() {
        let all = InterfaceMonitor.current()
        let addresses = Array(Set(all.filter(\.isUp).flatMap(\.addresses))).sorted()
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
        let newReporter = EventReporter(config: newConfig, consoleFormat: options.consoleFormat)
        do { try newReporter.prepare() } catch {
            logger.error("Reload failed, keeping the running configuration: \(error.description)")
            return
        }
        config = newConfig
        detector.settings = settings
        detector.ignore = ignore
        reporter.finish()
        reporter = newReporter
        responder.update(newConfig)
        installFilters(addresses: filterAddresses)
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
        let c = detector.counters
        logger.info("""
            Counters: probes=\(c.probes) ignored=\(c.ignored) below-trigger=\(c.belowTrigger) \
            closed-port-scans=\(c.closedPortScans) negative-replies=\(c.negativeReplies) backscatter=\(c.backscatter) \
            service-running=\(c.serviceRunning) possible-connection=\(c.possibleConnection) \
            table=\(detector.tableOccupied)/\(detector.tableCapacity) evictions=\(detector.tableEvictions)
            """)
    }
}
