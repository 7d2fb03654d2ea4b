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
