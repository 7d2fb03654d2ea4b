@testable import Sensor
@testable import SensorCore
import Foundation
import PortsentryShared
import Testing

/// sock_diag against the real kernel, on loopback sockets this test opens.
@Suite struct SocketDiagTests {
    @Test func listenersAndEstablishedPeersComeFromTheKernel() throws {
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(server) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server, $0, length) == 0 && getsockname(server, $0, &length) == 0 }
        }
        #expect(bound && listen(server, 4) == 0)
        let port = UInt16(bigEndian: address.sin_port)

        let listeners = try #require(SocketDiag.tcpListeners())
        #expect(listeners.contains { $0.local == IPAddress("127.0.0.1") && $0.localPort == port })
        let snapshot = try #require(LocalSockets.read())
        #expect(snapshot.tcpListeners.contains(IPAddress("127.0.0.1")!, port))

        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        let connected = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) == 0 }
        }
        #expect(connected)
        let accepted = accept(server, nil, nil)
        defer { close(accepted) }
        // The server side of the connection: local port = the listener's, peer = 127.0.0.1.
        let peers = try #require(SocketDiag.established(with: IPPrefix(host: IPAddress("127.0.0.1")!)))
        #expect(peers.contains { $0.localPort == port && $0.remote == IPAddress("127.0.0.1") })
        #expect(ProtectedAddresses.sessionPeer(in: try IPPrefix(parsing: "127.0.0.0/8"), ports: PortSet([port...port]))
                == IPAddress("127.0.0.1"))
        // The kernel-side filter: no connection with a documentation address.
        #expect(try #require(SocketDiag.established(with: IPPrefix(host: IPAddress("192.0.2.1")!))).isEmpty)
    }
}
