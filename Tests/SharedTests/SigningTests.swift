import PortsentryShared
import Testing

@Suite struct SigningTests {
    /// RFC 8032, section 7.1, test 1 (empty message) and test 2 (one byte).
    @Test func rfc8032KnownAnswers() throws {
        let vectors: [(secret: String, public: String, message: String, signature: String)] = [
            ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
             "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
             "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
            ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
             "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
             "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ]
        for v in vectors {
            let key = try Ed25519.PrivateKey(raw: try #require(Hex.decode(v.secret)))
            #expect(Hex.encode(try key.publicKey.raw) == v.public)
            let message = try #require(Hex.decode(v.message))
            #expect(Hex.encode(try key.sign(message)) == v.signature)
            #expect(try key.publicKey.verify(try #require(Hex.decode(v.signature)), of: message))
        }
    }

    @Test func sha256KnownAnswer() {
        #expect(Hex.encode(SHA256.digest(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func envelopeVerifiesAndRejectsEveryTamper() throws {
        let key = try Ed25519.PrivateKey.generate()
        let other = try Ed25519.PrivateKey.generate()
        let body = Array(#"{"events":[]}"#.utf8)
        let env = try SignedEnvelope.sign(body: body, sensorID: "web-1", sequence: 42, timestampMillis: 1_764_000_000_000, key: key)
        try env.verify(body: body, key: try key.publicKey)

        #expect(throws: SignedEnvelope.Rejection.digestMismatch) { try env.verify(body: body + [0x20], key: try key.publicKey) }
        #expect(throws: SignedEnvelope.Rejection.badSignature) { try env.verify(body: body, key: try other.publicKey) }
        var replayed = env
        replayed.sequence = 43
        #expect(throws: SignedEnvelope.Rejection.badSignature) { try replayed.verify(body: body, key: try key.publicKey) }
        var renamed = env
        renamed.sensorID = "web-2"
        #expect(throws: SignedEnvelope.Rejection.badSignature) { try renamed.verify(body: body, key: try key.publicKey) }
        var flipped = env
        flipped.signature[0] ^= 1
        #expect(throws: SignedEnvelope.Rejection.badSignature) { try flipped.verify(body: body, key: try key.publicKey) }
        #expect(throws: Ed25519.Failure.self) { try Ed25519.PrivateKey(raw: [1, 2, 3]) }
    }

    @Test func wireBytesAreSortedAndCompact() {
        struct Sample: Encodable { var b: [Int64]; var a: String; var B: [String: Int] }
        let text = String(decoding: WireJSON.encode(Sample(b: [-1], a: "q\"\\\n/é", B: [:])), as: UTF8.self)
        #expect(text == #"{"B":{},"a":"q\"\\\n/é","b":[-1]}"#)
    }

    @Test func eventsTravelAsTheyWereDetected() throws {
        var e = ScanEvent(time: 5, source: IPAddress("198.51.100.7")!, destination: IPAddress("2001:db8::1")!, proto: .tcp,
                          port: 79, kind: .closedPortScan(ports: 21), ipOptions: .unknown)
        e.ignored = .no
        e.triggered = .yes
        let body = ReportProtocol.body(events: [e])
        #expect(String(decoding: body, as: UTF8.self) == #"{"events":[{"destination":"2001:db8::1","evidence":"negative-reply","ignored":false,"port":79,"ports":21,"protocol":"TCP","source":"198.51.100.7","time_ns":5,"triggered":true,"type":"closed-port-scan"}]}"#)
        let back = try WireJSON.decode(EventBatch.self, from: body)
        #expect(back.events == [WireEvent(e)])
        #expect(back.events[0].evidence == .negativeReply && back.events[0].blocked == nil)
    }
}
