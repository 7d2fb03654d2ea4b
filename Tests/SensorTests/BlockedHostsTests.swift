import Foundation
@testable import Sensor
import PortsentryShared
import Testing

/// Portsentry's BLOCKED_FILE: its byte format, its repair, and the rule that KILL_* actions
/// run once per host while the native firewall follows its own expiry.
@Suite struct BlockedHostsTests {
    func tempPath(_ name: String) -> String {
        NSTemporaryDirectory() + "blocked-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)"
    }

    /// The records upstream's hexdump shows: `0200 7f000001 0a00 0000…0001` on Linux.
    @Test func recordsAreFamilyThenAddress() {
        let v4 = BlockedHosts.encode(IPAddress("127.0.0.1")!)
        let v6 = BlockedHosts.encode(IPAddress("::1")!)
        #expect(v4 == [0x02, 0x00, 0x7F, 0x00, 0x00, 0x01])
        #expect(v6.count == 18 && v6[0] == 0x0A && v6[1] == 0x00 && v6[17] == 0x01 && v6[2..<17].allSatisfy { $0 == 0 })
        let (decoded, problem) = BlockedHosts.decode(v4 + v6)
        #expect(decoded == [IPAddress("127.0.0.1")!, IPAddress("::1")!])
        #expect(problem == nil)
    }

    @Test func aDamagedTailIsDroppedAndTheFileRewritten() throws {
        let path = tempPath("tail")
        defer { unlink(path) }
        let good = BlockedHosts.encode(IPAddress("198.51.100.7")!)
        for tail: [UInt8] in [[0x02, 0x00, 0xC6], [0x07, 0x00, 1, 2, 3, 4], [0x02]] {
            #expect(FileManager.default.createFile(atPath: path, contents: Data(good + tail)))
            let cache = try BlockedHosts(file: path)
            #expect(cache.hosts == [IPAddress("198.51.100.7")!])
            #expect(FileManager.default.contents(atPath: path) == Data(good))
        }
    }

    @Test func missingFileIsCreatedEmptyAndAppendsAreKept() throws {
        let path = tempPath("new")
        defer { unlink(path) }
        let cache = try BlockedHosts(file: path)
        #expect(FileManager.default.contents(atPath: path)?.count == 0)
        cache.add(event(from: "198.51.100.7"))
        cache.add(event(from: "198.51.100.7"))
        cache.add(event(from: "2001:db8::7"))
        #expect(FileManager.default.contents(atPath: path)?.count == 6 + 18)
        // A restart remembers both; removing one rewrites the file.
        let reloaded = try BlockedHosts(file: path)
        #expect(reloaded.hosts == [IPAddress("198.51.100.7")!, IPAddress("2001:db8::7")!])
        #expect(reloaded.remove(IPAddress("198.51.100.7")!))
        #expect(FileManager.default.contents(atPath: path)?.count == 18)
    }

