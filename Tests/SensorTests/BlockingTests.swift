@testable import Sensor
@testable import SensorCore
import Foundation
import PortsentryShared
import Testing

@Suite struct BlockPolicyTests {
    @Test func escalatesAndCaps() {
        let p = BlockPolicy(baseSeconds: 600, factor: 2, maxSeconds: 3600, memorySeconds: 86_400)
        #expect((1...5).map { p.seconds(forOffense: $0) } == [600, 1200, 2400, 3600, 3600])
        #expect(BlockPolicy(baseSeconds: nil).seconds(forOffense: 1) == nil)
        #expect(BlockPolicy(baseSeconds: 60, factor: 1).seconds(forOffense: 9) == 60)
        // A huge offense count cannot overflow.
        #expect(p.seconds(forOffense: 10_000) == 3600)
    }

    @Test func durationText() {
        #expect(DurationText.format(3600) == "1h")
        #expect(DurationText.format(7198) == "1h59m58s")
        #expect(DurationText.format(nil) == "ever")
    }
}

@Suite struct BlockTableTests {
    let host = IPPrefix(host: IPAddress("198.51.100.7")!)

    func block(_ target: IPPrefix, expires: Int64? = 1000) -> Block {
        Block(target: target, created: 0, expires: expires, origin: .detection, reason: "test", offense: 1)
    }

    @Test func coveringFindsHostsAndNetworks() throws {
        let t = BlockTable()
        try t.insert(block(host))
        try t.insert(block(try IPPrefix(parsing: "203.0.113.0/24"), expires: nil))
        #expect(t.covering(IPAddress("198.51.100.7")!, now: 10) != nil)
        #expect(t.covering(IPAddress("203.0.113.200")!, now: 10_000_000) != nil)  // permanent
        #expect(t.covering(IPAddress("198.51.100.8")!, now: 10) == nil)
        #expect(t.covering(IPAddress("198.51.100.7")!, now: 1000) == nil)  // expired
    }

    @Test func overlappingNetworksAreRefused() throws {
        let t = BlockTable()
        try t.insert(block(try IPPrefix(parsing: "10.0.0.0/8")))
        #expect(throws: BlockTable.InsertError.self) { try t.insert(block(try IPPrefix(parsing: "10.1.0.0/16"))) }
        try t.insert(block(IPPrefix(host: IPAddress("10.1.2.3")!)))  // hosts inside are fine
        #expect(t.count == 2)
    }

    @Test func offensesAreRememberedThenForgotten() {
        let t = BlockTable()
        let p = BlockPolicy(baseSeconds: 60, memorySeconds: 100)
        let a = IPAddress("198.51.100.7")!
        #expect(t.recordOffense(a, policy: p, now: 0) == 1)
        #expect(t.recordOffense(a, policy: p, now: 50) == 2)
        #expect(t.recordOffense(a, policy: p, now: 500) == 1)
    }

    @Test func savesAtomicallyAndRestoresOnlyLiveBlocks() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-state-\(getpid())-\(Int.random(in: 0...1_000_000))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("blocks.json").path
        let t = BlockTable()
        try t.insert(block(host, expires: 500))
        try t.insert(block(IPPrefix(host: IPAddress("2001:db8::9")!), expires: 5000))
        try t.insert(block(try IPPrefix(parsing: "203.0.113.0/24"), expires: nil))
        _ = t.recordOffense(IPAddress("2001:db8::9")!, policy: BlockPolicy(), now: 100)
        try t.save(to: path)
        #expect(!t.dirty)
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        let restored = try BlockTable.load(from: path, now: 1000)
        #expect(Set(restored.blocks.keys.map(\.description)) == ["2001:db8::9", "203.0.113.0/24"])
        #expect(restored.recordOffense(IPAddress("2001:db8::9")!, policy: BlockPolicy(), now: 200) == 2)
    }

    @Test func corruptStateIsAClearError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pst-bad-\(getpid()).json").path
        try "{not json".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        #expect(throws: FirewallError.self) { try BlockTable.load(from: path, now: 0) }
    }
}

@Suite struct CircuitBreakerTests {
    @Test func opensAtTheLimitAndClosesWhenTheRateFalls() {
        var b = CircuitBreaker(limit: 3, window: 60)
        #expect((0..<3).map { b.request(now: Int64($0)).allowed } == [true, true, true])
        let fourth = b.request(now: 3)
        #expect(!fourth.allowed && fourth.transition == .opened)
        #expect(b.request(now: 4) == (false, .none))
        #expect(b.isOpen && b.refused == 2)
        // 60 s after the first block there is room again.
        #expect(b.prune(now: 60) == .closed)
        #expect(b.request(now: 61).allowed)
    }
}

