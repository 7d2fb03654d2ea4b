/// `POST /v1/enroll`: a one-time token and the sensor's new public key (unsigned: the token
/// is the credential).
public struct EnrollRequest: Codable, Equatable, Sendable {
    public var token: String
    /// Hex of the sensor's raw Ed25519 public key.
    public var publicKey: String
    public var version: String?

    enum CodingKeys: String, CodingKey {
        case token, version
        case publicKey = "public_key"
    }

    public init(token: String, publicKey: String, version: String?) {
        (self.token, self.publicKey, self.version) = (token, publicKey, version)
    }
}

/// The controller's answer to an enrollment: the sensor's name, the key that signs block
/// lists and, when the controller knows it, the pin of its TLS key.
public struct EnrollReply: Codable, Equatable, Sendable {
    public var sensor: String
    /// Hex of the controller's raw Ed25519 public key.
    public var signingKey: String
    public var tlsPin: String?

    enum CodingKeys: String, CodingKey {
        case sensor
        case signingKey = "signing_key", tlsPin = "tls_pin"
    }

    public init(sensor: String, signingKey: String, tlsPin: String?) {
        (self.sensor, self.signingKey, self.tlsPin) = (sensor, signingKey, tlsPin)
    }
}
