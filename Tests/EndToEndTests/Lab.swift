import Foundation
import Testing

/// A throw-away network of namespaces for end-to-end tests: a sensor host and an attacker
/// joined by one veth pair, nothing else reachable. Every process a test starts is tracked
/// and killed, and the namespaces (with their veths) are deleted, when the lab is shut down,
/// which `withLab` guarantees also when the test fails or throws.
final class Lab: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible { let description: String }

    let id: Int
    let sensorNS: String
    let attackerNS: String
    let sensorV4: String
    let attackerV4: String
    let sensorV6: String
    let attackerV6: String
    let directory: URL
    private var processes: [Child] = []

    /// Namespace names all start with this, so a crashed run's leftovers can be found.
    static let prefix = "pste-"
    /// Interface names are limited to 15 characters: a short per-process tag.
    static let linkTag = "v\(getpid() % 10000)x"

    init(id: Int) throws {
        self.id = id
        // The test process's pid is in every name, so concurrent runs never collide and a
        // sweep only removes what a dead run left behind.
        sensorNS = "\(Self.prefix)\(getpid())-\(id)-s"
        attackerNS = "\(Self.prefix)\(getpid())-\(id)-a"
        sensorV4 = "10.231.\(id).1"
        attackerV4 = "10.231.\(id).2"
        sensorV6 = "fd00:231:\(id)::1"
        attackerV6 = "fd00:231:\(id)::2"
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pste-\(id)-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        guard geteuid() == 0 else {
            throw Failure(description: "end-to-end tests need root (network namespaces); run scripts/test.sh as root")
        }
        let vs = "\(Self.linkTag)\(id)s", va = "\(Self.linkTag)\(id)a"
        sensorInterface = vs
        cleanUpNetwork()
        let setup: [[String]] = [
            ["ip", "netns", "add", sensorNS], ["ip", "netns", "add", attackerNS],
            ["ip", "link", "add", vs, "type", "veth", "peer", "name", va],
            ["ip", "link", "set", vs, "netns", sensorNS], ["ip", "link", "set", va, "netns", attackerNS],
            ["ip", "-n", sensorNS, "addr", "add", "\(sensorV4)/24", "dev", vs],
            ["ip", "-n", sensorNS, "addr", "add", "\(sensorV6)/64", "dev", vs, "nodad"],
            ["ip", "-n", attackerNS, "addr", "add", "\(attackerV4)/24", "dev", va],
            ["ip", "-n", attackerNS, "addr", "add", "\(attackerV6)/64", "dev", va, "nodad"],
            ["ip", "-n", sensorNS, "link", "set", "lo", "up"], ["ip", "-n", attackerNS, "link", "set", "lo", "up"],
            ["ip", "-n", sensorNS, "link", "set", vs, "up"], ["ip", "-n", attackerNS, "link", "set", va, "up"],
        ]
        do {
            for command in setup { try Self.run(command) }
        } catch {
            shutdown()
            throw error
        }
    }

    let sensorInterface: String

    /// Kills everything the lab started and removes namespaces and files.
    func shutdown() {
        for p in processes where p.isRunning {
            kill(p.pid, SIGKILL)
            p.waitUntilExit()
        }
        processes.removeAll()
        cleanUpNetwork()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Deletes the namespaces and a veth that a failed set-up may have left in the root
    /// namespace (deleting a namespace deletes the veths inside it).
    private func cleanUpNetwork() {
        Self.deleteNamespace(sensorNS)
        Self.deleteNamespace(attackerNS)
        Self.deleteNamespace(bystanderNS)
        for link in [sensorInterface, "\(Self.linkTag)\(id)c"] { _ = try? Self.run(["ip", "link", "del", link], allowFailure: true) }
    }

    // MARK: optional extras

    var bystanderNS: String { "\(Self.prefix)\(getpid())-\(id)-b" }
    var sensorBystanderSide: String { "10.232.\(id).1" }
    var bystanderV4: String { "10.232.\(id).2" }
    /// An address on the attacker's side that the sensor uses as its default gateway.
    var gatewayV4: String { "10.231.\(id).254" }

    /// A third host on its own link to the sensor: it must keep working when the attacker is blocked.
    func addBystander() throws {
        for command in [
            ["ip", "netns", "add", bystanderNS],
            ["ip", "link", "add", "\(Self.linkTag)\(id)c", "type", "veth", "peer", "name", "\(Self.linkTag)\(id)d"],
            ["ip", "link", "set", "\(Self.linkTag)\(id)c", "netns", sensorNS],
            ["ip", "link", "set", "\(Self.linkTag)\(id)d", "netns", bystanderNS],
            ["ip", "-n", sensorNS, "addr", "add", "\(sensorBystanderSide)/24", "dev", "\(Self.linkTag)\(id)c"],
            ["ip", "-n", bystanderNS, "addr", "add", "\(bystanderV4)/24", "dev", "\(Self.linkTag)\(id)d"],
            ["ip", "-n", sensorNS, "link", "set", "\(Self.linkTag)\(id)c", "up"],
            ["ip", "-n", bystanderNS, "link", "set", "\(Self.linkTag)\(id)d", "up"],
            ["ip", "-n", bystanderNS, "link", "set", "lo", "up"],
        ] { try Self.run(command) }
    }

    /// Gives the sensor a default route through an address the attacker owns.
    func addGateway() throws {
        try Self.run(["ip", "-n", attackerNS, "addr", "add", "\(gatewayV4)/24", "dev", "\(Self.linkTag)\(id)a"])
        try Self.run(["ip", "-n", sensorNS, "route", "add", "default", "via", gatewayV4])
    }

    /// True if `host` in `ns` completes a TCP connection to `address:port` within a second.
    func canConnect(from ns: String, to address: String, port: Int) -> Bool {
        let script = "import socket,sys\ntry:\n socket.create_connection(('\(address)', \(port)), timeout=1).close()\nexcept OSError: sys.exit(1)"
        return (try? exec(ns, ["python3", "-c", script])) != nil
    }

    /// The elements of one of the sensor's nftables sets (empty if the table does not exist).
    func nftSet(_ set: String) -> String {
        (try? exec(sensorNS, ["nft", "list", "set", "inet", "portsentry", set], allowFailure: true)) ?? ""
    }

    /// Runs the sensor's CLI against this lab's control socket.
    func cli(_ args: [String]) throws -> String {
        try exec(sensorNS, [Self.sensorBinary] + args + ["-c", file("portsentry.conf")])
    }

    static func deleteNamespace(_ name: String) {
        _ = try? run(["ip", "netns", "pids", name]).split(separator: "\n").forEach { pid in
            if let p = Int32(pid) { kill(p, SIGKILL) }
        }
        _ = try? run(["ip", "netns", "del", name], allowFailure: true)
    }

    /// Deletes namespaces left by an earlier run that was killed before it could clean up:
    /// those whose test process (the pid in the name) no longer exists.
    static func removeStaleNamespaces() {
        let list = (try? run(["ip", "netns", "list"])) ?? ""
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix(prefix), let owner = Int32(name.dropFirst(prefix.count).prefix { $0.isNumber }) else { continue }
            if kill(owner, 0) != 0, errno == ESRCH { deleteNamespace(name) }
        }
    }

    // MARK: processes

    /// Runs a command to completion (killed after `timeout` seconds) and returns its stdout.
    /// Children get a clean signal mask (see `Child`), so nothing hangs on a blocked signal.
    @discardableResult
    static func run(_ args: [String], allowFailure: Bool = false, timeout: Double = 120) throws -> String {
        let base = NSTemporaryDirectory() + "pste-run-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(base + ".out"); unlink(base + ".err") }
        let child = try Child(args, output: base + ".out", errors: base + ".err")
        let deadline = Date().addingTimeInterval(timeout)
        while child.isRunning {
            if Date() > deadline {
                kill(child.pid, SIGKILL)
                child.waitUntilExit()
                throw Failure(description: "\(args.joined(separator: " ")) did not finish within \(timeout)s")
            }
            usleep(5_000)
        }
        let out = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
        if child.exitStatus != 0, !allowFailure {
            let err = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
            throw Failure(description: "\(args.joined(separator: " ")) exited \(child.exitStatus): \(err)")
        }
        return out
    }

    /// Runs a command to completion inside a namespace.
    @discardableResult
    func exec(_ ns: String, _ args: [String], allowFailure: Bool = false, timeout: Double = 120) throws -> String {
        try Self.run(["ip", "netns", "exec", ns] + args, allowFailure: allowFailure, timeout: timeout)
    }

    /// Starts a long-running command in a namespace; its stdout and stderr go to `log`.
    func spawn(_ ns: String, _ args: [String], log: String) throws -> Child {
        let child = try Child(["ip", "netns", "exec", ns] + args, output: file(log))
        processes.append(child)
        return child
    }

    /// Starts a long-running command in the machine's own namespace (only for a process that
    /// serves on loopback, like a controller next to the machine's PostgreSQL).
    func spawnHere(_ args: [String], log: String) throws -> Child {
        let child = try Child(args, output: file(log))
        processes.append(child)
        return child
    }

    func file(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func read(_ name: String) -> String {
        (try? String(contentsOfFile: file(name), encoding: .utf8)) ?? ""
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: file(name), atomically: true, encoding: .utf8)
    }

    /// Sends `signal` and waits (with a deadline) for the process to exit.
    func stop(_ p: Child, signal: Int32 = SIGTERM, within seconds: Double = 10) throws -> Int32 {
        kill(p.pid, signal)
        try waitFor("`\(p.command)` (pid \(p.pid)) to exit on signal \(signal)", within: seconds) { !p.isRunning }
        return p.exitStatus
    }

    /// Polls `condition` every 20 ms until it holds or the deadline passes.
    func waitFor(_ what: String, within seconds: Double, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            usleep(20_000)
        }
        if try condition() { return }
        throw Failure(description: "timed out after \(seconds)s waiting for \(what)")
    }

    // MARK: the sensor

    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var sensorBinary: String {
        if let env = ProcessInfo.processInfo.environment["PORTSENTRY_BIN"] { return env }
        return packageRoot.appendingPathComponent(".build/debug/portsentry").path
    }

    /// Starts `portsentry` in the sensor namespace and waits until it is listening.
    func startSensor(config: String, arguments: [String] = [], log: String = "sensor.out",
                     allInterfaces: Bool = false) throws -> Child {
        // Nothing outside the lab: a config that names no state or control socket gets the lab's
        // (the defaults are /var/lib/portsentry and /run/portsentry on the machine itself).
        var config = config
        if !config.contains("STATE_DIR=") { config += "\nSTATE_DIR=\"\(file("state"))\"" }
        if !config.contains("CONTROL_SOCKET=") { config += "\nCONTROL_SOCKET=\"\(file("run/control.sock"))\"" }
        try write("portsentry.conf", config)
        let interfaces = allInterfaces ? [] : ["-i", sensorInterface]
        let p = try spawn(sensorNS, [Self.sensorBinary, "-c", file("portsentry.conf")] + interfaces + arguments, log: log)
        try waitFor("the sensor to start listening", within: 15) {
            if !p.isRunning { throw Failure(description: "sensor exited early:\n\(read(log))") }
            return read(log).contains("Portsentry is now active and listening.")
        }
        return p
    }

    /// Starts tcpdump in the sensor namespace and waits until it captures.
    func startCapture(filter: String, file name: String) throws -> Child {
        let p = try spawn(sensorNS, ["tcpdump", "-Z", "root", "--immediate-mode", "-i", sensorInterface, "-U", "-n", "-s", "256", "-w", file(name), filter],
                          log: name + ".log")
        try waitFor("tcpdump to start", within: 10) { read(name + ".log").contains("listening on") }
        return p
    }
}

