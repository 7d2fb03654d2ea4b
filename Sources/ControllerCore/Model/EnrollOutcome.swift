/// What presenting a one-time enrollment token did.
package enum EnrollOutcome: Sendable, Equatable {
    /// The sensor is registered with the presented key.
    case enrolled(SensorRecord)
    /// Unknown, used or expired token.
    case refused
    /// A sensor of this name exists (enrolled or revoked) and the token was not created
    /// with `sensors add --replace`: its key stays, and so does a revocation. The token is
    /// used up.
    case nameTaken(String)
}
