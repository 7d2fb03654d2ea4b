import Foundation
import Logging
import PortsentryShared

/// What `portsentry enroll` leaves in STATE_DIR, and what the daemon reads to report: the
/// controller's URL and how to recognise it (its certificate as a CA file, optionally a
/// public-key pin), the name it gave this sensor, this sensor's signing key, and the
/// controller's block-list signing key (for the block lists it will push).
struct Enrollment: Codable, Equatable, Sendable {
    var url: String
    var sensor: String
    var caFile: String
    var pin: String?
    var controllerSigningKey: String

    /// An enrollment that is present but cannot be used: the message names the file and why.
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ message: String) { description = message }
    }

    static func paths(stateDir: String) -> (state: String, key: String, ca: String) {
        (stateDir + "/enrollment.json", stateDir + "/sensor.key", stateDir + "/controller.crt")
    }

    /// nil when the sensor is not enrolled (standalone). The files are refused when anyone
    /// but root could have written them (when running as root), and an enrollment without a
    /// public-key pin (made before pins existed) still works, with a warning.
    static func load(stateDir: String, logger: Logger = Diagnostics.logger) throws(Failure) -> (Enrollment, Ed25519.PrivateKey)? {
        let p = paths(stateDir: stateDir)
        guard FileManager.default.fileExists(atPath: p.state) else { return nil }
        for (file, what) in [(p.state, "enrollment file"), (p.key, "sensor key file"), (p.ca, "controller certificate")] {
            do { try StrictModes.check(file, what: what) } catch { throw Failure(error.description) }
        }
        do {
            let state = try JSONDecoder().decode(Enrollment.self, from: Data(try TextFile.read(p.state, limit: 64 << 10).utf8))
            guard let raw = Hex.decode(try TextFile.read(p.key, limit: 4096).trimmingWhitespace()) else {
                throw Failure("\(p.key) is not a hex key")
            }
            if let pin = state.pin {
                guard TLSPin.isValid(pin) else { throw Failure("\(p.state): pin '\(pin)' is not sha256//BASE64") }
            } else {
                logger.warning("""
                    The controller's TLS key is not pinned (\(p.state) has no pin: enrolled before pinning, or with \
                    a controller that did not report one): only its certificate (\(state.caFile)) is checked. \
                    Enroll again (sensors add --replace on the controller) to pin it.
                    """)
            }
            return (state, try Ed25519.PrivateKey(raw: raw))
        } catch let e as Failure {
            throw e
        } catch {
            throw Failure("\(p.state): \(error)")
        }
    }
}
