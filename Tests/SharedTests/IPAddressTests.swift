import PortsentryShared
import Testing

@Suite struct IPAddressTests {
    @Test func parsesAndPrintsIPv4() throws {
        let a = try #require(IPAddress("192.0.2.7"))
        #expect(a.isIPv4)
        #expect(a.ipv4Value == 0xC000_0207)
        #expect(a.description == "192.0.2.7")
    }

    @Test func ipv4MappedIPv6IsPlainIPv4() throws {
        let mapped = try #require(IPAddress("::ffff:10.1.2.3"))
        #expect(mapped == IPAddress("10.1.2.3"))
        #expect(mapped.description == "10.1.2.3")
    }

    @Test func printsIPv6InRFC5952Form() throws {
        #expect(try #require(IPAddress("2001:0DB8:0000:0000:0000:0000:0000:0001")).description == "2001:db8::1")
        #expect(try #require(IPAddress("fe80::1%eth0")).description == "fe80::1")
        #expect(try #require(IPAddress("::1")).isLoopback)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "example.com", "1.2.3.4/24", "::g", " 1.2.3.4"])
    func rejectsNonAddresses(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func prefixMasksHostBits() throws {
        // Portsentry 2.0.7 stores 192.168.1.5/24 unmasked and then never matches it.
        let p = try IPPrefix(parsing: "192.168.1.5/24")
        #expect(p.description == "192.168.1.0/24")
        #expect(p.contains(try #require(IPAddress("192.168.1.77"))))
        #expect(!p.contains(try #require(IPAddress("192.168.2.1"))))
        let v6 = try IPPrefix(parsing: "2001:db8:aa:bb::5/64")
        #expect(v6.description == "2001:db8:aa:bb::/64")
        #expect(v6.contains(try #require(IPAddress("2001:db8:aa:bb:1:2:3:4"))))
        #expect(!v6.contains(try #require(IPAddress("2001:db8:aa:bc::1"))))
    }

    @Test func prefixFamiliesDoNotMix() throws {
        let all4 = try IPPrefix(parsing: "0.0.0.0/0")
        #expect(all4.contains(try #require(IPAddress("203.0.113.9"))))
        #expect(!all4.contains(try #require(IPAddress("2001:db8::1"))))
    }

    @Test func prefixErrorsSayWhatIsWrong() {
        #expect(throws: IPPrefix.ParseError.badLength("10.0.0.0/33", max: 32)) { try IPPrefix(parsing: "10.0.0.0/33") }
        #expect(throws: IPPrefix.ParseError.notAnAddress("host/24")) { try IPPrefix(parsing: "host/24") }
        #expect(throws: IPPrefix.ParseError.badLength("::/abc", max: 128)) { try IPPrefix(parsing: "::/abc") }
    }

    @Test func maskingAtEveryLength() throws {
        let a = try #require(IPAddress("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
        for bits in 0...128 {
            let m = a.masked(toBits: bits)
            let ones = m.high.nonzeroBitCount + m.low.nonzeroBitCount
            #expect(ones == bits, "masked to \(bits) bits")
        }
    }
}
