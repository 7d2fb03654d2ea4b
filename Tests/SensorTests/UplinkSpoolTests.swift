@testable import Sensor
import Foundation
import PortsentryShared
import Testing

/// The spool with no controller to deliver to (a loopback port where nothing listens).
@Suite struct UplinkSpoolTests {
    static let enrollment = Enrollment(url: "https://127.0.0.1:1", sensor: "web-1", caFile: "/nonexistent", pin: nil,
                                       controllerSigningKey: String(repeating: "00", count: 32))

    static func event(_ port: Int) -> ScanEvent {
        ScanEvent(time: Int64(port), source: IPAddress("198.51.100.7")!, destination: IPAddress("192.0.2.10")!, proto: .tcp,
                  port: UInt16(port % 65535 + 1), kind: .tcpSYN, ipOptions: .notSet)
    }

    @Test func theSpoolIsBoundedAndSequencesNeverRepeat() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-spool-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try Ed25519.PrivateKey.generate()
        // Room for two batches of 500 events (a spool file is the body plus a short header line).
        let batchBytes = ReportProtocol.body(events: (0..<500).map(Self.event)).count + 100
        let bound = batchBytes * 5 / 2
        let uplink = try Uplink(enrollment: Self.enrollment, key: key, stateDir: dir, maxSpoolBytes: bound, logger: .init(label: "t"))
        for i in 0..<5000 { uplink.add(Self.event(i), now: Int64(i)) }  // 10 full batches of 500
        uplink.stop()
        let spool = dir + "/spool"
        let files = Uplink.spooled(spool)
        let size = files.reduce(0) { $0 + Uplink.size(spool + "/" + $1) }
        #expect(size <= bound && files.count == 2)
        let c = uplink.counters
        #expect(c.sealedEvents == 5000 && c.droppedBatches == 8 && c.droppedEvents == 4000, "whole batches are dropped and counted: \(c)")
        #expect(c.sealedEvents == c.droppedEvents + 500 * files.count, "every sealed event is spooled or counted")
        let last = try #require(Uplink.read(spool + "/" + files.last!))
        #expect(last.events == 500 && (try? JSONSerialization.jsonObject(with: Data(last.body))) != nil)

        // A restart continues the numbering.
        let again = try Uplink(enrollment: Self.enrollment, key: key, stateDir: dir, maxSpoolBytes: bound, logger: .init(label: "t"))
        again.add(Self.event(1), now: 0)
        again.stop()
        #expect(Uplink.spooled(spool).last == Uplink.name(last.sequence + 1))
    }

    @Test func aLostOrCorruptSequenceFileNeverReusesANumber() {
        let now: Int64 = 1_764_000_000_000
        #expect(Uplink.startingSequence(saved: "41", spooled: 0, nowMillis: now) == (41, false))
        #expect(Uplink.startingSequence(saved: "41", spooled: 50, nowMillis: now) == (50, false))
        for garbage in ["", "0", "\u{0}\u{0}", "x17", "-3", "99999999999999999999999"] {
            #expect(Uplink.startingSequence(saved: garbage, spooled: 7, nowMillis: now) == (UInt64(now), true), "\(garbage)")
        }
        // No file at all (a first enrollment, or a deleted file): the clock too.
        #expect(Uplink.startingSequence(saved: nil, spooled: 0, nowMillis: now).0 == UInt64(now))
    }

    @Test func unreadableSpoolFilesAreRecognised() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-spoolread-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = Uplink.spoolFile(events: 1, body: ReportProtocol.body(events: [Self.event(1)]))
        let cases: [String: Data] = [
            "empty": Data(), "garbage": Data("garbage".utf8), "no body": Data("{\"events\":1}\n".utf8),
            "truncated header": good.prefix(10), "zero events": Data("{\"events\":0}\nx".utf8),
        ]
        for (what, data) in cases {
            let path = dir + "/" + Uplink.name(1)
            try data.write(to: URL(fileURLWithPath: path))
            #expect(Uplink.read(path) == nil, "\(what)")
        }
        try good.write(to: URL(fileURLWithPath: dir + "/" + Uplink.name(2)))
        #expect(Uplink.read(dir + "/" + Uplink.name(2))?.events == 1)
    }
}
