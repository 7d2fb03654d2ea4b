import Logging
import PortsentryShared

/// Portsentry's KILL_* actions for one host (KILL_RUN_CMD, KILL_HOSTS_DENY, KILL_ROUTE), in
/// DisposeTarget order, each logged with Portsentry's attackalert line. A value with no
/// state of its own: it runs inline (replay, tests) or on the `CommandQueue`'s worker.
struct KillActions: Sendable {
    let config: SensorConfig
    let logger: Logger

    /// What the actions did: whether any ran, whether any worked, and how many failed.
    struct Outcome: Sendable, Equatable {
        var attempted = false
        var succeeded = false
        var failures = 0
    }

    /// Which part of DisposeTarget: the KILL_RUN_CMD that KILL_RUN_CMD_FIRST (or the
    /// run-command-only mode) puts before the native block, or everything after it.
    enum Part: Sendable { case beforeNative, afterNative }

    func run(_ part: Part, for event: ScanEvent, mode: SensorConfig.BlockMode) -> Outcome {
        let ip = event.source.description
        var done = Outcome()
        let first = config.killRunCmdFirst || mode == .runCommandOnly
        switch part {
        case .beforeNative:
            if let cmd = config.killRunCmd, first {
                runCommand(cmd, for: event, &done) { "External command run for host: \(ip) using command: \"\($0)\"" }
            }
        case .afterNative:
            guard mode == .block else { break }
            if let line = config.killHostsDeny { addToHostsDeny(line, for: event, &done) }
            if let route = config.killRoute {
                runCommand(route, for: event, &done) { "Host \(ip) has been blocked via dropped route using command: \"\($0)\"" }
            }
            if let cmd = config.killRunCmd, !first {
                runCommand(cmd, for: event, &done) { "External command run for host: \(ip) using command: \"\($0)\"" }
            }
        }
        return done
    }

    /// KILL_ROUTE or KILL_RUN_CMD with $TARGET$, $PORT$ and $MODE$ filled in, under KILL_TIMEOUT.
    private func runCommand(_ template: String, for event: ScanEvent, _ done: inout Outcome, describe: (String) -> String) {
        let ip = event.source.description
        done.attempted = true
        let cmd = template.replacingAll("$TARGET$", with: ip).replacingAll("$PORT$", with: "\(event.port)")
            .replacingAll("$MODE$", with: event.kind == .connect ? "connect" : "stealth")
        if config.dryRun {
            logger.notice("attackalert: [dry run] \(describe(cmd))")
            done.succeeded = true
            return
        }
        let result = CommandRunner.shell(cmd, timeoutSeconds: config.killTimeout)
        if result.succeeded {
            logger.notice("attackalert: \(describe(cmd))")
            done.succeeded = true
        } else {
            done.failures += 1
            logger.error("attackalert: command for host \(ip) failed (\(result.summary)): \"\(cmd)\"\(result.stderr.isEmpty ? "" : ": \(result.stderr)")")
        }
    }

    /// KILL_HOSTS_DENY: the line, with $TARGET$ (IPv6 in brackets) and $PORT$, added once.
    private func addToHostsDeny(_ line: String, for event: ScanEvent, _ done: inout Outcome) {
        let ip = event.source.description
        done.attempted = true
        let text = line.replacingAll("$TARGET$", with: event.source.isIPv4 ? ip : "[\(ip)]")
            .replacingAll("$PORT$", with: "\(event.port)")
        if config.dryRun {
            logger.notice("attackalert: [dry run] Host \(ip) has been blocked via wrappers with string: \"\(text)\"")
            done.succeeded = true
            return
        }
        do {
            switch try HostsDenyFile.add(line: text, to: config.hostsDenyFile) {
            case .added: logger.notice("attackalert: Host \(ip) has been blocked via wrappers with string: \"\(text)\"")
            case .alreadyPresent: logger.notice("Host \(ip) already in hosts.deny file, skipping.")
            }
            done.succeeded = true
        } catch {
            done.failures += 1
            logger.error("attackalert: cannot block \(ip) via wrappers: \(error.description)")
        }
    }
}
