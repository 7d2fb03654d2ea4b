import ArgumentParser
import Foundation
import PortsentryShared
#if canImport(Glibc)
import Glibc
#endif

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enroll this sensor with a controller (one-time token from `portsentry-controller sensors add`).",
        discussion: """
            Generates this sensor's Ed25519 key, registers its public key with the controller over \
            HTTPS (the controller's certificate, copied from its data directory, is the only CA \
            trusted), and stores the controller's address, certificate, TLS public-key pin and signing \
            key in STATE_DIR. Every later connection to the controller must present that key. \
            Restart the sensor to start reporting.
            """)

    @OptionGroup var config: ConfigOptions
    @Argument(help: "The controller's URL, e.g. https://controller.example.org:8443") var url: String
    @Argument(help: "The enrollment token.") var token: String
    @Option(name: .customLong("ca-file"), help: "The controller's certificate (tls.crt in its data directory).")
    var caFile: String
    @Option(name: .customLong("pin"),
            help: "The controller's public-key pin (sha256//BASE64, printed by its init); default: the pin it reports, checked against the certificate it presents.")
    var pin: String?

    func run() throws {
        guard url.hasPrefix("https://") else { throw ValidationError("the controller URL must be https://") }
        if let pin, !TLSPin.isValid(pin) { throw ValidationError("--pin takes sha256// and a base64 SHA-256 digest, got '\(pin)'") }
        // Everything created here (state directory, key, enrollment) is private from the start.
        umask(0o077)
        guard let caText = try? TextFile.read(caFile, limit: 1 << 20), caText.contains("BEGIN CERTIFICATE") else {
            throw Failure("\(caFile): not a PEM certificate")
        }
        let (_, cfg, _) = try config.load()
        let paths = Enrollment.paths(stateDir: cfg.stateDir)
        try FileManager.default.createDirectory(atPath: cfg.stateDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let key = try Ed25519.PrivateKey.generate()
        let request = WireJSON.encode(EnrollRequest(token: token, publicKey: Hex.encode(try key.publicKey.raw), version: sensorVersion))
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        let reply: CurlTransfer.Reply
        switch CurlTransfer.post(url: base + ReportProtocol.enrollPath, body: request, headers: [], caFile: caFile, pin: pin,
                                 timeout: 30, wantServerPin: true) {
        case .failure(let e): throw Failure("cannot reach the controller at \(base): \(e.description)")
        case .success(let r): reply = r
        }
        guard reply.status == 200, let answer = try? WireJSON.decode(EnrollReply.self, from: reply.body),
              let signingRaw = Hex.decode(answer.signingKey), (try? Ed25519.PublicKey(raw: signingRaw)) != nil else {
            throw Failure("the controller refused the enrollment (\(reply.status)): \(String(decoding: reply.body.prefix(200), as: UTF8.self))")
        }
        let (name, signing, reported) = (answer.sensor, answer.signingKey, answer.tlsPin)
        // What this connection was made with: libcurl's view of the server's certificate;
        // failing that, the CA file itself when it is that certificate (the controller's own).
        let presented = reply.serverPin ?? (try? TLSPin.pin(pem: caText)).flatMap { $0 == reported ? $0 : nil }
        let storedPin = try Self.pinToStore(given: pin, reported: reported, presented: presented)
        try AtomicFile.write(Data(Hex.encode(key.raw).utf8), to: paths.key)
        try AtomicFile.write(Data(caText.utf8), to: paths.ca)
        let state = Enrollment(url: base, sensor: name, caFile: paths.ca, pin: storedPin, controllerSigningKey: signing)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(state), to: paths.state)
        print("enrolled as \(name) with \(base); restart portsentry to start reporting")
        if let storedPin { print("controller TLS key pinned: \(storedPin)") }
    }

    /// The pin every later call enforces. `--pin` was already enforced by libcurl on this
    /// connection. Otherwise the controller's reported pin is taken only if it is the key of
    /// the certificate this connection was made with, the one verified against the CA file:
    /// when the CA file is the controller's own self-signed certificate that is the CA
    /// file's key; when it is a real CA, the leaf it vouched for. An older controller that
    /// reports no pin leaves the enrollment unpinned (the sensor warns at every start).
    static func pinToStore(given: String?, reported: String?, presented: String?) throws -> String? {
        if let given { return given }
        guard let reported else {
            Diagnostics.logger.warning("The controller did not report its TLS pin (an older controller): its key is not pinned")
            return nil
        }
        guard TLSPin.isValid(reported) else { throw Failure("the controller reported an invalid TLS pin '\(reported.prefix(80))'") }
        guard let presented else {
            throw Failure("cannot read the certificate the controller presented to check its pin; pass --pin (printed by its init)")
        }
        guard presented == reported else {
            throw Failure("the controller reported TLS pin \(reported), but the certificate it presented has \(presented): refusing to pin it")
        }
        return reported
    }
}