@Suite struct FirewallScriptTests {
    @Test func nftablesScriptGroupsBySetRemovalsFirst() throws {
        let script = NftablesFirewall.script(for: [
            .add(IPPrefix(host: IPAddress("198.51.100.7")!), seconds: 3600),
            .add(try IPPrefix(parsing: "2001:db8:1::/48"), seconds: nil),
            .remove(IPPrefix(host: IPAddress("198.51.100.7")!)),
        ])
        #expect(script == """
            delete element inet portsentry blocked4 { 198.51.100.7 }
            add element inet portsentry blocked4 { 198.51.100.7 timeout 3600s }
            add element inet portsentry blocked6_nets { 2001:db8:1::/48 }
            """)
    }

    @Test func largeBatchesAreChunked() {
        let changes = (0..<12_000).map { FirewallChange.add(IPPrefix(host: IPAddress(ipv4: 0x0A00_0000 + UInt32($0))), seconds: 60) }
        let lines = NftablesFirewall.script(for: changes).split(separator: "\n")
        #expect(lines.count == 3)
    }
}

@Suite struct ProtectedAddressTests {
    func write(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-proc-\(getpid())-\(Int.random(in: 0...1_000_000))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return dir.path
    }

    @Test func gatewaysResolversAndSessionPeersFromProc() throws {
        // As the kernel prints them: IPv4 words in host byte order (little-endian here).
        let dir = try write([
            "route": """
                Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
                eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0
                eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
                """,
            "ipv6_route": "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n",
            "tcp": """
                  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
                   0: 0A00020A:0016 0500A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 20 4 1 10 -1
                   1: 0A00020A:0050 0600A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 20 4 1 10 -1
                """,
            "tcp6": "  sl  local_address remote_address st\n",
            "resolv.conf": "# comment\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = ProtectedAddresses.read(gateways: true, resolvers: true, sessionPorts: PortSet([22...22]),
                                        procNet: dir, resolvConf: dir + "/resolv.conf")
        #expect(p.reason(for: IPAddress("10.0.2.1")!) == .gateway)
        #expect(p.reason(for: IPAddress("fe80::1")!) == .gateway)
        #expect(p.reason(for: IPAddress("192.0.2.53")!) == .resolver)
        #expect(p.reason(for: IPAddress("2001:db8::53")!) == .resolver)
        #expect(p.reason(for: IPAddress("192.168.0.5")!) == .session)   // SSH peer
        #expect(p.reason(for: IPAddress("192.168.0.6")!) == nil)        // port 80 peer
    }
}

@Suite struct CommandRunnerTests {
    @Test func exitStatusesAndStderr() {
        #expect(CommandRunner.shell("exit 0", timeoutSeconds: 5).succeeded)
        let failed = CommandRunner.shell("echo nope >&2; exit 3", timeoutSeconds: 5)
        #expect(!failed.succeeded && failed.status == 3 && failed.stderr == "nope")
        let slow = CommandRunner.shell("sleep 5", timeoutSeconds: 1)
        #expect(slow.timedOut && !slow.succeeded)
        let missing = CommandRunner.run(["/nonexistent/tool"], timeoutSeconds: 5)
        #expect(!missing.succeeded)
        #expect(CommandRunner.run(["/bin/cat"], timeoutSeconds: 5, stdin: "hello").succeeded)
    }
}

@Suite struct HostsDenyTests {
    @Test func addsOnceAndRefusesUnsafeFiles() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pst-hosts.deny-\(getpid())").path
        try "# existing\nALL: 192.0.2.1".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        chmod(path, 0o644)
        #expect(try HostsDenyFile.add(line: "ALL: 198.51.100.7", to: path) == .added)
        #expect(try HostsDenyFile.add(line: "ALL: 198.51.100.7", to: path) == .alreadyPresent)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "# existing\nALL: 192.0.2.1\nALL: 198.51.100.7\n")
        chmod(path, 0o666)
        #expect(throws: FirewallError.self) { try HostsDenyFile.add(line: "ALL: 198.51.100.8", to: path) }
        let link = path + ".link"
        symlink(path, link)
        defer { unlink(link) }
        #expect(throws: FirewallError.self) { try HostsDenyFile.add(line: "ALL: 198.51.100.8", to: link) }
    }
}