/// All end-to-end suites nest in this one so they run one at a time: they share the
/// machine's two cores with nmap's timing, and each owns its namespaces while it runs.
@Suite(.serialized) struct EndToEnd {}

/// Namespaces left by an earlier, killed run are removed once, before the first lab.
private let staleNamespacesRemoved: Bool = {
    Lab.removeStaleNamespaces()
    return true
}()

/// Runs `body` with a fresh lab and always shuts it down.
func withLab<T>(_ id: Int, _ body: (Lab) throws -> T) throws -> T {
    _ = staleNamespacesRemoved
    let lab = try Lab(id: id)
    defer { lab.shutdown() }
    return try body(lab)
}

/// One `Scan from:` line, parsed.
struct ScanLine: Equatable {
    var source: String
    var proto: String
    var port: Int
    var type: String
    var ignored: String
    var triggered: String

    static func parse(_ text: String) -> [ScanLine] {
        text.split(separator: "\n").compactMap { line in
            guard let start = line.range(of: "Scan from: [") else { return nil }
            let rest = line[start.upperBound...]
            func field(_ name: String) -> String? {
                guard let r = rest.range(of: "\(name): [") else { return nil }
                let tail = rest[r.upperBound...]
                guard let end = tail.firstIndex(of: "]") else { return nil }
                return String(tail[..<end])
            }
            guard let sourceEnd = rest.firstIndex(of: "]"), let proto = field("protocol"), let port = field("port").flatMap(Int.init),
                  let type = field("type"), let ignored = field("ignored"), let triggered = field("triggered") else { return nil }
            return ScanLine(source: String(rest[..<sourceEnd]), proto: proto, port: port, type: type,
                            ignored: ignored, triggered: triggered)
        }
    }
}

