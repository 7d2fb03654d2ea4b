internal import COpenSSL

/// Ed25519 keys and signatures through OpenSSL's EVP interface: one implementation for the
/// sensor (signing batches, verifying block lists) and the controller (the reverse).
/// Keys are the raw 32-byte forms of RFC 8032; signatures are 64 bytes.
public enum Ed25519 {
    public static let keyBytes = 32
    public static let signatureBytes = 64

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ message: String) { description = message }
    }

    /// A private key (it also yields its public key).
    public struct PrivateKey: Sendable, Equatable {
        /// The 32-byte seed.
        public let raw: [UInt8]

        public init(raw: [UInt8]) throws(Failure) {
            guard raw.count == keyBytes else { throw Failure("an Ed25519 private key is \(keyBytes) bytes, got \(raw.count)") }
            self.raw = raw
        }

        /// A fresh key from the system's random source.
        public static func generate() throws(Failure) -> PrivateKey {
            guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nil) else { throw Failure("OpenSSL: no Ed25519 support") }
            defer { EVP_PKEY_CTX_free(ctx) }
            var key: OpaquePointer? = nil
            guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_keygen(ctx, &key) == 1, let key else {
                throw Failure("OpenSSL: key generation failed")
            }
            defer { EVP_PKEY_free(key) }
            return try PrivateKey(raw: exportRaw(key, "cannot export the private key", EVP_PKEY_get_raw_private_key))
        }

        public var publicKey: PublicKey {
            get throws(Failure) {
                let key = try pkey()
                defer { EVP_PKEY_free(key) }
                return try PublicKey(raw: exportRaw(key, "cannot derive the public key", EVP_PKEY_get_raw_public_key))
            }
        }

        public func sign(_ message: [UInt8]) throws(Failure) -> [UInt8] {
            let key = try pkey()
            defer { EVP_PKEY_free(key) }
            guard let md = EVP_MD_CTX_new() else { throw Failure("OpenSSL: out of memory") }
            defer { EVP_MD_CTX_free(md) }
            // Ed25519 signs the message itself: no separate digest (NULL md), one-shot call.
            guard EVP_DigestSignInit(md, nil, nil, nil, key) == 1 else { throw Failure("OpenSSL: sign init failed") }
            var signature = [UInt8](repeating: 0, count: signatureBytes)
            var length = signatureBytes
            let ok = message.withUnsafeBufferPointer { m in
                EVP_DigestSign(md, &signature, &length, m.baseAddress, m.count) == 1
            }
            guard ok, length == signatureBytes else { throw Failure("OpenSSL: signing failed") }
            return signature
        }

        private func pkey() throws(Failure) -> OpaquePointer {
            guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, raw, raw.count) else {
                throw Failure("OpenSSL: not a valid Ed25519 private key")
            }
            return key
        }
    }

    public struct PublicKey: Sendable, Hashable {
        public let raw: [UInt8]

        public init(raw: [UInt8]) throws(Failure) {
            guard raw.count == keyBytes else { throw Failure("an Ed25519 public key is \(keyBytes) bytes, got \(raw.count)") }
            self.raw = raw
        }

        /// True only for a valid signature of exactly `message` by this key.
        public func verify(_ signature: [UInt8], of message: [UInt8]) -> Bool {
            guard signature.count == signatureBytes,
                  let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, raw, raw.count) else { return false }
            defer { EVP_PKEY_free(key) }
            guard let md = EVP_MD_CTX_new() else { return false }
            defer { EVP_MD_CTX_free(md) }
            guard EVP_DigestVerifyInit(md, nil, nil, nil, key) == 1 else { return false }
            return message.withUnsafeBufferPointer { m in
                EVP_DigestVerify(md, signature, signature.count, m.baseAddress, m.count) == 1
            }
        }
    }
}

/// SHA-256, for body digests in signed envelopes.
public enum SHA256 {
    public static func digest(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = data.withUnsafeBufferPointer { d in
            EVP_Digest(d.baseAddress, d.count, &out, &length, EVP_sha256(), nil)
        }
        return out
    }
}

/// A key's 32 raw bytes through one of OpenSSL's raw exports (private or public).
private func exportRaw(_ key: OpaquePointer, _ failure: String,
                       _ export: (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<Int>?) -> Int32) throws(Ed25519.Failure) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: Ed25519.keyBytes)
    var length = Ed25519.keyBytes
    guard export(key, &out, &length) == 1, length == Ed25519.keyBytes else { throw Ed25519.Failure("OpenSSL: \(failure)") }
    return out
}
