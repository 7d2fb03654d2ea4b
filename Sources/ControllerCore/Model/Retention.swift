package import PortsentryShared

/// How long the controller keeps what grows with time.
package enum Retention {
    package struct Cutoffs: Sendable {
        /// Events received before this (epoch ms).
        package var eventsBeforeMs: Int64
        /// List changes made before this (epoch ms).
        package var changesBeforeMs: Int64
        /// Decisions that ended (expired, or were revoked) before this (epoch seconds; a
        /// revoked decision counts from its creation).
        package var decisionsEndedBefore: Int64

        package init(eventsBeforeMs: Int64, changesBeforeMs: Int64, decisionsEndedBefore: Int64) {
            self.eventsBeforeMs = eventsBeforeMs
            self.changesBeforeMs = changesBeforeMs
            self.decisionsEndedBefore = decisionsEndedBefore
        }
    }

    package struct Pruned: Sendable, Equatable {
        package var events = 0
        package var changes = 0
        package var decisions = 0

        package init(events: Int = 0, changes: Int = 0, decisions: Int = 0) {
            self.events = events
            self.changes = changes
            self.decisions = decisions
        }
    }

    /// Rows deleted per statement: short write transactions, so ingest never waits long.
    package static let batch = 10_000
}

extension IPPrefix {
    /// This prefix and every shorter one containing it, as scope strings: the only scopes
    /// whose decisions can cover it.
    package var coveringScopes: [String] {
        let maxLength = network.isIPv4 ? 32 : 128
        return (0...min(length, maxLength)).map { IPPrefix(network, length: $0).description }
    }
}
