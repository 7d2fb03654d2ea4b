import Foundation
import Logging
import ServiceLifecycle
import ControllerCore

/// Deletes what the controller no longer keeps: events after EVENT_RETENTION, block-list
/// changes after CHANGE_RETENTION (never the newest), decisions that ended DECISION_RETENTION
/// ago. Runs at start and every `interval`, in short batches, so storage stays bounded by
/// rate × retention instead of growing forever.
struct RetentionService: Service {
    /// How often it runs: often enough that a day's events never pile up far past the bound.
    static let interval: Duration = .seconds(600)

    let store: any ControllerStore
    let events: Int64
    let changes: Int64
    let decisions: Int64
    let metrics: FleetMetrics
    let logger: Logger

    func cutoffs(nowMillis: Int64) -> Retention.Cutoffs {
        Retention.Cutoffs(eventsBeforeMs: nowMillis - events * 1000, changesBeforeMs: nowMillis - changes * 1000,
                          decisionsEndedBefore: nowMillis / 1000 - decisions)
    }

    func runOnce(nowMillis: Int64) async throws -> Retention.Pruned {
        let pruned = try await store.prune(cutoffs(nowMillis: nowMillis))
        metrics.add("pruned_events", pruned.events)
        metrics.add("pruned_changes", pruned.changes)
        metrics.add("pruned_decisions", pruned.decisions)
        if pruned != Retention.Pruned() {
            logger.info("Retention: deleted \(pruned.events) events, \(pruned.changes) block-list changes, \(pruned.decisions) ended decisions")
        }
        return pruned
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { _ = try await runOnce(nowMillis: Int64(Date().timeIntervalSince1970 * 1000)) } catch {
                    logger.error("Retention: pruning failed (\(error)); retrying in \(Self.interval)")
                }
                try? await Task.sleep(for: Self.interval)
            }
        }
    }
}
