import CLinux
import Foundation
import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
import SensorCore
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

    let logger = Diagnostics.logger
    let configPath: String
    var config: SensorConfig
    let options: RunOptions
    let pipeline: EventPipeline
    var detector: Detector { pipeline.detector }
    var responder: Responder { pipeline.responder }
    var reporter: EventReporter {
        get { pipeline.reporter }
        set { pipeline.reporter = newValue }
    }
    let signals: SignalInbox
    let monitor = InterfaceMonitor()
    var handles: [String: PcapHandle] = [:]
    var connectSockets: ConnectModeSockets? = nil
    var control: ControlServer? = nil
    var alerts: AlertSender? {
        get { pipeline.alerts }
        set { pipeline.alerts = newValue }
    }
    /// Reports to the controller, when the sensor is enrolled.
    var uplink: Uplink? {
        get { pipeline.uplink }
        set { pipeline.uplink = newValue }
    }
    /// Enforces the controller's fleet-wide block list, when the sensor is enrolled.
    var fleet: FleetSubscription? = nil
    /// The controller's address, when its URL names one: never blocked here.
    var controllerAddress: IPAddress? = nil
    let started = Clock.monotonic()
    var filterAddresses: [IPAddress] = []
    /// The on-link networks of this host's interfaces (reported so the controller can tell a
    /// plausible gateway claim from a foreign one).
    var ownNetworks: [IPPrefix] = []
    var sessions = SessionWatch()
    var filterAnyListenersTCP = PortSet()
    var filterAnyListenersUDP = PortSet()
    var reportedDrops: [String: UInt64] = [:]
    var stopping = false
    var timers = Timers(now: 0)
    let statePath: String
    /// A state-file write error is reported once, not every second.
    var stateSaveFailed = false

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
        let responder = Responder(config: config, firewall: firewall, blocks: blocks, commandBlocks: commandBlocks,
                                  commandQueue: CommandQueue())
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
        guard start() else { return 1 }
        logger.notice("Portsentry is now active and listening.")
        timers = Timers(now: Clock.monotonic())
        while !stopping {
            let (packets, busy) = drainCaptures()
            if packets > 0, !busy {
                // Traffic, but only a trickle per wake-up: let a few more packets gather
                // before the next poll. Under a flood this turns ~40,000 wake-ups a second
                // into ~1,000 (the cost is up to 1 ms of added latency); idle, nothing changes.
                usleep(Self.coalesceMicros)
            }
            let timeout = busy || packets > 0 ? 0 : (uplink?.hasPending == true ? Self.uplinkPollMillis : Self.pollMillis)
            serveReady(timeout: timeout)
            runTimers(now: Clock.monotonic())
        }
        shutDown()
        return 0
    }

    /// Opens what the loop serves (captures or connect-mode sockets, the firewall, the
    /// control socket), restores blocks and drops privileges. False when nothing can run.
    private func start() -> Bool {
        refreshSockets(force: true)
        refreshInterfaces()
        if options.mode == .connect {
            connectSockets = ConnectModeSockets(tcp: detector.settings.tripwireTCP, udp: detector.settings.tripwireUDP,
                                                banner: config.portBanner, logger: logger)
            if connectSockets?.isEmpty ?? true {
                logger.error("connect mode: no port could be bound; nothing to watch")
                return false
            }
        } else if handles.isEmpty {
            logger.warning("no interface to capture on yet (\(options.interfaces.base)); waiting for one to appear")
        }
        // Blocking configured: set the firewall up now, so the first block is one element add,
        // and a firewall that cannot be used is an error at start, not at the first attack.
        if let firewall = responder.firewall, config.blockTCP == .block || config.blockUDP == .block {
            do { try firewall.prepare() } catch {
                logger.error("BLOCK_TCP/BLOCK_UDP=\"1\" but the \(firewall.name) firewall cannot be used: \(error.description)")
                return false
            }
        }
        restoreBlocks()
        responder.refreshProtected()
        _ = sessions.scan(ports: config.protectPorts, ignoring: { self.detector.host.ownAddresses.contains($0) })
        publishProtected()
        fleet?.start()
        openControlSocket()
        Privileges.dropUnneeded(logger: logger)
        return true
    }

    /// When each periodic job last ran (monotonic nanoseconds).
    struct Timers {
        var sockets: Int64, protected: Int64, sessions: Int64, housekeeping: Int64, interfaces: Int64, stats: Int64
        var heartbeat: Int64? = nil
        /// Netlink said interfaces or addresses changed.
        var interfacesDirty = false

        init(now: Int64) {
            (sockets, protected, sessions, housekeeping, interfaces, stats) = (now, now, now, now, now, now)
        }
    }

    /// Reads every capture handle once; `busy` when one had a full batch waiting.
    private func drainCaptures() -> (packets: Int, busy: Bool) {
        var packets = 0
        var busy = false
        for handle in handles.values {
            let n = drain(handle)
            packets += n
            if n == Self.batchSize { busy = true }
        }
        return (packets, busy)
    }

    /// Waits up to `timeout` ms for signals, netlink, the control socket and connect-mode sockets.
    private func serveReady(timeout: Int32) {
        var fds = pollSet()
        guard poll(&fds, nfds_t(fds.count), timeout) > 0 else { return }
        for pfd in fds where pfd.revents != 0 {
            if pfd.fd == signals.fd { handleSignals() }
            else if pfd.fd == monitor.fd { monitor.drain(); timers.interfacesDirty = true }
            else if let control, pfd.fd == control.fd { control.serve(handleControl) }
            else if let connect = connectSockets, connect.owns(pfd.fd) {
                connect.accept(fd: pfd.fd) { from, to, proto, port in
                    pipeline.connection(from: from, to: to, proto: proto, port: port, now: Clock.monotonic(),
                                        wallTime: Clock.wall())?.event.isActionable ?? false
                }
            }
        }
    }

    /// The periodic jobs whose time has come.
    private func runTimers(now: Int64) {
        if now - timers.sockets >= Self.socketRefresh {
            timers.sockets = now
            refreshSockets(force: false)
        }
        if now - timers.protected >= Self.protectedRefresh {
            timers.protected = now
            responder.refreshProtected()
            publishProtected()
        }
        if now - timers.sessions >= Self.sessionScan {
            timers.sessions = now
            scanSessions(now: now)
        }
        if now - timers.housekeeping >= Self.housekeeping {
            timers.housekeeping = now
            responder.expire(now: Clock.wallSeconds())
            saveBlocks()
            fleet?.checkStale(nowMillis: Clock.wall() / 1_000_000)
        }
        if timers.interfacesDirty || now - timers.interfaces >= Self.interfaceRescan {
            timers.interfacesDirty = false
            timers.interfaces = now
            refreshInterfaces()
        }
        if now - timers.stats >= Self.statsInterval {
            timers.stats = now
            reportDrops(final: false)
        }
        pipeline.recordFinishedActions(now: now)
        reporter.tick(now: now)
        alerts?.tick(now: now)
        uplink?.tick(now: now)
        if let uplink, timers.heartbeat.map({ now - $0 >= Int64(Uplink.heartbeatInterval) * nanosPerSecond }) ?? true {
            timers.heartbeat = now
            uplink.heartbeat(heartbeatStatus())
        }
    }

    /// A session that started on PROTECT_PORTS is protected here and told to the controller at once.
    private func scanSessions(now: Int64) {
        let fresh = sessions.scan(ports: config.protectPorts, ignoring: { self.detector.host.ownAddresses.contains($0) })
        guard !fresh.isEmpty else { return }
        logger.notice("Live session on PROTECT_PORTS from \(fresh.map(\.description).joined(separator: ", ")): protected here and reported to the controller")
        publishProtected()
        fleet?.reprotect()
        if let uplink {
            timers.heartbeat = now
            uplink.heartbeat(heartbeatStatus(), urgent: true)
        }
    }

    private func shutDown() {
        // KILL_* actions already started finish, and their results are kept (BLOCKED_FILE).
        responder.commandQueue?.drainAndStop()
        pipeline.recordFinishedActions(now: Clock.monotonic())
        uplink?.stop()
        fleet?.stop()
        alerts?.flush(waitSeconds: 5)
        alerts?.stop()
        saveBlocks()
        reportDrops(final: true)
        reporter.finish()
        logCounters()
        logger.notice("Portsentry is shutting down")
    }

    // MARK: packets

    /// Reads up to `batchSize` packets; returns how many were read.
    @inline(__always)
    func drain(_ handle: PcapHandle) -> Int {
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

    func pollSet() -> [pollfd] {
        var fds = [pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0)]
        if monitor.fd >= 0 { fds.append(pollfd(fd: monitor.fd, events: Int16(POLLIN), revents: 0)) }
        for h in handles.values { fds.append(pollfd(fd: h.selectableFD, events: Int16(POLLIN), revents: 0)) }
        for fd in connectSockets?.fds ?? [] { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
        if let control { fds.append(pollfd(fd: control.fd, events: Int16(POLLIN), revents: 0)) }
        return fds
    }

}
