import Foundation
import PortsentryShared
import Testing

/// Strict trust between sensor and controller, with real processes and real TLS on the test
/// namespace's loopback: the sensor pins the controller's key at enrollment and then talks to
/// nothing else, even a server whose certificate a trusted CA vouches for; e-mail credentials
/// never travel without TLS; files others could write are refused.
extension EndToEnd {
    @Suite struct TrustTests {
        /// An impostor controller: the same address, a certificate for the same name (IP SAN
        /// 127.0.0.1) issued by another CA, and the enrolled sensor's own public key
        /// registered, so anything the sensor sent it would be stored.
        @Test func aPinnedSensorRefusesAnImpostorController() throws {
            try withLab(63) { lab in
                let ctl = ControllerProcessTests.binary
                let real = lab.file("controller"), fake = lab.file("impostor")
                let initialised = try Lab.run([ctl, "init", "--data", real, "--name", "127.0.0.1"])
                let pinLine = try #require(initialised.split(separator: "\n").first { $0.contains("TLS public-key pin: ") })
                let pin = String(pinLine.split(separator: " ").last ?? "")
                let certificatePin = try TLSPin.pin(certificateFile: real + "/tls.crt")
                #expect(TLSPin.isValid(pin) && pin == certificatePin)

                // The other CA and its certificate for 127.0.0.1, in the impostor's data directory.
                try Lab.run([ctl, "init", "--data", fake, "--name", "127.0.0.1"])
                try Lab.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", lab.file("other-ca.key"), "-out", lab.file("other-ca.crt"), "-days", "1", "-subj", "/CN=Other CA"])
                try Lab.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", fake + "/tls.key", "-out", lab.file("impostor.csr"), "-subj", "/CN=127.0.0.1"])
                try lab.write("san.ext", "subjectAltName=IP:127.0.0.1\n")
                try Lab.run(["openssl", "x509", "-req", "-in", lab.file("impostor.csr"), "-CA", lab.file("other-ca.crt"),
                             "-CAkey", lab.file("other-ca.key"), "-CAcreateserial", "-out", fake + "/tls.crt", "-days", "1",
                             "-extfile", lab.file("san.ext")])

                var servers: [String: Child] = [:]
                func serve(_ data: String, _ log: String) throws { servers[data] = try lab.serveController(data, log: log) }
                func halt(_ data: String) throws {
                    if let c = servers.removeValue(forKey: data) { #expect(try lab.stop(c) == 0) }
                }
                func stored(_ data: String) -> Int { lab.storedEvents(data).count }
                func enroll(_ token: String, caFile: String, config: String, extra: [String] = []) throws -> String {
                    try lab.exec(lab.sensorNS, ["/bin/sh", "-c", "\"$0\" \"$@\" 2>&1", Lab.sensorBinary, "enroll", "https://127.0.0.1:8443",
                                                token, "--ca-file", caFile, "-c", config] + extra, allowFailure: true)
                }

                // Enrolled with the real controller: the pin it reported is stored.
                try serve(real, "real1.out")
                let config = lab.uplinkConfig
                try lab.write("portsentry.conf", config)
                let token = try Lab.run([ctl, "sensors", "add", "web-1", "--data", real]).trimmingCharacters(in: .whitespacesAndNewlines)
                let enrolled = try enroll(token, caFile: real + "/tls.crt", config: lab.file("portsentry.conf"))
                #expect(enrolled.contains("enrolled as web-1") && enrolled.contains("controller TLS key pinned: \(pin)"), "\(enrolled)")
                let state = try #require(try JSONSerialization.jsonObject(with: Data(lab.read("state/enrollment.json").utf8)) as? [String: Any])
                #expect(state["pin"] as? String == pin)
                try halt(real)

                // The impostor takes the controller's place and knows the sensor's key.
                let sensorKey = try Ed25519.PrivateKey(raw: try #require(Hex.decode(lab.read("state/sensor.key")
                    .trimmingCharacters(in: .whitespacesAndNewlines))))
                let fakeToken = try Lab.run([ctl, "sensors", "add", "web-1", "--data", fake]).trimmingCharacters(in: .whitespacesAndNewlines)
                try serve(fake, "impostor.out")
                let registered = try lab.exec(lab.sensorNS, ["curl", "-sS", "--cacert", lab.file("other-ca.crt"), "-X", "POST", "-d",
                    #"{"token":"\#(fakeToken)","public_key":"\#(Hex.encode(try sensorKey.publicKey.raw))"}"#,
                    "https://127.0.0.1:8443" + ReportProtocol.enrollPath])
                #expect(registered.contains("\"sensor\":\"web-1\""), "\(registered)")

                // Enrolling against it with the real controller's certificate fails.
                try lab.write("other.conf", "TCP_PORTS=\"1\"\nSTATE_DIR=\"\(lab.file("other-state"))\"\n")
                let second = try Lab.run([ctl, "sensors", "add", "web-2", "--data", fake]).trimmingCharacters(in: .whitespacesAndNewlines)
                let refused = try enroll(second, caFile: real + "/tls.crt", config: lab.file("other.conf"))
                #expect(!refused.contains("enrolled as") && refused.contains("cannot reach the controller"), "\(refused)")
                // So does a CA file that does vouch for it, with the real controller's pin.
                let pinned = try enroll(second, caFile: lab.file("other-ca.crt"), config: lab.file("other.conf"), extra: ["--pin", pin])
                #expect(!pinned.contains("enrolled as") && pinned.contains("cannot reach the controller"), "\(pinned)")

                // The running sensor, first with the certificate it enrolled with...
                var sensor = try lab.startSensor(config: config)
                #expect(!lab.read("sensor.out").contains("not pinned"))
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1,7,9,11,79,111", lab.sensorV4])
                try lab.waitFor("the sensor to refuse the impostor", within: 20) { lab.read("sensor.out").contains("Controller unreachable") }
                #expect(try lab.stop(sensor) == 0)
                // ...then trusting the impostor's CA as well (as if a public CA vouched for it):
                // the pin alone refuses it.
                let bundle = lab.read("state/controller.crt") + lab.read("other-ca.crt")
                try PrivateFile.replace(lab.file("state/controller.crt"), contents: Array(bundle.utf8))
                sensor = try lab.startSensor(config: config, log: "sensor2.out")
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1,7,9,11,79,111", lab.sensorV4])
                try lab.waitFor("the pin to refuse the impostor", within: 20) {
                    lab.read("sensor2.out").contains("Controller unreachable") && lab.read("sensor2.out").lowercased().contains("pinned")
                }
                #expect(stored(fake) == 0, "the impostor received nothing")
                #expect(!lab.read("impostor.out").contains("Batch refused"), "no request from the sensor got through TLS")
                try halt(fake)

                // The real controller back in its place: everything spooled arrives there.
                try serve(real, "real2.out")
                try lab.waitFor("the spooled events at the real controller", within: 60) { stored(real) >= 12 }
                #expect(try lab.stop(sensor) == 0)
                try halt(real)
            }
        }

