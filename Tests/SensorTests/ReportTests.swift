@testable import Sensor
import PortsentryShared
import Testing
#if canImport(Glibc)
import Glibc
@testable import SensorCore
#endif

@Suite(.serialized) struct ReportTests {
    init() {
        setenv("TZ", "UTC", 1)
        tzset()
    }

    func event(_ kind: ProbeKind = .tcpSYN, proto: TransportProtocol = .tcp) -> ScanEvent {
        // 2014-06-27T15:51:19.250Z: fail2ban's own sample line, written at 17:51:19 CEST.
        var e = ScanEvent(time: 1_403_884_279_250_000_000, source: IPAddress("192.168.56.1")!,
                          destination: IPAddress("192.168.56.10")!, proto: proto, port: 1, kind: kind, ipOptions: .notSet)
        e.ignored = .no
        e.triggered = .yes
        e.noblock = .yes
        e.blocked = .no
        return e
    }

    @Test func portsentry2LineIsByteExact() {
        #expect(EventFormatter.portsentry2(event()) ==
            "Scan from: [192.168.56.1] (192.168.56.1) protocol: [TCP] port: [1] type: [TCP SYN/Normal scan] IP opts: [not set] ignored: [false] triggered: [true] noblock: [true] blocked: [false]")
        var ignored = event(.udp, proto: .udp)
        ignored.ignored = .yes
        ignored.triggered = .unset
        ignored.noblock = .unset
        ignored.blocked = .unset
        ignored.ipOptions = .unknown
        #expect(EventFormatter.portsentry2(ignored) ==
            "Scan from: [192.168.56.1] (192.168.56.1) protocol: [UDP] port: [1] type: [UDP] IP opts: [unknown] ignored: [true] triggered: [unset] noblock: [unset] blocked: [unset]")
    }

    @Test func historyLinesInBothFormats() {
        #expect(EventFormatter.portsentry2History(event()).hasPrefix("2014-06-27T15:51:19.250+0000 Scan from: [192.168.56.1]"))
        // fail2ban's own test sample, "1403884279 - 06/27/2014 17:51:19 Host: ...", in UTC.
        #expect(EventFormatter.portsentry12History(event()) ==
            "1403884279 - 06/27/2014 15:51:19 Host: 192.168.56.1/192.168.56.1 Port: 1 TCP Blocked")
        var below = event()
        below.triggered = .no
        #expect(EventFormatter.portsentry12History(below) == nil)
    }

    @Test func jsonLine() {
        var e = event(.closedPortScan(ports: 12))
        e.ignoreReason = nil
        #expect(EventFormatter.json(e) == #"{"time":"2014-06-27T15:51:19.250Z","source":"192.168.56.1","destination":"192.168.56.10","protocol":"TCP","port":1,"type":"closed-port-scan","label":"Closed-port scan: 12 ports","evidence":"negative-reply","ip_options":"not set","ignored":false,"triggered":true,"noblock":true,"blocked":false,"ports":12}"#)
        #expect(EventFormatter.quote("a\"b\\\n\u{1}") == #""a\"b\\\n\u0001""#)
    }

    func detected(_ number: UInt32, ports: UInt32) -> DetectedEvent {
        DetectedEvent(event: event(), sourceEventNumber: number, sourceDistinctPorts: ports)
    }

    @Test func limiterCapsEachSource() {
        var l = OutputLimiter(rate: 1000, burst: 1000, perSource: 5)
        let admitted = (1...20).filter { l.admit(detected(UInt32($0), ports: 3), now: 0) }.count
        #expect(admitted == 5)
        #expect(l.total.perSource == 15)
    }

    @Test func floodEmptiesTheGeneralBucketButScannersStillGetThrough() {
        var l = OutputLimiter(rate: 10, burst: 20, perSource: 50)
        var spoofedWritten = 0
        for i in 0..<100_000 where l.admit(detected(1, ports: 1), now: Int64(i) * 10_000) { spoofedWritten += 1 }
        // 1 s of flood: the burst plus ~10 refills.
        #expect(spoofedWritten <= 20 + 11)
        let scanner = (1...50).filter { l.admit(detected(UInt32($0), ports: 10), now: 1_000_000_000) }.count
        #expect(scanner == 50)
        let summary = l.summary(seconds: 10) ?? ""
        #expect(summary.contains("not written"))
        #expect(l.summary(seconds: 10) == nil)
    }
}
