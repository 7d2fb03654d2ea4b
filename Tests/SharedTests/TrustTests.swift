import Foundation
import PortsentryShared
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// StrictModes (files that drive root's commands), TLS public-key pins, private files.
@Suite struct TrustTests {
    /// A private temporary directory, removed at the end.
    final class Scratch {
        let path: String
        init() throws {
            path = NSTemporaryDirectory() + "pst-trust-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            guard mkdir(path, 0o700) == 0 else { throw Failure(description: "mkdir \(path): \(errno)") }
        }
        func file(_ name: String, _ text: String = "x\n", mode: mode_t = 0o600) throws -> String {
            let p = path + "/" + name
            try PrivateFile.replace(p, contents: Array(text.utf8))
            chmod(p, mode)
            return p
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    static func mode(_ path: String) -> mode_t {
        var st = stat()
        stat(path, &st)
        return st.st_mode & 0o7777
    }

    @Test(.enabled(if: geteuid() == 0, "files must be root-owned: the tests run as root in CI"))
    func strictModesRefusesFilesOthersCouldWrite() throws {
        let s = try Scratch()
        let good = try s.file("portsentry.conf")
        #expect(StrictModes.problem(good, enforce: true) == nil, "0600, owned by root")
        #expect(StrictModes.problem(try s.file("readable", mode: 0o644), enforce: true) == nil, "readable is fine")

        let world = try s.file("world", mode: 0o666)
        #expect(StrictModes.problem(world, enforce: true) == "it is world-writable (mode 0666)")
        let group = try s.file("group", mode: 0o620)
        #expect(StrictModes.problem(group, enforce: true) == "it is group-writable (mode 0620)")
        let foreign = try s.file("foreign")
        chown(foreign, 65534, 65534)
        #expect(StrictModes.problem(foreign, enforce: true) == "it is owned by uid 65534, not root")

        // The refusal names what, which file and what is wrong.
        #expect(throws: StrictModes.Refusal.self) { try StrictModes.check(world, what: "config file", enforce: true) }
        do { try StrictModes.check(group, what: "ignore file", enforce: true) } catch {
            #expect(error.description.hasPrefix("refusing ignore file \(group): it is group-writable (mode 0620); it must be owned by root"))
        }
        // Unprivileged: no check (nothing it reads runs as root).
        #expect(StrictModes.problem(world, enforce: false) == nil)
        // A missing file is its reader's error, not this check's.
        #expect(StrictModes.problem(s.path + "/missing", enforce: true) == nil)
    }

    @Test(.enabled(if: geteuid() == 0, "files must be root-owned: the tests run as root in CI"))
    func strictModesChecksTheDirectoriesAbove() throws {
        let s = try Scratch()
        let inner = s.path + "/conf.d"
        mkdir(inner, 0o700)
        let file = inner + "/portsentry.conf"
        try PrivateFile.create(file, contents: Array("x".utf8))
        #expect(StrictModes.problem(file, enforce: true) == nil)
        chmod(inner, 0o777)
        #expect(StrictModes.problem(file, enforce: true) == "its directory \(inner) is world-writable (mode 0777)")
        chmod(inner, 0o770)
        #expect(StrictModes.problem(file, enforce: true) == "its directory \(inner) is group-writable (mode 0770)")
        chmod(inner, 0o1777)
        #expect(StrictModes.problem(file, enforce: true) == nil, "sticky, like /tmp: others cannot replace the file")
        chmod(inner, 0o755)
        chown(s.path, 65534, 65534)
        #expect(StrictModes.problem(file, enforce: true) == "its directory \(s.path) is owned by uid 65534, not root")
        chown(s.path, 0, 0)
        // Reached through a symbolic link in a writable directory: the link could be swapped.
        let open = s.path + "/open"
        mkdir(open, 0o777)
        chmod(open, 0o777)
        symlink(file, open + "/link.conf")
        #expect(StrictModes.problem(open + "/link.conf", enforce: true) == "its directory \(open) is world-writable (mode 0777)")
    }

    @Test func pinMatchesOpenSSLsOwnComputation() throws {
        let s = try Scratch()
        for (kind, options) in [("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]), ("rsa", ["-newkey", "rsa:2048"])] {
            let cert = s.path + "/\(kind).crt"
            try Self.run(["/usr/bin/openssl", "req", "-x509"] + options + ["-nodes", "-keyout", s.path + "/\(kind).key", "-out", cert,
                          "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
            let expected = "sha256//" + (try Self.run(["/bin/sh", "-c", """
                openssl x509 -pubkey -noout -in '\(cert)' | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
                """])).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try TLSPin.pin(certificateFile: cert) == expected, "\(kind)")
            #expect(TLSPin.isValid(expected))
            // A bundle: the first certificate is the one pinned.
            let bundle = try String(contentsOfFile: cert, encoding: .utf8) + (try String(contentsOfFile: cert, encoding: .utf8))
            #expect(try TLSPin.pin(pem: bundle) == expected)
        }
        #expect(throws: TLSPin.Failure.self) { try TLSPin.pin(pem: "not a certificate") }
        #expect(throws: TLSPin.Failure.self) { try TLSPin.pin(certificateFile: s.path + "/missing.crt") }
        #expect(!TLSPin.isValid("sha256//short"))
        #expect(!TLSPin.isValid("md5//" + String(repeating: "A", count: 43) + "="))
    }

    @Test func privateFilesAreBornPrivate() throws {
        let s = try Scratch()
        let key = s.path + "/signing.key"
        try PrivateFile.create(key, contents: Array("secret".utf8))
        #expect(Self.mode(key) == 0o600)
        #expect(try String(contentsOfFile: key, encoding: .utf8) == "secret")
        #expect(throws: PrivateFile.Failure.self, "never reuses an existing file") {
            try PrivateFile.create(key, contents: Array("other".utf8))
        }
        // An existing world-readable file is replaced by a new private one, not rewritten in place.
        let token = try s.file("operator.token", mode: 0o666)
        try PrivateFile.replace(token, contents: Array("t".utf8))
        #expect(Self.mode(token) == 0o600)
        // A link planted where the file goes is not followed.
        symlink(s.path + "/elsewhere", s.path + "/planted")
        #expect(throws: PrivateFile.Failure.self) { try PrivateFile.create(s.path + "/planted", contents: [1]) }
        #expect(!FileManager.default.fileExists(atPath: s.path + "/elsewhere"))
    }

    @discardableResult
    static func run(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw Failure(description: "\(args.joined(separator: " ")) exited \(p.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }
}
