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

    func send(_ request: [String: Any]) throws -> [String: Any] {
        let socket = try path()
        let reply: [String: Any]
        do { reply = try ControlClient.request(socket, request) } catch { throw Failure(error.description) }
        guard reply["ok"] as? Bool == true else { throw Failure(reply["error"] as? String ?? "the sensor refused") }
        return reply
    }
}

func printJSON(_ object: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
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
            let reply = try control.send(["command": "blocks.list"])
            let blocks = reply["blocks"] as? [[String: Any]] ?? []
            if json { return printJSON(blocks) }
            print("\(blocks.count) blocks (\(reply["firewall"] as? String ?? "none"))")
            for b in blocks {
                let remaining = (b["remaining"] as? Int).map { "\(DurationText.format(Int64($0))) left" } ?? "permanent"
                let target = (b["target"] as? String ?? "?").padding(toLength: 40, withPad: " ", startingAt: 0)
                print("\(target) \(remaining.padding(toLength: 14, withPad: " ", startingAt: 0)) \(b["origin"] as? String ?? "")  \(b["reason"] as? String ?? "")")
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
            var request: [String: Any] = ["command": "blocks.add", "target": target]
            if let duration {
                if duration == "permanent" { request["permanent"] = true } else {
                    do { request["seconds"] = Int(try DurationParser.seconds(duration)) } catch {
                        throw ValidationError(error.description)
                    }
                }
            }
            let reply = try control.send(request)
            let until = (reply["expires"] as? Int).map { " until \(EventFormatter.isoTimestamp(Int64($0) * nanosPerSecond))" } ?? " permanently"
            print("blocked \(reply["target"] as? String ?? target)\(until)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a block.")
        @OptionGroup var control: ControlOptions
        @Argument(help: "IP address or CIDR, as listed.") var target: String

        func run() throws {
            do { _ = try IPPrefix(parsing: target) } catch { throw ValidationError(error.description) }
            let reply = try control.send(["command": "blocks.remove", "target": target])
            print("unblocked \(reply["target"] as? String ?? target)")
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift every block (stopping the sensor leaves them in force).")
        @OptionGroup var control: ControlOptions

        func run() throws {
            let reply = try control.send(["command": "blocks.flush"])
            print("removed \(reply["removed"] as? Int ?? 0) blocks")
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The running sensor's state and counters.")
    @OptionGroup var control: ControlOptions
    @Flag(name: .customLong("json")) var json = false

    func run() throws {
        let reply = try control.send(["command": "status"])
        let s = reply["status"] as? [String: Any] ?? [:]
        if json { return printJSON(s) }
        print("portsentry \(s["version"] as? String ?? "?"), \(s["mode"] as? String ?? "?") mode, up \(DurationText.format(Int64(s["uptime_seconds"] as? Int ?? 0)))")
        for i in s["interfaces"] as? [[String: Any]] ?? [] {
            print("  \(i["name"] as? String ?? "?"): \(i["received"] as? Int ?? 0) packets, \(i["dropped"] as? Int ?? 0) dropped")
        }
        for section in ["detector", "blocking", "output", "fleet", "uplink"] {
            let values = (s[section] as? [String: Any] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            print("  \(section): \(values.joined(separator: " "))")
        }
    }
}
