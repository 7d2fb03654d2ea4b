import Foundation
import Testing

/// Alerts delivered to a real SMTP server and a real HTTP receiver, both on the sensor
/// namespace's loopback: one message per interval, however many events.
extension EndToEnd {
    @Suite struct AlertTests {
        static let receiver = """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers['Content-Length']))
                    with open(sys.argv[1], 'ab') as f: f.write(body + b'\\n')
                    self.send_response(204); self.end_headers()
                def log_message(self, *a): pass
            http.server.HTTPServer(('127.0.0.1', 8099), H).serve_forever()
            """

        static let smtpsServer = """
            import ssl, sys, time
            from aiosmtpd.controller import Controller
            from aiosmtpd.smtp import AuthResult, LoginPassword
            out, cert, key = sys.argv[1:4]
            class Handler:
                async def handle_DATA(self, server, session, envelope):
                    with open(out, 'ab') as f:
                        f.write(('FROM %s TO %s AUTHENTICATED %s\\n' % (envelope.mail_from, ','.join(envelope.rcpt_tos),
                                 session.authenticated)).encode() + envelope.content + b'\\n----\\n')
                    return '250 OK'
            def authenticator(server, session, envelope, mechanism, data):
                return AuthResult(success=isinstance(data, LoginPassword) and data.login == b'sensor' and data.password == b's3cret')
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            # Implicit TLS (smtps): aiosmtpd's auth_require_tls only knows STARTTLS, so it is off;
            # the whole session is TLS anyway. No mail without a successful AUTH.
            Controller(Handler(), hostname='127.0.0.1', port=4650, ssl_context=context, authenticator=authenticator,
                       auth_require_tls=False, auth_required=True).start()
            print('ready', flush=True)
            while True: time.sleep(60)
            """

        /// SMTPS (implicit TLS, verified against a pinned CA file) with AUTH; a wrong password
        /// is a clear error, not silence.
        @Test func smtpsWithAuthentication() throws {
            try withLab(60) { lab in
                try Lab.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", lab.file("key.pem"), "-out", lab.file("cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1",
                             "-addext", "subjectAltName=IP:127.0.0.1"])
                let server = try lab.spawn(lab.sensorNS, ["python3", "-c", Self.smtpsServer, lab.file("mail.txt"), lab.file("cert.pem"),
                                                          lab.file("key.pem")], log: "smtps.out")
                try lab.waitFor("the SMTPS server", within: 15) {
                    if !server.isRunning { throw Lab.Failure(description: "SMTPS server exited: \(lab.read("smtps.out"))") }
                    return lab.read("smtps.out").contains("ready")
                }
                for (round, password) in [(1, "s3cret"), (2, "wrong")] {
                    try password.write(toFile: lab.file("password"), atomically: true, encoding: .utf8)
                    let sensor = try lab.startSensor(config: """
                        TCP_PORTS="1,79"
                        ALERT_EMAIL="admin@example.org"
                        ALERT_SMTP_URL="smtps://127.0.0.1:4650"
                        ALERT_SMTP_USER="sensor"
                        ALERT_SMTP_PASSWORD_FILE="\(lab.file("password"))"
                        ALERT_CA_FILE="\(lab.file("cert.pem"))"
                        ALERT_GATHER="1s"
                        """, log: "sensor\(round).out")
                    try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "79", lab.sensorV4])
                    if round == 1 {
                        try lab.waitFor("the mail", within: 20) { lab.read("mail.txt").contains("----") }
                        let mail = lab.read("mail.txt")
                        #expect(mail.contains("FROM portsentry@localhost TO admin@example.org AUTHENTICATED True"))
                        #expect(mail.contains("\(lab.attackerV4): 1 events, ports 79; TCP SYN/Normal scan"))
                    } else {
                        // (This aiosmtpd drops the connection on a bad login instead of answering 535.)
                        try lab.waitFor("the delivery failure", within: 20) { lab.read("sensor2.out").contains("Alert by email failed: ") }
                        #expect(lab.read("mail.txt").components(separatedBy: "----").count == 2, "still only the first mail")
                    }
                    #expect(try lab.stop(sensor) == 0)
                }
            }
        }

        @Test func aScanMakesOneEmailAndOneWebhookPerInterval() throws {
            try withLab(57) { lab in
                _ = try lab.spawn(lab.sensorNS, ["python3", "-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer", "127.0.0.1:2525"],
                                  log: "smtp.out")
                _ = try lab.spawn(lab.sensorNS, ["python3", "-c", Self.receiver, lab.file("hooks.jsonl")], log: "http.out")
                try lab.waitFor("the SMTP server", within: 10) { lab.canConnect(from: lab.sensorNS, to: "127.0.0.1", port: 2525) }
                try lab.waitFor("the HTTP receiver", within: 10) { lab.canConnect(from: lab.sensorNS, to: "127.0.0.1", port: 8099) }
                let sensor = try lab.startSensor(config: """
                    TCP_PORTS="1,7,9,11,79,111"
                    ALERT_EMAIL="admin@example.org,security@example.org"
                    ALERT_EMAIL_FROM="portsentry@sensor.example.org"
                    ALERT_SMTP_URL="smtp://127.0.0.1:2525"
                    ALERT_WEBHOOK_URL="http://127.0.0.1:8099/hook"
                    ALERT_GATHER="1s"
                    ALERT_INTERVAL="1h"
                    """)
                // A scan of 1,000 ports: 6 tripwires and a closed-port scan, one scanner.
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1-1000", lab.sensorV4])
                try lab.waitFor("one e-mail and one webhook", within: 20) {
                    lab.read("smtp.out").contains("MESSAGE FOLLOWS") && !lab.read("hooks.jsonl").isEmpty
                }
                // More scanning inside the interval waits for the next digest (sent at shutdown).
                try lab.exec(lab.attackerNS, ["nmap", "-6", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1-100", lab.sensorV6])
                try lab.waitFor("the IPv6 events", within: 10) { lab.read("sensor.out").contains("Scan from: [\(lab.attackerV6)]") }
                #expect(lab.read("smtp.out").components(separatedBy: "MESSAGE FOLLOWS").count == 2)
                #expect(try lab.stop(sensor) == 0)

                let mail = lab.read("smtp.out")
                #expect(mail.components(separatedBy: "MESSAGE FOLLOWS").count == 3, "two digests in all")
                #expect(mail.contains("RCPT TO:<admin@example.org>") || mail.contains("X-RCPT-TOS: ['admin@example.org', 'security@example.org']")
                        || mail.contains("admin@example.org, security@example.org"))
                #expect(mail.contains("Subject: portsentry on "))
                #expect(mail.contains("\(lab.attackerV4): "))
                let hooks = lab.read("hooks.jsonl").split(separator: "\n")
                #expect(hooks.count == 2)
                let first = try #require(try JSONSerialization.jsonObject(with: Data(hooks[0].utf8)) as? [String: Any])
                let scanners = try #require(first["scanners"] as? [[String: Any]])
                #expect(scanners.count == 1)
                #expect(scanners.first?["source"] as? String == lab.attackerV4)
                #expect((scanners.first?["events"] as? Int ?? 0) >= 7)
                #expect(hooks[1].contains(lab.attackerV6))
            }
        }
    }
}
