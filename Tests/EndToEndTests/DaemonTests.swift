import Foundation
import Testing

/// The daemon's lifecycle and modes: connect mode, SIGHUP reload, SIGTERM, history files.
extension EndToEnd {
@Suite struct DaemonTests {
    @Test func connectModeRecordsCompletedHandshakesAndSendsTheBanner() throws {
        try withLab(43) { lab in
            let sensor = try lab.startSensor(config: "TCP_PORTS=\"79,111\"\nPORT_BANNER=\"go away\"\n", arguments: ["--connect"])
            try lab.exec(lab.attackerNS, ["nmap", "-sT", "-Pn", "-n", "--max-retries", "0", "-p", "79,111", lab.sensorV4])
            let banner = try lab.exec(lab.attackerNS, ["python3", "-c",
                "import socket; s=socket.create_connection(('\(lab.sensorV6)', 79), timeout=5); print(s.recv(100).decode())"])
            #expect(banner.contains("go away"))
            try lab.waitFor("three Connect events", within: 10) {
                ScanLine.parse(lab.read("sensor.out")).filter { $0.type == "Connect" }.count >= 3
            }
            #expect(try lab.stop(sensor) == 0)
            let events = ScanLine.parse(lab.read("sensor.out"))
            #expect(events.count == 3)
            #expect(Set(events.map(\.source)) == [lab.attackerV4, lab.attackerV6])
            #expect(events.allSatisfy { $0.type == "Connect" && $0.triggered == "true" })
        }
    }

    @Test func historyIsAppendedAcrossRestartsAndReloadKeepsRunning() throws {
        try withLab(44) { lab in
            let history = lab.file("history/portsentry.log")
            let config = "TCP_PORTS=\"1,79\"\nHISTORY_FILE=\"\(history)\"\n"
            for round in 1...2 {
                let sensor = try lab.startSensor(config: config, log: "sensor\(round).out")
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1", lab.sensorV4])
                try lab.waitFor("history line \(round)", within: 10) {
                    ((try? String(contentsOfFile: history, encoding: .utf8)) ?? "").split(separator: "\n").count == round
                }
                if round == 2 {
                    // SIGHUP with a broken config: reported, old config kept, still detecting.
                    try lab.write("portsentry.conf", "TCP_PORTS=\"1,nonsense\"\n")
                    kill(sensor.pid, SIGHUP)
                    try lab.waitFor("the reload error", within: 10) { lab.read("sensor2.out").contains("Reload failed") }
                    #expect(lab.read("sensor2.out").contains("portsentry.conf:1: TCP_PORTS: 'nonsense' is not a port"))
                    // A good config on the next SIGHUP adds port 9.
                    try lab.write("portsentry.conf", "TCP_PORTS=\"1,9\"\nHISTORY_FILE=\"\(history)\"\n")
                    kill(sensor.pid, SIGHUP)
                    try lab.waitFor("the reload", within: 10) { lab.read("sensor2.out").contains("Configuration reloaded") }
                    try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "9", lab.sensorV4])
                    try lab.waitFor("an event on port 9", within: 10) {
                        ScanLine.parse(lab.read("sensor2.out")).contains { $0.port == 9 }
                    }
                }
                #expect(try lab.stop(sensor) == 0)
                #expect(lab.read("sensor\(round).out").contains("Portsentry is shutting down"))
            }
            let lines = try String(contentsOfFile: history, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 3, "history kept across the restart: \(lines)")
            #expect(lines.allSatisfy { $0.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} Scan from: \["#,
                                                  options: .regularExpression) != nil })
        }
    }

    @Test func badConfigRefusesToStartAndSaysWhere() throws {
        try withLab(45) { lab in
            try lab.write("bad.conf", "TCP_PORTS=\"1\"\nSCAN_TRIGER=\"2\"\n")
            let p = try lab.spawn(lab.sensorNS, [Lab.sensorBinary, "-c", lab.file("bad.conf")], log: "bad.out")
            try lab.waitFor("the sensor to exit", within: 10) { !p.isRunning }
            #expect(p.exitStatus != 0)
            #expect(lab.read("bad.out").contains("bad.conf:2: unknown key 'SCAN_TRIGER'"))
            #expect(!lab.read("bad.out").contains("now active"))
        }
    }
}
}
