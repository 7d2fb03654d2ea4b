import ArgumentParser
import Foundation
import PortsentryShared

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enroll this sensor with a controller (one-time token from `portsentry-controller sensors add`).",
        discussion: """
            Generates this sensor's Ed25519 key, registers its public key with the controller over \
            HTTPS (the controller's certificate, copied from its data directory, is the only CA \
            trusted), and stores the controller's address, certificate and signing key in STATE_DIR. \
            Restart the sensor to start reporting.
            """)

    @OptionGroup var config: ConfigOptions
    @Argument(help: "The controller's URL, e.g. https://controller.example.org:8443") var url: String
    @Argument(help: "The enrollment token.") var token: String
    @Option(name: .customLong("ca-file"), help: "The controller's certificate (tls.crt in its data directory).")
    var caFile: String
    @Option(name: .customLong("pin"), help: "Also pin the controller's public key: sha256//BASE64.")
    var pin: String?

    func run() throws {
        guard url.hasPrefix("https://") else { throw ValidationError("the controller URL must be https://") }
        guard let caText = try? TextFile.read(caFile, limit: 1 << 20), caText.contains("BEGIN CERTIFICATE") else {
            throw Failure("\(caFile): not a PEM certificate")
        }
        let (_, cfg, _) = try config.load()
        let paths = Enrollment.paths(stateDir: cfg.stateDir)
        try FileManager.default.createDirectory(atPath: cfg.stateDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let key = try Ed25519.PrivateKey.generate()
        let request = CanonicalJSON.object(["token": .string(token), "public_key": .string(Hex.encode(try key.publicKey.raw)),
                                            "version": .string(sensorVersion)]).bytes
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        let reply: CurlTransfer.Reply
        switch CurlTransfer.post(url: base + ReportProtocol.enrollPath, body: request, headers: [], caFile: caFile, pin: pin,
                                 timeout: 30) {
        case .failure(let e): throw Failure("cannot reach the controller at \(base): \(e.description)")
        case .success(let r): reply = r
        }
        guard reply.status == 200, let object = try? JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any],
              let name = object["sensor"] as? String, let signing = object["signing_key"] as? String,
              let signingRaw = Hex.decode(signing), (try? Ed25519.PublicKey(raw: signingRaw)) != nil else {
            throw Failure("the controller refused the enrollment (\(reply.status)): \(String(decoding: reply.body.prefix(200), as: UTF8.self))")
        }
        try AtomicFile.write(Data(Hex.encode(key.raw).utf8), to: paths.key)
        try AtomicFile.write(Data(caText.utf8), to: paths.ca)
        let state = Enrollment(url: base, sensor: name, caFile: paths.ca, pin: pin, controllerSigningKey: signing)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(state), to: paths.state)
        print("enrolled as \(name) with \(base); restart portsentry to start reporting")
    }
}