        /// With ALERT_SMTP_USER, mail goes only over TLS: a plain smtp:// server without
        /// STARTTLS gets no credentials and no mail, and the sensor says why.
        @Test func smtpCredentialsNeverGoInClearText() throws {
            try withLab(64) { lab in
                _ = try lab.spawn(lab.sensorNS, ["python3", "-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer", "127.0.0.1:2525"],
                                  log: "smtp.out")
                try lab.waitFor("the SMTP server", within: 10) { lab.canConnect(from: lab.sensorNS, to: "127.0.0.1", port: 2525) }
                try lab.write("password", "s3cret")
                let sensor = try lab.startSensor(config: """
                    TCP_PORTS="1,79"
                    ALERT_EMAIL="admin@example.org"
                    ALERT_SMTP_URL="smtp://127.0.0.1:2525"
                    ALERT_SMTP_USER="sensor"
                    ALERT_SMTP_PASSWORD_FILE="\(lab.file("password"))"
                    ALERT_SMTP_STARTTLS="0"
                    ALERT_GATHER="1s"
                    """)
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "79", lab.sensorV4])
                try lab.waitFor("the delivery failure", within: 20) { lab.read("sensor.out").contains("Alert by email failed: ") }
                #expect(lab.read("sensor.out").contains("does not offer STARTTLS, and TLS is required to send the ALERT_SMTP_USER credentials"))
                #expect(!lab.read("smtp.out").contains("MESSAGE FOLLOWS"))
                #expect(!lab.read("smtp.out").contains("s3cret"))
                #expect(try lab.stop(sensor) == 0)
            }
        }

        /// `check-config`, the sensor and the controller refuse, as root, files others can write.
        @Test func filesOthersCanWriteAreRefused() throws {
            try withLab(65) { lab in
                try lab.write("portsentry.conf", "TCP_PORTS=\"1,79\"\n")
                chmod(lab.file("portsentry.conf"), 0o666)
                let check = try Lab.run(["/bin/sh", "-c", "\"$0\" check-config -c \"$1\" 2>&1", Lab.sensorBinary, lab.file("portsentry.conf")],
                                        allowFailure: true)
                #expect(check.contains("\(lab.file("portsentry.conf")): refused as config file: it is world-writable (mode 0666)"), "\(check)")
                let run = try lab.exec(lab.sensorNS, ["/bin/sh", "-c", "timeout 20 \"$0\" -c \"$1\" 2>&1", Lab.sensorBinary, lab.file("portsentry.conf")],
                                       allowFailure: true)
                #expect(run.contains("refused as config file: it is world-writable"), "\(run)")
                chmod(lab.file("portsentry.conf"), 0o644)
                #expect(try Lab.run([Lab.sensorBinary, "check-config", "-c", lab.file("portsentry.conf")]).contains(": OK"))
                // The enrollment files too.
                try FileManager.default.createDirectory(atPath: lab.file("state"), withIntermediateDirectories: true)
                try lab.write("state/enrollment.json", "{}")
                chmod(lab.file("state/enrollment.json"), 0o666)
                try lab.write("enrolled.conf", "TCP_PORTS=\"1,79\"\nSTATE_DIR=\"\(lab.file("state"))\"\n")
                let enrolled = try Lab.run(["/bin/sh", "-c", "\"$0\" check-config -c \"$1\" 2>&1", Lab.sensorBinary, lab.file("enrolled.conf")],
                                           allowFailure: true)
                #expect(enrolled.contains("refusing enrollment file \(lab.file("state/enrollment.json")): it is world-writable (mode 0666)"),
                        "\(enrolled)")

                let ctl = ControllerProcessTests.binary
                let data = lab.file("controller")
                try Lab.run([ctl, "init", "--data", data])
                for name in ["tls.key", "signing.key", "operator.token", "controller.conf"] {
                    var st = stat()
                    stat(data + "/" + name, &st)
                    #expect(st.st_mode & 0o777 == 0o600, "\(name) is private")
                }
                chmod(data + "/operator.token", 0o620)
                let out = try lab.exec(lab.sensorNS, ["/bin/sh", "-c", "timeout 20 \"$0\" serve --data \"$1\" --listen 127.0.0.1 --port 8443 2>&1", ctl, data],
                                       allowFailure: true)
                #expect(out.contains("refusing operator API token \(data)/operator.token: it is group-writable (mode 0620)"), "\(out)")
                chmod(data + "/operator.token", 0o600)
                chmod(data + "/controller.conf", 0o646)
                let list = try Lab.run(["/bin/sh", "-c", "\"$0\" sensors list --data \"$1\" 2>&1", ctl, data], allowFailure: true)
                #expect(list.contains("refusing controller settings \(data)/controller.conf: it is world-writable (mode 0646)"), "\(list)")
            }
        }
    }
}