/// A child process started with posix_spawn, with an empty signal mask and default signal
/// dispositions. (Foundation's Process passes on the spawning thread's mask, and the test
/// runner's threads block SIGINT/SIGTERM, so tcpdump would never stop.)
final class Child: @unchecked Sendable {
    let pid: pid_t
    let command: String
    private var status: Int32? = nil

    init(_ args: [String], output: String, errors: String? = nil) throws {
        command = args.joined(separator: " ")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let errors {
            posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, args[0], &actions, &attributes, &argv, environ)
        guard rc == 0 else { throw Lab.Failure(description: "cannot start \(command): \(String(cString: strerror(rc)))") }
        pid = child
    }

    var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        let r = waitpid(pid, &raw, WNOHANG)
        if r == pid {
            // Exit code, or 128 + signal when killed (as a shell reports it).
            let signal = raw & 0x7F
            status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
            return false
        }
        return r == 0
    }

    var exitStatus: Int32 {
        _ = isRunning
        return status ?? -1
    }

    func waitUntilExit() {
        while isRunning { usleep(10_000) }
    }
}

/// A real controller on the sensor namespace's loopback, for the uplink and trust tests.
extension Lab {
    /// A sensor config that reports to the controller: six tripwires, its state in the lab.
    var uplinkConfig: String {
        """
        TCP_PORTS="1,7,9,11,79,111"
        STATE_DIR="\(file("state"))"
        CONTROL_SOCKET="\(file("run/control.sock"))"
        LOG_PER_SOURCE="0"
        """
    }

    /// `portsentry-controller serve` for `data` on 127.0.0.1:8443 in the sensor namespace,
    /// once it listens.
    func serveController(_ data: String, log: String) throws -> Child {
        let c = try spawn(sensorNS, [EndToEnd.ControllerProcessTests.binary, "serve", "--data", data, "--listen", "127.0.0.1",
                                     "--port", "8443"], log: log)
        try waitFor("\(log) to listen", within: 30) {
            if !c.isRunning { throw Failure(description: "controller exited:\n\(read(log))") }
            return read(log).contains("listening on")
        }
        return c
    }

    /// The events `data`'s controller has stored, one JSON line each.
    func storedEvents(_ data: String) -> [String] {
        ((try? Lab.run([EndToEnd.ControllerProcessTests.binary, "events", "--data", data, "--json", "--limit", "100000"])) ?? "")
            .split(separator: "\n").map(String.init)
    }
}
