import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
import SensorCore
#endif

/// `portsentry replay FILE`: the live pipeline over a capture file. Time is the packets'
/// own, so windows and gaps are deterministic; every destination is the protected host
/// unless `--host` names them. Events are printed as HISTORY_FILE lines (with the packet's
/// timestamp) or JSON, and HISTORY_FILE / JSON_LOG_FILE are written as the daemon writes
/// them; a summary goes to stderr.
struct ReplayRunner {
    var path: String
    var config: SensorConfig
    var ignore: AddressSet
    var hosts: [IPAddress]
    var options: RunOptions
    var printEvents = true

    struct Summary {
        var packets: UInt64 = 0
        var skipped: [ParseSkip: UInt64] = [:]
        var events: UInt64 = 0
        var counters = DetectorCounters()
        var tableOccupied = 0
        var tableCapacity = 0
        var evictions: UInt64 = 0
        var seconds = 0.0
        var maxRSSKiB = 0
    }

    func run(emit: (DetectedEvent) -> Void = { _ in }) throws(PcapHandle.Failure) -> Summary {
        let handle = try PcapHandle.offline(path: path)
        var host = HostView()
        host.learnListenersFromReplies = true  // no live sockets to consult
        if hosts.isEmpty { host.acceptAllDestinations = true } else {
            host.ownAddresses = AddressSet(hosts.map { IPPrefix(host: $0) })
        }
        let detector = Detector(settings: SettingsBuilder.detection(config, options), host: host, ignore: ignore)
        // Replay never touches the firewall: blocking decisions are made and logged as a dry run.
        var dryConfig = config
        dryConfig.dryRun = true
        let responder = Responder(config: dryConfig, firewall: DryRunFirewall(), blocks: BlockTable(), readsHostState: false)
        responder.legacy12 = options.legacy12
        let reporter = EventReporter(config: config, console: printEvents ? .printed(options.consoleFormat) : .none,
                                     legacy12: options.legacy12)
        do { try reporter.prepare() } catch { throw PcapHandle.Failure(description: error.description) }
        // The live pipeline, packet time as its clock.
        let pipeline = EventPipeline(detector: detector, responder: responder, reporter: reporter)
        var summary = Summary()
        let link = handle.linkType
        let started = Clock.monotonic()
        loop: while true {
            switch try handle.next() {
            case .end: break loop
            case .none: continue
            case .packet(let frame, let seconds, let nanos):
                summary.packets &+= 1
                switch PacketParser.parse(frame, linkType: link) {
                case .skipped(let why):
                    summary.skipped[why, default: 0] &+= 1
                case .packet(let packet):
                    let time = Int64(seconds) * nanosPerSecond + Int64(nanos)
                    guard let d = pipeline.packet(packet, now: time, wallTime: time) else { continue }
                    summary.events &+= 1
                    emit(d)
                }
            }
        }
        summary.seconds = Double(Clock.monotonic() - started) / 1e9
        summary.counters = detector.counters
        summary.tableOccupied = detector.tableOccupied
        summary.tableCapacity = detector.tableCapacity
        summary.evictions = detector.tableEvictions
        if printEvents { reporter.finish() }
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        summary.maxRSSKiB = Int(usage.ru_maxrss)
        return summary
    }
}
