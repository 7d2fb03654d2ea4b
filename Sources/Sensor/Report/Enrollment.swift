import Foundation
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

    static func paths(stateDir: String) -> (state: String, key: String, ca: String) {
        (stateDir + "/enrollment.json", stateDir + "/sensor.key", stateDir + "/controller.crt")
    }

    /// nil when the sensor is not enrolled (standalone).
    static func load(stateDir: String) throws(FirewallError) -> (Enrollment, Ed25519.PrivateKey)? {
        let p = paths(stateDir: stateDir)
        guard FileManager.default.fileExists(atPath: p.state) else { return nil }
        do {
            let state = try JSONDecoder().decode(Enrollment.self, from: Data(try TextFile.read(p.state, limit: 64 << 10).utf8))
            guard let raw = Hex.decode(try TextFile.read(p.key, limit: 4096).trimmingWhitespace()) else {
                throw FirewallError("\(p.key) is not a hex key")
            }
            return (state, try Ed25519.PrivateKey(raw: raw))
        } catch let e as FirewallError {
            throw e
        } catch {
            throw FirewallError("\(p.state): \(error)")
        }
    }
}
