import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import ServiceLifecycle
import PortsentryShared
import ControllerCore

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Events received from sensors.")
    @OptionGroup var data: DataOptions
    @Option(name: .customLong("since"), help: "Only events received in the last N seconds.") var since: Int64?
    @Option(name: .customLong("limit")) var limit = 1000
    @Flag(name: .customLong("json")) var json = false

    func run() async throws {
        if let since, Bounds.duration(since) == nil { throw ValidationError("--since: \(Bounds.durationError)") }
        let from = since.map { (Int64(Date().timeIntervalSince1970) - $0) * 1000 } ?? 0
        guard (0...1_000_000_000).contains(limit) else { throw ValidationError("--limit must be 0 to 1000000000") }
        let events = try await data.store().events(since: from, limit: limit)
        for e in events {
            if json {
                print(String(decoding: WireJSON.encode(ControllerAPI.eventView(e)), as: UTF8.self))
            } else {
                print("\(e.sensor)\t\(e.source) -> \(e.destination) \(e.proto)/\(e.port)\t\(e.type)")
            }
        }
    }
}

/// Parses an address or prefix argument with a clear error.
func parseScope(_ text: String) throws -> IPPrefix {
    do { return try IPPrefix(parsing: text) } catch { throw ValidationError("\(text): \(error.description)") }
}

struct Ban: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Block an address or prefix on every sensor.")
    @OptionGroup var data: DataOptions
    @Argument(help: "Address or prefix (192.0.2.7, 198.51.100.0/24, 2001:db8::/64).") var scope: String
    @Option(name: .customLong("duration"), help: "Seconds (0: until unbanned). Default: the policy's, with escalation.")
    var duration: Int64?
    @Option(name: .customLong("reason")) var reason = "manual ban"

    func run() async throws {
        let prefix = try parseScope(scope)
        if let duration, Bounds.duration(duration) == nil { throw ValidationError("--duration: \(Bounds.durationError)") }
        let (_, engine) = try await data.engine()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        switch try await engine.decide(scope: prefix, origin: .manual, reason: reason, duration: duration, nowMillis: now) {
        case .decided(let d, let revision):
            print("banned \(prefix) \(d.expires == 0 ? "until unbanned" : "until \(d.expires) (\(d.expires - now / 1000) s)") [decision \(d.id ?? 0), revision \(revision)]")
            for claim in engine.protected.claims(overlapping: prefix, now: now / 1000) {
                print("note: overlaps \(ProtectedRegistry.describe(claim)); that sensor will not enforce it on itself")
            }
        case .alreadyCovered(let d): print("\(prefix) is already covered by decision \(d.id ?? 0) on \(d.scope)")
        case .protected(let why), .allowlisted(let why), .knownPeer(let why): throw Failure("refused: \(why)")
        }
    }
}

struct Unban: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lift every decision overlapping an address or prefix.")
    @OptionGroup var data: DataOptions
    @Argument var scope: String

    func run() async throws {
        let prefix = try parseScope(scope)
        let (_, engine) = try await data.engine()
        let n = try await engine.unban(scope: prefix, nowMillis: Int64(Date().timeIntervalSince1970 * 1000))
        print(n == 0 ? "no active decision overlaps \(prefix)" : "lifted \(n) decision(s) overlapping \(prefix)")
    }
}

struct Allow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Allowlist an address or prefix: never blocked fleet-wide; decisions on it are lifted at once.")
    @OptionGroup var data: DataOptions
    @Argument var scope: String
    @Option(name: .customLong("duration"), help: "Seconds (0: until removed).") var duration: Int64 = 0
    @Option(name: .customLong("reason")) var reason = "allowlisted by an operator"
    @Flag(name: .customLong("remove"), help: "Remove the allowlist entry instead.") var remove = false

    func run() async throws {
        let prefix = try parseScope(scope)
        let (store, engine) = try await data.engine()
        if remove {
            guard try await store.removeAllow(scope: prefix.description) else { throw Failure("\(prefix) is not allowlisted") }
            print("removed \(prefix) from the allowlist")
            return
        }
        guard Bounds.duration(duration) != nil else { throw ValidationError("--duration: \(Bounds.durationError)") }
        let n = try await engine.allow(scope: prefix, seconds: duration, reason: reason, nowMillis: Int64(Date().timeIntervalSince1970 * 1000))
        print("allowlisted \(prefix)\(n > 0 ? "; lifted \(n) decision(s)" : "")")
    }
}

struct Decisions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fleet-wide decisions.", subcommands: [List.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decisions in force (--all: the newest 1000, any state).")
        @OptionGroup var data: DataOptions
        @Flag(name: .customLong("all")) var all = false
        @Flag(name: .customLong("json")) var json = false

        func run() async throws {
            let store = try await data.store()
            let now = Int64(Date().timeIntervalSince1970)
            let list = all ? try await store.recentDecisions(limit: 1000) : try await store.activeDecisions(now: now)
            for d in list {
                if json {
                    print(String(decoding: WireJSON.encode(ControllerAPI.decisionView(d)), as: UTF8.self))
                } else {
                    let until = d.expires == 0 ? "until unbanned" : (d.expires > now ? "\(d.expires - now)s left" : "expired")
                    print("\(d.id ?? 0)\t\(d.scope)\t\(d.origin)\t\(d.revoked ? "lifted" : until)\toffence \(d.offense)\t\(d.reason)")
                }
            }
        }
    }
}
