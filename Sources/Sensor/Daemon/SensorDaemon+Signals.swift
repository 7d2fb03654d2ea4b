import CLinux
import Foundation
import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
import SensorCore
#endif

/// SIGTERM/SIGINT stop the loop; SIGHUP reloads the configuration.
extension SensorDaemon {
    // MARK: signals

    func handleSignals() {
        for s in signals.take() {
            switch s {
            case .stop: stopping = true
            case .reload: reload()
            }
        }
    }

    /// SIGHUP: re-read config and ignore file; keep all per-source state. A bad file is
    /// reported and the running configuration stays in force.
    func reload() {
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
}
