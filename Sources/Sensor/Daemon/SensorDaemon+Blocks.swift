import CLinux
import Foundation
import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
#endif

/// Block state across restarts: restored into the kernel at start, saved when it changes.
extension SensorDaemon {
    // MARK: blocks

    /// Fail-static restart: every block still in force goes back into the kernel, with its
    /// remaining time, in one transaction; expired ones were dropped when the state loaded.
    ///
    /// Only when this run blocks: a log-only sensor leaves the firewall as it found it and
    /// says what an earlier blocking run left behind.
    func restoreBlocks() {
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

    func saveBlocks() {
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
}
