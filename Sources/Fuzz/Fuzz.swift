// libFuzzer harness for every decoder that takes outside input. Built only by scripts/fuzz.sh
// (PORTSENTRY_FUZZ=1: the project's modules are instrumented for coverage and
// AddressSanitizer). One binary; FUZZ_TARGET picks what the input is fed to:
//   packet             a captured frame (first byte picks the link type) through the parser
//                      and, when it parses, the detector
//   sensor-config      portsentry.conf text
//   ignore-file        an ignore file
//   controller-config  controller.conf text
//   blocklist          a poll answer (receipt + update), an update body, a fleet state file
//   batch              a batch body as the controller decodes it once verified, and (one
//                      input in sixteen) the whole signed path
//   operator           an operator API request body, a heartbeat, a control-socket request,
//                      an enrollment and a poll body
// A crash, a trap (overflow, bad index) or an ASan report is a finding.
import Foundation
import Logging
@testable import Controller
@testable import Sensor
import PortsentryShared
@testable import SensorCore
@testable import ControllerCore

enum Target: String, CaseIterable {
    case packet, sensorConfig = "sensor-config", ignoreFile = "ignore-file", controllerConfig = "controller-config"
    case blocklist, batch, `operator`
}

let target: Target = {
    guard let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"], let t = Target(rawValue: name) else {
        let names = Target.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("portsentry-fuzz: set FUZZ_TARGET to one of: \(names)\n".utf8))
        exit(2)
    }
    return t
}()

/// Fixed keys: signatures made here verify, so inputs reach the code behind the checks.
let sensorKey = try! Ed25519.PrivateKey(raw: [UInt8](repeating: 7, count: 32))
let controllerKey = try! Ed25519.PrivateKey(raw: [UInt8](repeating: 9, count: 32))
let sensorPublicKey = try! sensorKey.publicKey.raw
// Derived once: deriving a public key per input would cost as much as the code under test.
let controllerPublicKey = try! controllerKey.publicKey
// libFuzzer calls the harness from one thread.
nonisolated(unsafe) let detector: Detector = {
    var host = HostView()
    host.acceptAllDestinations = true  // every destination is "this host", as in replay
    return Detector(settings: DetectionSettings(), host: host, ignore: AddressSet([]))
}()
nonisolated(unsafe) var clock: Int64 = 1_000_000_000

func fuzzOne(_ bytes: UnsafeRawBufferPointer) {
    let text = String(decoding: bytes, as: UTF8.self)
    switch target {
    case .packet:
        guard let first = bytes.first else { return }
        let links: [LinkType] = [.ethernet, .linuxSLL, .linuxSLL2, .raw, .bsdLoopback]
        let frame = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        if case .packet(let p) = PacketParser.parse(frame, linkType: links[Int(first) % links.count]) {
            clock += 1_000_000
            _ = detector.process(p, now: clock, wallTime: clock)
        }
    case .sensorConfig:
        _ = try? ConfigParser.parse(text: text, file: "fuzz.conf")
    case .ignoreFile:
        _ = try? IgnoreFile.parse(text: text, file: "fuzz.ignore")
    case .controllerConfig:
        _ = try? ControllerConfig.parse(text, file: "controller.conf")
    case .blocklist:
        let array = Array(bytes)
        _ = try? BlockListUpdate(json: array)
        _ = try? FleetSubscription.decodeState(text)
        _ = try? PollReceipt.open(array, sensor: "fuzz", pollMillis: 1, key: controllerPublicKey)
        // The same bytes as the update inside a genuine answer: past both signatures. Signing
        // costs far more than the parsing under test and passes for any bytes, so one input
        // in sixteen takes this path (chosen by content, so a run stays reproducible).
        if signedPath(bytes), let framed = try? PollReceipt.answer(sensor: "fuzz", pollMillis: 2, revision: 1, answeredMillis: 2,
                                                                      rest: array, key: controllerKey) {
            _ = try? PollReceipt.open(framed, sensor: "fuzz", pollMillis: 2, key: controllerPublicKey)
        }
    case .batch:
        let body = Array(bytes)
        // What the controller does with a body once its signature checked out.
        _ = BatchVerifier.events(in: body, sensor: "fuzz", sequence: 6, nowMillis: 1000)
        guard signedPath(bytes) else { return }
        // The whole path, headers and signature included (see `signedPath`).
        let sequence = UInt64(bytes.first ?? 6)
        guard let env = try? SignedEnvelope.sign(body: body, sensorID: "fuzz", sequence: sequence, timestampMillis: 1000, key: sensorKey) else { return }
        let headers: [String: String] = [
            ReportProtocol.sensorHeader: "fuzz", ReportProtocol.sequenceHeader: "\(sequence)", ReportProtocol.timestampHeader: "1000",
            ReportProtocol.digestHeader: Hex.encode(env.bodyDigest), ReportProtocol.signatureHeader: Hex.encode(env.signature),
        ]
        // Made per input: a Data held in a global hides its pointer in spare bits, which
        // LeakSanitizer would report as a leak.
        let sensor = SensorRecord(name: "fuzz", publicKey: Data(sensorPublicKey), enrolledAt: 0, revoked: false, lastSequence: 5,
                                  lastSeen: 0, version: "fuzz")
        _ = BatchVerifier.check(headers: { headers[$0] }, body: body, sensor: sensor, nowMillis: 1000)
    case .operator:
        let array = Array(bytes)
        _ = ControllerAPI.decodeScopeRequest(array)
        _ = ProtectionReport.fromHeartbeat(array)
        _ = try? WireJSON.decode(Heartbeat.self, from: array)
        _ = try? WireJSON.decode(ControlRequest.self, from: array)
        _ = try? WireJSON.decode(EnrollRequest.self, from: array)
        _ = try? WireJSON.decode(PollRequest.self, from: array)
    }
}

/// One input in sixteen, by a hash of its bytes, also goes through signing and verification.
func signedPath(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var h: UInt32 = 2_166_136_261  // FNV-1a
    for b in bytes { h = (h ^ UInt32(b)) &* 16_777_619 }
    return h & 15 == 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

/// SwiftPM links an executable's entry point under this name; libFuzzer's driver takes over.
@_cdecl("portsentry_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    // Parsers log what they notice (a repeated key, a relative path): the fuzzer wants the
    // decisions, not millions of lines on stdout.
    LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
    // Globals first: one-time allocations made during an input would look like leaks to LeakSanitizer.
    _ = (target, sensorKey, controllerKey, sensorPublicKey, detector, clock)
    var count = argc
    var vector = argv
    return runDriver(&count, &vector) { data, size in fuzzInput(data, size) }
}
