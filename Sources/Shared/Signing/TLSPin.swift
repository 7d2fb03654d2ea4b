internal import COpenSSL
import Foundation

/// The public-key pin of a TLS certificate in libcurl's CURLOPT_PINNEDPUBLICKEY form:
/// `sha256//` + base64 of the SHA-256 of the DER SubjectPublicKeyInfo. The controller
/// reports its own at enrollment; the sensor stores it and every later call enforces it.
public enum TLSPin {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ message: String) { description = message }
    }

    /// Bound on a certificate file read for pinning.
    public static let maxFileBytes = 1 << 20

    public static let prefix = "sha256//"

    /// The pin of the first certificate in `pem`.
    public static func pin(pem: String) throws(Failure) -> String {
        let certificates = try parse(pem)
        defer { certificates.forEach { X509_free($0) } }
        guard let first = certificates.first else { throw Failure("no PEM certificate found") }
        return try pin(first)
    }

    /// The pin of the first certificate in the PEM file at `path`.
    public static func pin(certificateFile path: String) throws(Failure) -> String {
        do { return try pin(pem: try read(path)) } catch { throw Failure("\(path): \(error.description)") }
    }

    /// True for a syntactically valid pin (`sha256//` and 32 bytes of base64).
    public static func isValid(_ pin: String) -> Bool {
        guard pin.hasPrefix(prefix), let raw = Data(base64Encoded: String(pin.dropFirst(prefix.count))) else { return false }
        return raw.count == 32
    }

    private static func pin(_ certificate: OpaquePointer) throws(Failure) -> String {
        guard let spki = X509_get_X509_PUBKEY(certificate) else { throw Failure("certificate without a public key") }
        let length = i2d_X509_PUBKEY(spki, nil)
        guard length > 0 else { throw Failure("cannot encode the certificate's public key") }
        var der = [UInt8](repeating: 0, count: Int(length))
        let written = der.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return i2d_X509_PUBKEY(spki, &cursor)
        }
        guard written == length else { throw Failure("cannot encode the certificate's public key") }
        return prefix + Data(SHA256.digest(der)).base64EncodedString()
    }

    /// Every certificate in `pem`, in order (the caller frees them).
    private static func parse(_ pem: String) throws(Failure) -> [OpaquePointer] {
        let bytes = Array(pem.utf8)
        guard bytes.count <= maxFileBytes else { throw Failure("larger than \(maxFileBytes >> 10) KiB") }
        var out: [OpaquePointer] = []
        bytes.withUnsafeBufferPointer { b in
            guard let bio = BIO_new_mem_buf(b.baseAddress, Int32(b.count)) else { return }
            defer { BIO_free(bio) }
            while let x = PEM_read_bio_X509(bio, nil, nil, nil) { out.append(x) }
        }
        ERR_clear_error()  // the end of the PEM data reads as an error
        return out
    }

    private static func read(_ path: String) throws(Failure) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure("cannot open") }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: maxFileBytes + 1) else { throw Failure("cannot read") }
        guard data.count <= maxFileBytes else { throw Failure("larger than \(maxFileBytes >> 10) KiB") }
        return String(decoding: data, as: UTF8.self)
    }
}
