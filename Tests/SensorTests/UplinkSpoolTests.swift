@testable import Sensor
import Foundation
import PortsentryShared
import Testing

/// The spool with no controller to deliver to (a loopback port where nothing listens).
@Suite struct UplinkSpoolTests {
    @Test func theSpoolIsBoundedAndSequencesNeverRepeat() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-spool-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let enrollment = Enrollment(url: "https://127.0.0.1:1", sensor: "web-1", caFile: "/nonexistent", pin: nil,
                                    controllerSigningKey: String(repeating: "00", count: 32))
        let key = try Ed25519.PrivateKey.generate()
        func event(_ port: Int) -> ScanEvent {
            ScanEvent(time: Int64(port), source: IPAddress("198.51.100.7")!, destination: IPAddress("192.0.2.10")!, proto: .tcp,
                      port: UInt16(port % 65535 + 1), kind: .tcpSYN, ipOptions: .notSet)
        }
        let bound = 200 << 10  // room for two batches of 500 events
        let uplink = try Uplink(enrollment: enrollment, key: key, stateDir: dir, maxSpoolBytes: bound, logger: .init(label: "t"))
        for i in 0..<5000 { uplink.add(event(i), now: Int64(i)) }  // 10 full batches of 500
        uplink.stop()
        let spool = dir + "/spool"
        let files = Uplink.spooled(spool)
        let size = files.reduce(0) { $0 + Uplink.size(spool + "/" + $1) }
        #expect(size <= bound && files.count == 2)
        #expect(uplink.droppedEvents > 0 && uplink.droppedEvents % 500 == 0, "whole batches are dropped and counted")
        #expect(files.last == Uplink.name(10))
        // Every spooled batch verifies against the sensor's key.
        let batch = try #require(Uplink.read(spool + "/" + files.last!))
        let env = SignedEnvelope(sensorID: "web-1", sequence: batch.sequence, timestampMillis: batch.timestamp,
                                 bodyDigest: Hex.decode(batch.digest) ?? [], signature: Hex.decode(batch.signature) ?? [])
        try env.verify(body: batch.body, key: try key.publicKey)

        // A restart continues the numbering.
        let again = try Uplink(enrollment: enrollment, key: key, stateDir: dir, maxSpoolBytes: bound, logger: .init(label: "t"))
        again.add(event(1), now: 0)
        again.stop()
        #expect(Uplink.spooled(spool).last == Uplink.name(11))
    }
}
