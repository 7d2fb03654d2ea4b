import ArgumentParser
import Foundation
import PortsentryShared
import SensorCore

/// Where the running sensor listens: `--socket`, else CONTROL_SOCKET from the config.
struct ControlOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions
    @Option(name: .customLong("socket"), help: "The sensor's control socket (default: CONTROL_SOCKET from the config).")
    var socket: String?

    func path() throws -> String {
        if let socket { return socket }
        return try config.load().config.controlSocket
    }

    func send(_ request: ControlRequest) throws -> ControlReply {
        let socket = try path()
        let reply: ControlReply
        do { reply = try ControlClient.request(socket, request) } catch { throw Failure(error.description) }
        guard reply.ok else { throw Failure(reply.error ?? "the sensor refused") }
        return reply
    }
}

struct Blocks: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, add and remove blocks in the running sensor.",
        subcommands: [List.self, Add.self, Remove.self, Flush.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Blocks in force.")
        @OptionGroup var control: ControlOptions
        @Flag(name: .customLong("json")) var json = false

        func run() throws {
            let reply = try control.send(ControlRequest(.blocksList))
            let blocks = reply.blocks ?? []
            if json { return print(WireJSON.pretty(blocks)) }
            print("\(blocks.count) blocks (\(reply.firewall ?? "none"))")
            for b in blocks {
                let remaining = b.remaining.map { "\(DurationText.format($0)) left" } ?? "permanent"
                let target = b.target.padding(toLength: 40, withPad: " ", startingAt: 0)
                print("\(target) \(remaining.padding(toLength: 14, withPad: " ", startingAt: 0)) \(b.origin)  \(b.reason)")
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Block an address or network now.")
        @OptionGroup var control: ControlOptions
        @Argument(help: "IP address or CIDR.") var target: String
        @Option(name: .customLong("for"), help: "Duration (300, 90s, 15m, 2h, 7d) or 'permanent' (default: BLOCK_DURATION).")
        var duration: String?

        func run() throws {
            do { _ = try IPPrefix(parsing: target) } catch { throw ValidationError(error.description) }
            var request = ControlRequest(.blocksAdd, target: target)
            if let duration {
                if duration == "permanent" { request.permanent = true } else {
                    do { request.seconds = try DurationParser.seconds(duration) } catch { throw ValidationError(error.description) }
                }
            }
            let reply = try control.send(request)
            let until = reply.expires.map { " until \(EventFormatter.isoTimestamp($0 * nanosPerSecond))" } ?? " permanently"
            print("blocked \(reply.target ?? target)\(until)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a block.")
        @OptionGroup var control: ControlOptions
        @Argument(help: "IP address or CIDR, as listed.") var target: String

        func run() throws {
            do { _ = try IPPrefix(parsing: target) } catch { throw ValidationError(error.description) }
            let reply = try control.send(ControlRequest(.blocksRemove, target: target))
            print("unblocked \(reply.target ?? target)")
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift every block (stopping the sensor leaves them in force).")
        @OptionGroup var control: ControlOptions

        func run() throws {
            let reply = try control.send(ControlRequest(.blocksFlush))
            print("removed \(reply.removed ?? 0) blocks")
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The running sensor's state and counters.")
    @OptionGroup var control: ControlOptions
    @Flag(name: .customLong("json")) var json = false

    func run() throws {
        guard let s = try control.send(ControlRequest(.status)).status else { throw Failure("the sensor sent no status") }
        if json { return print(WireJSON.pretty(s)) }
        print("portsentry \(s.version), \(s.mode) mode, up \(DurationText.format(s.uptimeSeconds))")
        for i in s.interfaces {
            print("  \(i.name): \(i.received ?? 0) packets, \(i.dropped ?? 0) dropped")
        }
        print("  detector: \(Self.fields(s.detector))")
        print("  blocking: \(Self.fields(s.blocking))")
        print("  output: \(Self.fields(s.output))")
        print("  fleet: \(Self.fields(s.fleet))")
        print("  uplink: \(s.uplink.map(Self.fields) ?? "enrolled=false")")
    }

    /// `key=value ...` of a status section, keys sorted.
    static func fields(_ section: some Encodable) -> String {
        let values = (try? WireJSON.decode([String: Scalar].self, from: WireJSON.encode(section))) ?? [:]
        return values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    /// A status field's value, whatever its type.
    private struct Scalar: Decodable, CustomStringConvertible {
        let description: String

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { description = String(b) }
            else if let n = try? c.decode(Int64.self) { description = String(n) }
            else if let n = try? c.decode(UInt64.self) { description = String(n) }
            else if let t = try? c.decode(String.self) { description = t }
            else { description = "?" }
        }
    }
}
