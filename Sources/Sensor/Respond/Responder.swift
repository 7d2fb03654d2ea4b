import PortsentryShared

/// Decides what to do about an actionable event and records it in the event's
/// `noblock`/`blocked` fields, as Portsentry does before writing the line.
final class Responder {
    private var config: SensorConfig

    init(config: SensorConfig) { self.config = config }

    func update(_ config: SensorConfig) { self.config = config }

    func respond(to event: inout ScanEvent) {
        guard event.isActionable else { return }
        let mode = event.proto == .tcp ? config.blockTCP : config.blockUDP
        switch mode {
        case .logOnly:
            event.noblock = .yes
            event.blocked = .no
        case .block, .runCommandOnly:
            // Enforcement arrives with the firewall work (nftables sets, KILL_* commands);
            // until then the sensor reports honestly that nothing was blocked.
            event.noblock = .no
            event.blocked = .no
        }
    }
}
