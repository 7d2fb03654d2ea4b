import Crypto
import Foundation
import PortsentryShared
import SwiftASN1
import X509

/// The controller's own TLS identity, made by `init`: a P-256 key and a self-signed
/// certificate for the names sensors use, valid ten years. Sensors trust it by its file (the
/// CA file they enroll with) and pin its key, so no public CA is involved. Made in-process
/// with swift-certificates: `init` needs no `openssl` binary.
enum SelfSignedCertificate {
    /// Ten years: the pin, not the expiry, is what sensors check day to day.
    static let validity: TimeInterval = 3650 * 86_400

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// PEM texts of the certificate and of its private key (PKCS#8).
    static func make(names: [String], now: Date = Date()) throws(Failure) -> (certificate: String, key: String) {
        guard let first = names.first else { throw Failure(description: "at least one --name is needed") }
        do {
            let key = P256.Signing.PrivateKey()
            let signer = Certificate.PrivateKey(key)
            let subject = try DistinguishedName { CommonName(first) }
            let alternatives = try names.map(generalName)
            let extensions = try Certificate.Extensions {
                // Its own anchor: a CA certificate, so any TLS stack accepts it as the CA file.
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectKeyIdentifier(hash: signer.publicKey)
                SubjectAlternativeNames(alternatives)
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: signer.publicKey,
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
                issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
                issuerPrivateKey: signer)
            // Each ends in a newline, as PEM files do: a CA bundle is made by concatenating
            // files, and a missing newline would join two certificates' boundary lines.
            func line(_ pem: String) -> String { pem.hasSuffix("\n") ? pem : pem + "\n" }
            return (line(try certificate.serializeAsPEM().pemString), line(key.pemRepresentation))
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "cannot make the TLS certificate: \(error)")
        }
    }

    /// An IP address as an iPAddress name (its 4 or 16 bytes), anything else as a DNS name.
    private static func generalName(_ name: String) throws(Failure) -> GeneralName {
        if let ip = IPAddress(name) {
            return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip.isIPv4 ? Array(ip.bytes.suffix(4)) : ip.bytes)))
        }
        guard !name.isEmpty, name.utf8.count <= 253,
              name.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "*")
                  || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0 | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            throw Failure(description: "--name '\(name)' is neither an IP address nor a DNS name")
        }
        return .dnsName(name)
    }
}
