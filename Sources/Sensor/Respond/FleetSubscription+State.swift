import Foundation
import Logging
import PortsentryShared

/// The last applied list on disk (checksummed, with the previous generation) so a restart
/// with the controller down enforces what was in force.
extension FleetSubscription {
    // MARK: persistence

    /// Fail-static restart: the last list goes back into the kernel before the first poll.
    func restore() {
        applyLock.lock(); defer { applyLock.unlock() }
        let now = Clock.wallSeconds()
        entries = entries.filter { $0.value == 0 || $0.value > now }
        guard !entries.isEmpty else { return }
        if replaceKernel(now: now) {
            logger.notice("Fleet block list: restored revision \(revision) (\(entries.count) entries) from \(statePath)")
        }
        publish()
    }

    /// The last verified list, from STATE_DIR: the current generation, or the previous one when
    /// the current is missing (a crash while saving) or corrupt. What cannot be restored is said
    /// loudly: after a reboot with the controller down, this file is all the fleet protection
    /// the host has.
    func load() {
        let previous = statePath + ".prev"
        for (path, generation) in [(statePath, "current"), (previous, "previous")] {
            guard FileManager.default.fileExists(atPath: path) else { continue }
            do {
                let state = try Self.decodeState(try TextFile.read(path, limit: Self.maxStateBytes))
                revision = state.revision
                issuedMillis = state.issuedMillis
                entries = state.entries
                currentFileGood = generation == "current"
                if generation == "previous" {
                    logger.error("Fleet block list: restored the previous generation \(path) (revision \(revision), \(entries.count) entries); the newest changes come with the next poll")
                }
                return
            } catch {
                logger.error("Fleet block list: \(path) cannot be restored (\(error)); \(generation == "current" ? "trying the previous generation" : "no fleet entries are enforced until the controller answers")")
            }
        }
    }

    struct StateFile: Equatable {
        var revision: Int64
        var issuedMillis: Int64
        var entries: [IPPrefix: Int64]
    }

    struct StateError: Error, CustomStringConvertible {
        let description: String
    }

    static func canonicalState(_ s: StateFile) -> CanonicalJSON {
        .object([
            "revision": .int(s.revision), "issued_ms": .int(s.issuedMillis),
            "entries": .array(s.entries.sorted { $0.key.description < $1.key.description }.map {
                .object(["prefix": .string($0.key.description), "expires": .int($0.value)])
            }),
        ])
    }

    /// `{"state": {...}, "sha256": HEX}`: the digest of the state's canonical bytes catches a
    /// truncated, zeroed or altered file. (A file without it, from an older version, is read too.)
    static func encodeState(_ s: StateFile) -> [UInt8] {
        let state = canonicalState(s)
        return CanonicalJSON.object(["state": state, "sha256": .string(Hex.encode(SHA256.digest(state.bytes)))]).bytes
    }

    static func decodeState(_ text: String) throws(StateError) -> StateFile {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw StateError(description: "not a JSON object (truncated, empty or overwritten)")
        }
        let body = object["state"] as? [String: Any] ?? object
        func int(_ key: String) throws(StateError) -> Int64 {
            guard let v = JSONInteger.int64(body[key]) else { throw StateError(description: "\(key) missing") }
            return v
        }
        var state = StateFile(revision: try int("revision"), issuedMillis: try int("issued_ms"), entries: [:])
        guard let items = body["entries"] as? [[String: Any]] else { throw StateError(description: "entries missing") }
        for item in items {
            guard let p = (item["prefix"] as? String).flatMap({ try? IPPrefix(parsing: $0) }),
                  let e = JSONInteger.int64(item["expires"]), e >= 0 else {
                throw StateError(description: "a malformed entry")
            }
            state.entries[p] = e
        }
        if let digest = object["sha256"] as? String {
            guard digest == Hex.encode(SHA256.digest(canonicalState(state).bytes)) else {
                throw StateError(description: "its checksum does not match its contents")
            }
        }
        return state
    }

    /// Keeps the previous generation: the current file becomes `.prev`, then the new one is
    /// written atomically. A crash in between leaves `.prev`, which `load` falls back to.
    func save() {
        let bytes = Self.encodeState(StateFile(revision: revision, issuedMillis: issuedMillis, entries: entries))
        // A corrupt current file is not rotated over a good previous one.
        if currentFileGood { rename(statePath, statePath + ".prev") }
        do {
            try AtomicFile.write(Data(bytes), to: statePath)
            currentFileGood = true
        } catch {
            logger.error("Fleet block list: cannot save \(statePath): \(error)")
        }
    }
}
