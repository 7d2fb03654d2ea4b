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

    /// The file's form: `{"state": {...}, "sha256": HEX}`, the digest over the state's bytes.
    /// Prefixes are kept in their text form, so the bytes (and old files' digests) stay the same.
    private struct Envelope: Codable {
        var state: Body
        var sha256: String?
    }

    private struct Body: Codable {
        var revision: Int64
        var issuedMillis: Int64
        var entries: [Entry]

        enum CodingKeys: String, CodingKey {
            case revision, entries
            case issuedMillis = "issued_ms"
        }
    }

    private struct Entry: Codable {
        var prefix: String
        var expires: Int64
    }

    private static func body(_ s: StateFile) -> Body {
        Body(revision: s.revision, issuedMillis: s.issuedMillis,
             entries: s.entries.sorted { $0.key.description < $1.key.description }.map { Entry(prefix: $0.key.description, expires: $0.value) })
    }

    /// The digest of the state's bytes catches a truncated, zeroed or altered file. (A file
    /// without it, from an older version, is read too.)
    static func encodeState(_ s: StateFile) -> [UInt8] {
        let state = body(s)
        return WireJSON.encode(Envelope(state: state, sha256: Hex.encode(SHA256.digest(WireJSON.encode(state)))))
    }

    static func decodeState(_ text: String) throws(StateError) -> StateFile {
        let envelope: Envelope
        if let e = try? WireJSON.decode(Envelope.self, from: Array(text.utf8)) {
            envelope = e
        } else if let bare = try? WireJSON.decode(Body.self, from: Array(text.utf8)) {
            envelope = Envelope(state: bare, sha256: nil)  // the oldest form: the state alone
        } else {
            throw StateError(description: "not a state file (truncated, empty, overwritten or malformed)")
        }
        var state = StateFile(revision: envelope.state.revision, issuedMillis: envelope.state.issuedMillis, entries: [:])
        for item in envelope.state.entries {
            guard let p = try? IPPrefix(parsing: item.prefix), item.expires >= 0 else {
                throw StateError(description: "a malformed entry")
            }
            state.entries[p] = item.expires
        }
        if let digest = envelope.sha256 {
            guard digest == Hex.encode(SHA256.digest(WireJSON.encode(body(state)))) else {
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
