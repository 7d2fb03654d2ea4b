@testable import Sensor
import Foundation
import PortsentryShared
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The control socket's protocol over a real Unix socket: typed requests in, typed replies
/// out, and a clear refusal for anything else.
@Suite struct ControlSocketTests {
    /// Sends `message` as one line, lets the server answer it, and returns the reply.
    static func exchange(_ server: ControlServer, _ message: some Encodable,
                         _ handle: (ControlRequest) -> ControlReply) throws -> ControlReply {
        let client = try ControlClient.connect(server.path)
        defer { close(client) }
        ControlClient.writeLine(client, message)
        server.serve(handle)
        let line = try #require(ControlClient.readLine(client, limit: 1 << 20))
        return try WireJSON.decode(ControlReply.self, from: line)
    }

    @Test func typedRequestsAndClearRefusals() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-ctl-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ControlServer(path: dir + "/control.sock")
        var seen: [ControlRequest] = []
        let handle: (ControlRequest) -> ControlReply = { request in
            seen.append(request)
            return ControlReply(target: request.target, expires: 1_900_000_000)
        }
        let asRoot = geteuid() == 0
        let added = try Self.exchange(server, ControlRequest(.blocksAdd, target: "198.51.100.7", seconds: 600), handle)
        if !asRoot {
            #expect(added.ok == false && added.error?.contains("permission denied") == true)
            return
        }
        #expect(added == ControlReply(target: "198.51.100.7", expires: 1_900_000_000))
        #expect(seen == [ControlRequest(.blocksAdd, target: "198.51.100.7", seconds: 600)])

        struct Raw: Encodable { var command: String; var seconds: String? = nil }
        let unknown = try Self.exchange(server, Raw(command: "reboot"), handle)
        #expect(unknown.ok == false && unknown.error == "not a control request: command is malformed")
        let wrongType = try Self.exchange(server, Raw(command: "blocks.add", seconds: "600"), handle)
        #expect(wrongType.ok == false && wrongType.error == "not a control request: seconds has the wrong type")
        #expect(seen.count == 1, "refused requests never reach the daemon")
    }
}
