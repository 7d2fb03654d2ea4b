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

extension EndToEnd {
    @Suite struct InterfaceTests {
        /// With the default interface selection, an interface and an address that appear while
        /// the sensor runs are watched at once (netlink wakes the loop; no restart).
        @Test func interfacesAndAddressesThatAppearAreWatched() throws {
            try withLab(46) { lab in
                let sensor = try lab.startSensor(config: "TCP_PORTS=\"1,79\"\n", arguments: ["-v"], allInterfaces: true)
                #expect(lab.read("sensor.out").contains("Ready Device: \(lab.sensorInterface)"))
                #expect(!lab.read("sensor.out").contains("Ready Device: lo"), "ALL_NLO leaves loopback out")

                // A new address on the existing interface.
                func watched() -> Int {
                    lab.read("sensor.out").split(separator: "\n").compactMap { line -> Int? in
                        guard let r = line.range(of: "Watching ") else { return nil }
                        return Int(line[r.upperBound...].prefix { $0.isNumber })
                    }.last ?? 0
                }
                let before = watched()
                try Lab.run(["ip", "-n", lab.sensorNS, "addr", "add", "10.231.46.5/24", "dev", lab.sensorInterface])
                try lab.waitFor("the new address to be watched", within: 10) { watched() == before + 1 }
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "79", "10.231.46.5"])
                try lab.waitFor("an event for the new address", within: 10) {
                    ScanLine.parse(lab.read("sensor.out")).contains { $0.port == 79 }
                }

                // A new interface: a second link between the two namespaces.
                for command in [
                    ["ip", "link", "add", "\(Lab.linkTag)46t", "type", "veth", "peer", "name", "\(Lab.linkTag)46b"],
                    ["ip", "link", "set", "\(Lab.linkTag)46t", "netns", lab.sensorNS], ["ip", "link", "set", "\(Lab.linkTag)46b", "netns", lab.attackerNS],
                    ["ip", "-n", lab.sensorNS, "addr", "add", "10.232.46.1/24", "dev", "\(Lab.linkTag)46t"],
                    ["ip", "-n", lab.attackerNS, "addr", "add", "10.232.46.2/24", "dev", "\(Lab.linkTag)46b"],
                    ["ip", "-n", lab.sensorNS, "link", "set", "\(Lab.linkTag)46t", "up"], ["ip", "-n", lab.attackerNS, "link", "set", "\(Lab.linkTag)46b", "up"],
                ] { try Lab.run(command) }
                try lab.waitFor("capture on the new interface", within: 10) { lab.read("sensor.out").contains("Ready Device: \(Lab.linkTag)46t") }
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1", "10.232.46.1"])
                try lab.waitFor("an event through the new interface", within: 10) {
                    ScanLine.parse(lab.read("sensor.out")).contains { $0.port == 1 && $0.source == "10.232.46.2" }
                }

                // The interface goes away: capture on it stops, the sensor keeps running.
                try Lab.run(["ip", "-n", lab.sensorNS, "link", "del", "\(Lab.linkTag)46t"])
                try lab.waitFor("the sensor to drop the interface", within: 10) {
                    lab.read("sensor.out").contains("Interface \(Lab.linkTag)46t is gone")
                }
                #expect(try lab.stop(sensor) == 0)
            }
        }

        /// Advanced mode (1.2's -atcp): every port below ADVANCED_PORTS_TCP except the
        /// excludes and ports with a listener.
        @Test func advancedModeWatchesEveryLowPortButListenersAndExcludes() throws {
            try withLab(47) { lab in
                _ = try lab.spawn(lab.sensorNS, ["python3", "-m", "http.server", "80", "--bind", lab.sensorV4], log: "http.out")
                try lab.waitFor("the web server to listen", within: 10) {
                    (try? lab.exec(lab.sensorNS, ["ss", "-ltnH", "sport = :80"]))?.contains("80") == true
                }
                let sensor = try lab.startSensor(config: "ADVANCED_PORTS_TCP=\"1024\"\nADVANCED_EXCLUDE_TCP=\"113,139\"\nLOG_PER_SOURCE=\"0\"\nLOG_RATE=\"100000\"\nLOG_BURST=\"100000\"\n",
                                                 arguments: ["-atcp"])
                try lab.exec(lab.attackerNS, ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "-p", "1-1023", lab.sensorV4])
                // 1,023 ports minus 113 and 139 (excluded) minus 80 (a real web server).
                try lab.waitFor("1020 events", within: 20) { ScanLine.parse(lab.read("sensor.out")).count >= 1020 }
                #expect(try lab.stop(sensor) == 0)
                let ports = Set(ScanLine.parse(lab.read("sensor.out")).map(\.port))
                #expect(ports.count == 1020)
                #expect(!ports.contains(80) && !ports.contains(113) && !ports.contains(139))
                #expect(ScanLine.parse(lab.read("sensor.out")).count == 1020)
            }
        }
    }
}
