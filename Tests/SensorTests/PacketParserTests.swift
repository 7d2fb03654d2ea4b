@testable import Sensor
import PortsentryShared
import Testing
@testable import SensorCore

@Suite struct PacketParserTests {
    let syn = Frame.ipv4("198.51.100.2", "192.0.2.10", proto: 6, Frame.tcp(dport: 79, flags: 0x02))

    @Test func ipv4TCPOverEveryLinkType() throws {
        let frames: [(LinkType, [UInt8])] = [
            (.raw, syn),
            (.ethernet, Frame.ethernet(syn, etherType: 0x0800)),
            (.ethernet, Frame.ethernet(syn, etherType: 0x0800, vlans: 2)),
            (.linuxSLL, [UInt8](repeating: 0, count: 14) + Frame.be16(0x0800) + syn),
            (.linuxSLL2, Frame.be16(0x0800) + [UInt8](repeating: 0, count: 18) + syn),
            (.bsdLoopback, [2, 0, 0, 0] + syn),
            (.bsdLoopback, [0, 0, 0, 2] + syn),
        ]
        for (link, bytes) in frames {
            let p = try #require(Frame.packet(bytes, link), "\(link)")
            #expect(p.transport == .tcp)
            #expect(p.source == IPAddress("198.51.100.2"))
            #expect(p.destination == IPAddress("192.0.2.10"))
            #expect(p.destinationPort == 79)
            #expect(p.tcpFlags == .syn)
            #expect(p.ipOptions == .notSet)
        }
    }

    @Test func tooManyVLANTagsIsMalformed() {
        #expect(Frame.parse(Frame.ethernet(syn, etherType: 0x0800, vlans: 3), .ethernet) == .skipped(.malformed))
    }

    @Test func ipv4OptionsAreFlagged() throws {
        let withOptions = Frame.ipv4("198.51.100.2", "192.0.2.10", proto: 6, Frame.tcp(dport: 1, flags: 0),
                                     options: [0x01, 0x01, 0x01, 0x00])
        #expect(try #require(Frame.packet(withOptions)).ipOptions == .set)
    }

