@testable import Sensor
import PortsentryShared
import Testing
@testable import SensorCore

@Suite struct ClassifierTests {
    @Test(arguments: [
        (UInt8(0x00), "TCP NULL scan"),
        (0x29, "TCP XMAS scan"),           // FIN PSH URG (nmap -sX)
        (0x2B, "TCP XMAS scan"),           // + SYN: 2.x checks XMAS first
        (0x01, "TCP FIN scan"),
        (0x02, "TCP SYN/Normal scan"),
        (0xC2, "TCP SYN/Normal scan"),     // ECN-setup SYN (ECE+CWR) is still a SYN
        (0x10, "TCP ACK scan"),            // nmap -sA and -sW
        (0x11, "TCP Maimon scan"),         // nmap -sM
        (0x03, "Unknown Type: TCP Packet Flags: SYN: 1 FIN: 1 ACK: 0 PSH: 0 URG: 0 RST: 0"),
        (0x20, "Unknown Type: TCP Packet Flags: SYN: 0 FIN: 0 ACK: 0 PSH: 0 URG: 1 RST: 0"),
        (0x08, "Unknown Type: TCP Packet Flags: SYN: 0 FIN: 0 ACK: 0 PSH: 1 URG: 0 RST: 0"),
        (0x18, "Unknown Type: TCP Packet Flags: SYN: 0 FIN: 0 ACK: 1 PSH: 1 URG: 0 RST: 0"),
    ])
    func labels(flags: UInt8, label: String) throws {
        let kind = try #require(ProbeClassifier.classify(TCPFlags(rawValue: flags)))
        #expect(kind.label == label)
    }

    @Test(arguments: [UInt8(0x04), 0x14, 0x12, 0x16])
    func repliesAreBackscatterNotProbes(flags: UInt8) {
        #expect(ProbeClassifier.classify(TCPFlags(rawValue: flags)) == nil)
    }
}