    /// A 1.2 configuration: 1.2's text lines in BLOCKED_FILE.<mode>, read back on restart.
    @Test func portsentry12TextFilesPerMode() throws {
        let path = tempPath("12")
        defer { unlink(path + ".stcp"); unlink(path + ".sudp") }
        let format = BlockedHosts.Format.text12(tcp: "stcp", udp: "sudp")
        let cache = try BlockedHosts(file: path, format: format)
        cache.add(event(from: "198.51.100.7"))
        var udp = event(from: "2001:db8::7")
        udp.proto = .udp
        cache.add(udp)
        let tcpLines = String(decoding: FileManager.default.contents(atPath: path + ".stcp") ?? Data(), as: UTF8.self)
        #expect(tcpLines.hasSuffix(" Host: 198.51.100.7/198.51.100.7 Port: 11 TCP Blocked\n"))
        #expect(FileManager.default.contents(atPath: path + ".sudp") != nil)
        let reloaded = try BlockedHosts(file: path, format: format)
        #expect(reloaded.hosts == [IPAddress("198.51.100.7")!, IPAddress("2001:db8::7")!])
        #expect(BlockedHosts.address12("1403884279 - 06/27/2014 17:51:19 Host: gw.example/192.168.56.1 Port: 1 TCP Blocked")
                == IPAddress("192.168.56.1"))
        #expect(reloaded.remove(IPAddress("198.51.100.7")!))
        #expect(String(decoding: FileManager.default.contents(atPath: path + ".stcp") ?? Data(), as: UTF8.self).isEmpty)
    }

    @Test func aFileThatIsNotRegularIsRefused() throws {
        #expect(throws: TextFile.Failure.self) { try BlockedHosts(file: "/") }
    }

    // MARK: the responder's use of it

    func event(from source: String) -> ScanEvent {
        var e = ScanEvent(time: 0, source: IPAddress(source)!, destination: IPAddress("192.0.2.10")!, proto: .tcp,
                          port: 11, kind: .tcpSYN, ipOptions: .notSet)
        e.ignored = .no
        e.triggered = .yes
        return e
    }

    /// A Portsentry configuration (KILL_HOSTS_DENY, FIREWALL left at auto) gets Portsentry's
    /// behaviour: no native firewall, the action once, then "already blocked".
    @Test func killActionsRunOncePerHostAndNoNativeBlockIsAdded() throws {
        let deny = tempPath("hosts.deny")
        let blockedPath = tempPath("blocked")
        defer { unlink(deny); unlink(blockedPath) }
        #expect(FileManager.default.createFile(atPath: deny, contents: Data()))
        var c = SensorConfig()
        c.blockTCP = .block
        c.killHostsDeny = "ALL: $TARGET$"
        c.hostsDenyFile = deny
        #expect(c.nativeFirewall == .none)
        let cache = try BlockedHosts(file: blockedPath)
        let r = Responder(config: c, firewall: nil, blocks: BlockTable(), commandBlocks: cache, readsHostState: false)
        var first = event(from: "198.51.100.7")
        r.respond(to: &first, now: 0)
        #expect(first.blocked == .yes && r.counters.blocked == 1)
        var again = event(from: "198.51.100.7")
        r.respond(to: &again, now: 1)
        #expect(again.blocked == .yes && r.counters.alreadyBlocked == 1)
        #expect(r.blocks.count == 0)   // nothing in the native table: nothing to expire
        #expect(FileManager.default.contents(atPath: blockedPath)?.count == 6)
        #expect(String(decoding: FileManager.default.contents(atPath: deny) ?? Data(), as: UTF8.self) == "ALL: 198.51.100.7\n")
    }

    /// FIREWALL="nftables" plus KILL_RUN_CMD: after the native block expires, the host is
    /// blocked natively again, but its command does not run a second time.
    @Test func anExpiredNativeBlockIsRenewedWithoutRerunningCommands() throws {
        let marker = tempPath("runs")
        defer { unlink(marker) }
        var c = SensorConfig()
        c.blockTCP = .block
        c.firewall = .nftables
        c.blockPolicy.baseSeconds = 60
        c.killRunCmd = "echo $TARGET$ >> \(marker)"
        let fake = DryRunFirewall()
        let r = Responder(config: c, firewall: fake, blocks: BlockTable(), readsHostState: false)
        var first = event(from: "198.51.100.7")
        r.respond(to: &first, now: 1000)
        r.expire(now: 1061)
        var later = event(from: "198.51.100.7")
        r.respond(to: &later, now: 1061)
        #expect(later.blocked == .yes)
        #expect(fake.applied.count == 2)
        let runs = String(decoding: FileManager.default.contents(atPath: marker) ?? Data(), as: UTF8.self)
        #expect(runs == "198.51.100.7\n")
    }

    @Test func withoutKillRouteOrHostsDenyAutoMeansNftables() {
        var c = SensorConfig()
        #expect(c.nativeFirewall == .nftables)
        c.killRunCmd = "logger $TARGET$"
        #expect(c.nativeFirewall == .nftables)
        c.killRoute = "/sbin/route add -host $TARGET$ reject"
        #expect(c.nativeFirewall == .none)
        c.firewall = .nftables
        #expect(c.nativeFirewall == .nftables)
    }
}
