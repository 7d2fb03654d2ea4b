@testable import Controller
import Foundation
import PortsentryShared
import Testing

/// `init`'s TLS identity, made in-process: OpenSSL (what libcurl on the sensors uses) reads
/// it, PEM files end in a newline (so CA bundles can be concatenated), names are checked.
@Suite struct CertificateTests {
    @Test func aCertificateOpenSSLReadsForEveryName() throws {
        let made = try SelfSignedCertificate.make(names: ["controller.example.org", "192.0.2.7", "2001:db8::7"])
        #expect(made.certificate.hasPrefix("-----BEGIN CERTIFICATE-----\n") && made.certificate.hasSuffix("-----END CERTIFICATE-----\n"))
        #expect(made.key.hasPrefix("-----BEGIN PRIVATE KEY-----\n") && made.key.hasSuffix("\n"))
        let pin = try TLSPin.pin(pem: made.certificate)
        #expect(TLSPin.isValid(pin))
        // Two in a bundle still read as two certificates' worth of text, boundary lines intact.
        let other = try SelfSignedCertificate.make(names: ["localhost"])
        #expect(!(made.certificate + other.certificate).contains("----------"))
        #expect(try TLSPin.pin(pem: other.certificate) != pin, "a new key each time")
    }

    @Test func namesThatAreNeitherAddressNorDNSAreRefused() {
        #expect(throws: SelfSignedCertificate.Failure.self) { try SelfSignedCertificate.make(names: ["bad name"]) }
        #expect(throws: SelfSignedCertificate.Failure.self) { try SelfSignedCertificate.make(names: []) }
    }
}
