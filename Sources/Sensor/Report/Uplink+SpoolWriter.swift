import Foundation
import PortsentryShared

/// The spool writer: the capture thread seals batches into a bounded queue (`writer`); its
/// thread numbers, encodes and writes them, so the capture thread never waits on the disk.
extension Uplink {
    /// Hands the pending events to the spool writer as the next batch. The capture thread
    /// only takes the lock to queue them: encoding, numbering and the disk are the writer's.
    func seal() {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending = []
        pending.reserveCapacity(Self.maxEvents)
        let queued = writer.submit(batch)
        condition.lock()
        defer { condition.unlock() }
        counts.sealedBatches += 1
        counts.sealedEvents += batch.count
        guard queued else {
            counts.droppedBatches += 1
            counts.droppedEvents += batch.count
            if !queueFullSaid {
                logger.error("The spool writer is \(Self.maxQueuedBatches) batches behind (a slow or stalled disk): new batches are dropped and counted until it catches up")
            }
            queueFullSaid = true
            return
        }
        queueFullSaid = false
    }

    // MARK: spool writer thread

    /// Numbers a sealed batch and writes it to the spool (signed when sent).
    func spool(_ events: [ScanEvent]) {
        defer {
            // The delivery thread waits for something in the spool.
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
        let body = ReportProtocol.body(events: events)
        let count = events.count
        do {
            guard body.count + 64 <= maxSpoolBytes else {
                throw FirewallError("one batch (\(body.count) bytes) is larger than SPOOL_MAX_MB")
            }
            makeRoom(for: body.count + 64)
            condition.lock()
            sequence += 1
            let number = sequence
            condition.unlock()
            // The batch first, then the sequence: a crash between the two leaves a spooled
            // batch whose number the next start reads from the spool, never a reused number.
            try AtomicFile.write(Self.spoolFile(events: count, body: body), to: spoolDir + "/" + Self.name(number))
        } catch {
            logger.error("Cannot spool a batch of \(count) events for the controller: \(error); they are counted as dropped")
            condition.lock()
            counts.droppedBatches += 1
            counts.droppedEvents += count
            condition.unlock()
            return
        }
        // The batch is spooled. If its number cannot be saved (a full disk), the next start
        // still reads it from the spool's file names: log, but nothing is lost.
        condition.lock()
        let number = sequence
        condition.unlock()
        do {
            try AtomicFile.write(Data("\(number)".utf8), to: sequencePath)
            sequenceSaveFailed = false
        } catch {
            if !sequenceSaveFailed { logger.warning("Cannot save \(sequencePath) (\(error)); the spool's file names keep the numbering") }
            sequenceSaveFailed = true
        }
    }

    /// Drops the oldest spooled batches until `bytes` more fit under the bound (spool writer).
    private func makeRoom(for bytes: Int) {
        var files = Self.spooled(spoolDir)
        var total = files.reduce(0) { $0 + Self.size(spoolDir + "/" + $1) }
        while total + bytes > maxSpoolBytes, let first = files.first {
            let path = spoolDir + "/" + first
            let size = Self.size(path)
            let events = Self.read(path)?.events ?? 0
            unlink(path)
            files.removeFirst()
            total -= size
            condition.lock()
            counts.droppedBatches += 1
            counts.droppedEvents += events
            let dropped = counts.droppedEvents
            condition.unlock()
            logger.error("Spool full (\(maxSpoolBytes >> 20) MiB): dropped the oldest batch (\(events) events, \(dropped) dropped in all)")
        }
    }
}