    @Test func udpAndIPv6() throws {
        let u = try #require(Frame.packet(Frame.ipv4("198.51.100.2", "192.0.2.10", proto: 17, Frame.udp(dport: 7))))
        #expect(u.transport == .udp && u.destinationPort == 7)
        let v6 = try #require(Frame.packet(Frame.ethernet(
            Frame.ipv6("2001:db8::2", "2001:db8::1", proto: 6, Frame.tcp(dport: 111, flags: 0x29)), etherType: 0x86DD), .ethernet))
        #expect(v6.source == IPAddress("2001:db8::2"))
        #expect(v6.tcpFlags == [.fin, .psh, .urg])
        #expect(v6.ipOptions == .unknown)
    }

    @Test func ipv6ExtensionHeadersAreWalked() throws {
        let hopByHop: (UInt8, [UInt8]) = (0, [0, 0, 1, 4, 0, 0, 0, 0])
        let destOptions: (UInt8, [UInt8]) = (60, [0, 1] + [UInt8](repeating: 0, count: 14))
        let routing: (UInt8, [UInt8]) = (43, [0, 0, 0, 0, 0, 0, 0, 0])
        let frame = Frame.ipv6("2001:db8::2", "2001:db8::1", proto: 17, Frame.udp(dport: 9),
                               extensions: [hopByHop, destOptions, routing])
        let p = try #require(Frame.packet(frame))
        #expect(p.transport == .udp && p.destinationPort == 9)
    }

    @Test func ipv6FragmentsFirstCarriesTheProbeLaterOnesDoNot() throws {
        let first: (UInt8, [UInt8]) = (44, [0, 0, 0x00, 0x01, 0, 0, 0, 7])  // offset 0, M=1
        let later: (UInt8, [UInt8]) = (44, [0, 0, 0x00, 0x08, 0, 0, 0, 7])  // offset 1
        let f1 = Frame.ipv6("2001:db8::2", "2001:db8::1", proto: 6, Frame.tcp(dport: 1, flags: 2), extensions: [first])
        #expect(try #require(Frame.packet(f1)).tcpFlags == .syn)
        let f2 = Frame.ipv6("2001:db8::2", "2001:db8::1", proto: 6, Frame.tcp(dport: 1, flags: 2), extensions: [later])
        #expect(Frame.parse(f2) == .skipped(.laterFragment))
    }

    @Test func tooLongExtensionChainIsRefused() {
        let ext: (UInt8, [UInt8]) = (60, [0, 0, 0, 0, 0, 0, 0, 0])
        let frame = Frame.ipv6("2001:db8::2", "2001:db8::1", proto: 6, Frame.tcp(dport: 1, flags: 2),
                               extensions: Array(repeating: ext, count: PacketParser.maxExtensionHeaders + 2))
        #expect(Frame.parse(frame) == .skipped(.malformed))
    }

    @Test func ipv4FragmentsFirstWithFlagsIsTCPTinyFirstIsFragmentHeadLaterIsSkipped() throws {
        let full = Frame.ipv4("198.51.100.2", "192.0.2.10", proto: 6, Frame.tcp(dport: 9, flags: 2), fragment: 0x2000)
        #expect(try #require(Frame.packet(full)).transport == .tcp)
        // nmap -f: 8 bytes of TCP header in the first fragment; the flags come later.
        let tiny = Frame.ipv4("198.51.100.2", "192.0.2.10", proto: 6, Array(Frame.tcp(dport: 9, flags: 2).prefix(8)),
                              fragment: 0x2000)
        let head = try #require(Frame.packet(tiny))
        #expect(head.transport == .tcpFragmentHead && head.destinationPort == 9)
        let later = Frame.ipv4("198.51.100.2", "192.0.2.10", proto: 6, [1, 2, 3, 4, 5, 6, 7, 8], fragment: 0x0001)
        #expect(Frame.parse(later) == .skipped(.laterFragment))
    }

    @Test func icmpPortUnreachableQuotesTheProbe() throws {
        let probe = Frame.ipv4("198.51.100.2", "192.0.2.10", proto: 17, Frame.udp(sport: 5353, dport: 2000))
        let icmp: [UInt8] = [3, 3, 0, 0, 0, 0, 0, 0] + probe
        let reply = try #require(Frame.packet(Frame.ipv4("192.0.2.10", "198.51.100.2", proto: 1, icmp)))
        #expect(reply.transport == .portUnreachable)
        #expect(reply.embeddedProtocol == .udp)
        #expect(reply.embeddedSource == IPAddress("198.51.100.2"))
        #expect(reply.destinationPort == 2000)

        let probe6 = Frame.ipv6("2001:db8::2", "2001:db8::1", proto: 17, Frame.udp(dport: 3000))
        let reply6 = try #require(Frame.packet(Frame.ipv6("2001:db8::1", "2001:db8::2", proto: 58, [1, 4, 0, 0, 0, 0, 0, 0] + probe6)))
        #expect(reply6.transport == .portUnreachable && reply6.destinationPort == 3000)

        let echo = Frame.ipv4("192.0.2.10", "198.51.100.2", proto: 1, [8, 0, 0, 0, 0, 0, 0, 0] + probe)
        #expect(Frame.parse(echo) == .skipped(.otherProtocol))
    }

    @Test func notIPIsSkipped() {
        #expect(Frame.parse(Frame.ethernet([0, 1, 2], etherType: 0x0806), .ethernet) == .skipped(.notIP))
        #expect(Frame.parse([0x50, 0, 0], .raw) == .skipped(.notIP))
    }

    @Test func bogusLengthsAreMalformed() {
        var lying = syn
        lying[0] = 0x44  // IHL 4: shorter than a header
        #expect(Frame.parse(lying) == .skipped(.malformed))
        var shortTotal = syn
        shortTotal[2] = 0; shortTotal[3] = 10  // total length below the header length
        #expect(Frame.parse(shortTotal) == .skipped(.malformed))
    }

    /// Every prefix of every valid frame must parse to a result, never read past the end.
    /// (Running under the address sanitizer makes an over-read fatal; see scripts/test.sh.)
    @Test func everyTruncationIsHandled() {
        let samples: [(LinkType, [UInt8])] = [
            (.ethernet, Frame.ethernet(syn, etherType: 0x0800, vlans: 1)),
            (.raw, Frame.ipv6("2001:db8::2", "2001:db8::1", proto: 6, Frame.tcp(dport: 1, flags: 2),
                              extensions: [(0, [0, 0, 1, 4, 0, 0, 0, 0]), (44, [0, 0, 0, 1, 0, 0, 0, 7])])),
            (.raw, Frame.ipv4("192.0.2.10", "198.51.100.2", proto: 1, [3, 3, 0, 0, 0, 0, 0, 0]
                              + Frame.ipv4("198.51.100.2", "192.0.2.10", proto: 17, Frame.udp(dport: 2000)))),
            (.linuxSLL2, Frame.be16(0x86DD) + [UInt8](repeating: 0, count: 18)
                + Frame.ipv6("2001:db8::2", "2001:db8::1", proto: 17, Frame.udp(dport: 9))),
        ]
        for (link, full) in samples {
            for n in 0...full.count {
                let cut = Array(full.prefix(n))
                let result = cut.withUnsafeBytes { raw in
                    // A copy into an exact-size allocation so any over-read leaves the buffer.
                    let exact = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, 1), alignment: 1)
                    defer { exact.deallocate() }
                    exact.copyMemory(from: raw)
                    return PacketParser.parse(UnsafeRawBufferPointer(rebasing: exact[0..<n]), linkType: link)
                }
                if n == full.count {
                    if case .skipped = result { Issue.record("full \(link) frame was skipped") }
                }
            }
        }
    }

    /// Deterministic random frames: the parser must survive anything.
    @Test func randomGarbageNeverCrashes() {
        var rng = SplitMix64(seed: 0x5EED)
        var packets = 0
        for i in 0..<20_000 {
            let count = Int(rng.next() % 200)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if count > 0, i % 2 == 0 { bytes[0] = 0x45 }  // steer half of them into the IPv4 path
            if count > 0, i % 3 == 0 { bytes[0] = 0x60 }
            if case .packet = Frame.parse(bytes) { packets += 1 }
        }
        #expect(packets < 20_000)
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
