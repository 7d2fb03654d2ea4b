@testable import Sensor
import Foundation
import PortsentryShared
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Run as root, the sensor refuses files others could write: config, ignore file, KILL_*
/// programs, enrollment (the same loader serves start-up, SIGHUP and `check-config`). And
/// what it writes is private from the start.
@Suite struct StrictModesTests {
    final class Scratch {
        let path: String
        init() throws {
            path = NSTemporaryDirectory() + "pst-strict-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            #expect(mkdir(path, 0o700) == 0)
        }
        func write(_ name: String, _ text: String, mode: mode_t = 0o644) throws -> String {
            let p = path + "/" + name
            try PrivateFile.replace(p, contents: Array(text.utf8))
            chmod(p, mode)
            return p
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static func loadError(_ path: String) -> String? {
        do { _ = try ConfigLoader.load(.file(path)); return nil } catch { return error.description }
    }

    @Test(.enabled(if: geteuid() == 0, "the check applies to root only; CI runs as root"))
    func configIgnoreFileAndKillProgramsMustBeRootsAlone() throws {
        let s = try Scratch()
        let conf = try s.write("portsentry.conf", "TCP_PORTS=\"1,79\"\n", mode: 0o666)
        #expect(Self.loadError(conf) == "\(conf): refused as config file: it is world-writable (mode 0666); \(StrictModes.requirement)")
        chmod(conf, 0o620)
        #expect(Self.loadError(conf)?.contains("refused as config file: it is group-writable (mode 0620)") == true)
        chmod(conf, 0o600)
        #expect(Self.loadError(conf) == nil)

        // The ignore file.
        let ignore = try s.write("portsentry.ignore", "127.0.0.1\n", mode: 0o666)
        let withIgnore = try s.write("ignore.conf", "TCP_PORTS=\"1\"\nIGNORE_FILE=\"\(ignore)\"\n")
        let config = try ConfigLoader.load(.file(withIgnore))
        #expect(throws: ConfigError.self) { try ConfigLoader.ignoreList(for: config) }
        do { _ = try ConfigLoader.ignoreList(for: config) } catch {
            #expect(error.description.hasPrefix("\(ignore): refused as ignore file: it is world-writable (mode 0666)"))
        }
        chmod(ignore, 0o644)
        #expect(try ConfigLoader.ignoreList(for: config).count == 1)

        // The program of KILL_ROUTE / KILL_RUN_CMD (its first word, when it is a path).
        let program = try s.write("block.sh", "#!/bin/sh\n", mode: 0o757)
        let kill = try s.write("kill.conf", """
            TCP_PORTS="1"
            BLOCK_TCP="2"
            KILL_RUN_CMD="\(program) $TARGET$"
            """)
        #expect(Self.loadError(kill) == "\(program): refused as KILL_RUN_CMD program in \(kill): it is world-writable (mode 0757); \(StrictModes.requirement)")
        chmod(program, 0o755)
        #expect(Self.loadError(kill) == nil)
        let route = try s.write("route.conf", """
            TCP_PORTS="1"
            BLOCK_TCP="1"
            KILL_ROUTE="\(program) add $TARGET$"
            """)
        chown(program, 65534, 65534)
        #expect(Self.loadError(route)?.contains("refused as KILL_ROUTE program in \(route): it is owned by uid 65534, not root") == true)
        // A bare command name is looked up on root's PATH: nothing to check here.
        let bare = try s.write("bare.conf", "TCP_PORTS=\"1\"\nBLOCK_TCP=\"1\"\nKILL_ROUTE=\"route add $TARGET$ reject\"\n")
        #expect(Self.loadError(bare) == nil)
    }

    @Test(.enabled(if: geteuid() == 0, "the check applies to root only; CI runs as root"))
    func enrollmentFilesMustBeRootsAlone() throws {
        let s = try Scratch()
        let paths = Enrollment.paths(stateDir: s.path)
        let state = Enrollment(url: "https://127.0.0.1:1", sensor: "web-1", caFile: paths.ca, pin: nil,
                               controllerSigningKey: String(repeating: "00", count: 32))
        try AtomicFile.write(try JSONEncoder().encode(state), to: paths.state)
        try AtomicFile.write(Data(Hex.encode(try Ed25519.PrivateKey.generate().raw).utf8), to: paths.key)
        try AtomicFile.write(Data("cert".utf8), to: paths.ca)
        // An enrollment from before pins still loads (with a warning in the log).
        #expect(try Enrollment.load(stateDir: s.path)?.0 == state)
        chmod(paths.key, 0o666)
        do { _ = try Enrollment.load(stateDir: s.path); Issue.record("a world-writable key was accepted") } catch {
            #expect(error.description.hasPrefix("refusing sensor key file \(paths.key): it is world-writable (mode 0666)"))
        }
        chmod(paths.key, 0o600)
        var pinned = state
        pinned.pin = "sha256//not-base64"
        try AtomicFile.write(try JSONEncoder().encode(pinned), to: paths.state)
        #expect(throws: Enrollment.Failure.self) { try Enrollment.load(stateDir: s.path) }
    }

    @Test func atomicWritesAreBornPrivate() throws {
        let s = try Scratch()
        // A stale (or planted) temporary file with a wide mode is not reused.
        let target = s.path + "/blocks.json"
        _ = try s.write("blocks.json.tmp", "old", mode: 0o666)
        try AtomicFile.write(Data("new".utf8), to: target)
        var st = stat()
        stat(target, &st)
        #expect(st.st_mode & 0o7777 == 0o600)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "new")
        #expect(!FileManager.default.fileExists(atPath: target + ".tmp"))
    }

    @Test func enrollmentPinIsTheOneThePresentedCertificateHas() throws {
        let a = "sha256//" + Data(repeating: 1, count: 32).base64EncodedString()
        let b = "sha256//" + Data(repeating: 2, count: 32).base64EncodedString()
        #expect(try Enroll.pinToStore(given: a, reported: b, presented: b) == a, "--pin wins (libcurl enforced it)")
        #expect(try Enroll.pinToStore(given: nil, reported: a, presented: a) == a)
        #expect(throws: Failure.self, "a reported pin that is not the presented certificate's") {
            try Enroll.pinToStore(given: nil, reported: a, presented: b)
        }
        #expect(throws: Failure.self) { try Enroll.pinToStore(given: nil, reported: a, presented: nil) }
        #expect(throws: Failure.self) { try Enroll.pinToStore(given: nil, reported: "sha256//x", presented: "sha256//x") }
        #expect(try Enroll.pinToStore(given: nil, reported: nil, presented: a) == nil, "an older controller: unpinned")
    }
}
