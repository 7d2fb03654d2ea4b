import Foundation
import Testing

/// A thousand idle TCP connections and three hundred slowloris TLS clients against the real
/// controller: it keeps answering /health and /metrics meanwhile, and cuts every one of them
/// within its idle deadline. Loopback of a test namespace only; the clients stop by themselves.
extension EndToEnd {
    @Suite struct ControllerLoadTests {
        static let idleConnections = 1000
        static let slowClients = 300
        /// How long the clients hold on: past the controller's 15 s idle deadline.
        static let holdSeconds = 25

        static let clients = """
            import socket, ssl, sys, time
            host, port, idle, slow, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
            quiet = [socket.create_connection((host, port)) for _ in range(idle)]
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            slow_socks = []
            for _ in range(slow):
                s = ctx.wrap_socket(socket.create_connection((host, port)), server_hostname=host)
                s.sendall(b"GET /health HTTP/1.1\\r\\n")
                slow_socks.append(s)
            print("opened", flush=True)
            start, cut = time.time(), 0
            while time.time() - start < hold and slow_socks:
                for s in list(slow_socks):
                    try:
                        s.sendall(b"X-Slow: 1\\r\\n")
                    except Exception:
                        slow_socks.remove(s); cut += 1
                time.sleep(1)
            idle_cut = 0
            for s in quiet:
                s.settimeout(0.05)
                try:
                    if s.recv(1) == b"": idle_cut += 1
                except socket.timeout:
                    pass
                except Exception:
                    idle_cut += 1
            print("slow_cut %d idle_cut %d" % (cut, idle_cut), flush=True)
            """

        @Test func idleAndSlowConnectionsCannotTakeTheControllerOffline() throws {
            try withLab(67) { lab in
                let ctl = ControllerProcessTests.binary
                let data = lab.file("controller")
                try Lab.run([ctl, "init", "--data", data, "--name", "127.0.0.1"])
                let controller = try lab.spawn(lab.sensorNS, [ctl, "serve", "--data", data, "--listen", "127.0.0.1", "--port", "8443"],
                                               log: "ctl.out")
                try lab.waitFor("the controller", within: 30) { lab.read("ctl.out").contains("listening on") }
                func answers(_ path: String) -> Bool {
                    ((try? lab.exec(lab.sensorNS, ["curl", "-s", "--max-time", "5", "--cacert", data + "/tls.crt", "https://127.0.0.1:8443" + path],
                                    allowFailure: true)) ?? "").contains(path == "/health" ? "ok" : "portsentry_controller")
                }
                try lab.write("clients.py", Self.clients)
                let clients = try lab.spawn(lab.sensorNS, ["timeout", "120", "python3", lab.file("clients.py"), "127.0.0.1", "8443",
                                                           "\(Self.idleConnections)", "\(Self.slowClients)", "\(Self.holdSeconds)"], log: "clients.out")
                try lab.waitFor("every client connected", within: 60) { lab.read("clients.out").contains("opened") }
                #expect(answers("/health"), "health answers with \(Self.idleConnections + Self.slowClients) hostile connections open")
                #expect(answers("/metrics"))
                try lab.waitFor("the clients' verdict", within: 60) { !clients.isRunning }
                let verdict = lab.read("clients.out")
                #expect(verdict.contains("slow_cut \(Self.slowClients) idle_cut \(Self.idleConnections)"), "\(verdict)")
                #expect(controller.isRunning && answers("/health"))
                #expect(try lab.stop(controller) == 0)
            }
        }

        /// A database that does not answer stops start-up within POSTGRES_CONNECT_TIMEOUT, with
        /// the client's own error, instead of retrying forever at info level.
        @Test func anUnreachableDatabaseIsAClearErrorWithinTheDeadline() throws {
            try withLab(68) { lab in
                let ctl = ControllerProcessTests.binary
                let data = lab.file("controller")
                try Lab.run([ctl, "init", "--data", data, "--name", "127.0.0.1"])
                try "POSTGRES_HOST = 127.0.0.1\nPOSTGRES_PORT = 1\nPOSTGRES_CONNECT_TIMEOUT = 2\n"
                    .write(toFile: data + "/controller.conf", atomically: true, encoding: .utf8)
                let started = Date()
                let out = try lab.exec(lab.sensorNS, ["/bin/sh", "-c", "\"$0\" serve --data \"$1\" 2>&1; echo \"exit=$?\"", ctl, data],
                                       allowFailure: true, timeout: 30)
                #expect(Date().timeIntervalSince(started) < 15)
                #expect(out.contains("did not answer within 2 s") && out.contains("Connection refused") && out.contains("exit=1"), "\(out)")
                #expect(out.contains("warning"), "the client's retries are warnings")
            }
        }
    }
}
