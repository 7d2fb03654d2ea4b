import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import ServiceLifecycle
import PortsentryShared

struct Sensors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Enroll, list and revoke sensors.",
                                                    subcommands: [Add.self, List.self, Revoke.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a one-time enrollment token for a sensor.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The sensor's name (letters, digits, . _ -).") var name: String
        @Option(name: .customLong("valid-for"), help: "Seconds the token stays valid.") var seconds = 86_400
        @Flag(name: .customLong("replace"),
              help: "NAME exists (enrolled or revoked): let this token replace its key, and reinstate it if revoked.")
        var replace = false

        func run() async throws {
            guard !name.isEmpty, name.count <= 64,
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
                throw ValidationError("a sensor name is 1-64 letters, digits, '.', '_' or '-'")
            }
            let store = try await data.store()
            // Enrolling an existing name would silently swap its key (whoever holds the token
            // becomes that sensor) and lift a revocation: only on explicit request.
            if !replace, let existing = try await store.sensor(name) {
                let state = existing.revoked ? "revoked" : "enrolled"
                throw Failure("a sensor named \(name) already exists (\(state)); a new enrollment would replace its key"
                              + (existing.revoked ? " and reinstate it" : "") + ": pass --replace to allow that")
            }
            var random = SystemRandomNumberGenerator()
            let token = Hex.encode((0..<24).map { _ in UInt8.random(in: .min ... .max, using: &random) })
            try await store.addEnrollment(tokenHash: Data(SHA256.digest(Array(token.utf8))), sensor: name,
                                          expires: Int64(Date().timeIntervalSince1970) + Int64(seconds), replace: replace)
            print(token)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enrolled sensors.")
        @OptionGroup var data: DataOptions
        @Flag(name: .customLong("json")) var json = false

        func run() async throws {
            let now = Int64(Date().timeIntervalSince1970)
            let store = try await data.store()
            let sensors = try await store.sensors()
            if json {
                let revision = try await store.currentRevision().revision
                print(WireJSON.pretty(sensors.map { ControllerAPI.sensorView($0, now: now, revision: revision) }))
                return
            }
            for s in sensors {
                print("\(s.name)\t\(s.revoked ? "revoked" : "active")\tlast seen \(now - s.lastSeen)s ago\tbatches \(s.lastSequence)\t\(s.version)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse every further report from a sensor.")
        @OptionGroup var data: DataOptions
        @Argument var name: String

        func run() async throws {
            guard try await data.store().revoke(name) else { throw Failure("no sensor named \(name)") }
            print("revoked \(name)")
        }
    }
}
