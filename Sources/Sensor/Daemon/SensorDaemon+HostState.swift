import CLinux
import Foundation
import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
import SensorCore
#endif

/// Interfaces, addresses, listeners and the kernel filters built from them.
extension SensorDaemon {
    // MARK: host state

    func refreshInterfaces() {
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

    func refreshSockets(force: Bool) {
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
    func installFilters(addresses: [IPAddress]) {
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
}
