import CPcap
#if canImport(Glibc)
import Glibc
import SensorCore
#endif

/// One libpcap capture, live or from a file. Packets are read with `pcap_next_ex`, which
/// hands out a pointer into libpcap's own buffer: nothing is copied or allocated per packet.
final class PcapHandle {
    /// Bytes kept per packet: link header + VLAN tags + IPv6 + ICMPv6 + the quoted IPv6
    /// header and ports fit in ~120; extension headers get the rest. Payload is never needed.
    static let snapLength: Int32 = 384

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    enum Next {
        case packet(UnsafeRawBufferPointer, seconds: Int, subsecond: Int)
        case none
        case end
    }

    let name: String
    let linkType: LinkType
    private let handle: OpaquePointer
    /// Whether `subsecond` of `next()` is in nanoseconds (files) or microseconds.
    let nanosecondStamps: Bool

    private init(name: String, handle: OpaquePointer, nanos: Bool) throws(Failure) {
        let dlt = pcap_datalink(handle)
        guard let link = LinkType(dlt: dlt) else {
            pcap_close(handle)
            throw Failure(description: "\(name): link type \(dlt) is not supported (Ethernet, Linux SLL/SLL2, raw IP, BSD loopback are)")
        }
        self.name = name
        self.handle = handle
        self.linkType = link
        self.nanosecondStamps = nanos
    }

    deinit { pcap_close(handle) }

    /// A live, non-promiscuous, immediate-mode, non-blocking capture on `interface`.
    static func live(interface: String, bufferBytes: Int) throws(Failure) -> PcapHandle {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let p = pcap_create(interface, &errbuf) else {
            throw Failure(description: "\(interface): \(cText(errbuf))")
        }
        pcap_set_snaplen(p, snapLength)
        pcap_set_promisc(p, 0)
        pcap_set_immediate_mode(p, 1)
        pcap_set_buffer_size(p, Int32(clamping: bufferBytes))
        _ = pcap_set_tstamp_precision(p, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let status = pcap_activate(p)
        if status < 0 {
            let message = String(cString: pcap_geterr(p))
            pcap_close(p)
            throw Failure(description: "\(interface): cannot start capture: \(message)")
        }
        guard pcap_setnonblock(p, 1, &errbuf) == 0 else {
            pcap_close(p)
            throw Failure(description: "\(interface): \(cText(errbuf))")
        }
        _ = pcap_setdirection(p, PCAP_D_INOUT)
        let nanos = pcap_get_tstamp_precision(p) == Int32(PCAP_TSTAMP_PRECISION_NANO)
        return try PcapHandle(name: interface, handle: p, nanos: nanos)
    }

    static func offline(path: String) throws(Failure) -> PcapHandle {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let p = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf) else {
            throw Failure(description: "\(path): \(cText(errbuf))")
        }
        return try PcapHandle(name: path, handle: p, nanos: true)
    }

    /// Compiles and installs a kernel filter; the expression is our own, so a failure is a bug
    /// or a limit (too many terms), and the caller falls back to a broader filter.
    func setFilter(_ expression: String) throws(Failure) {
        var program = bpf_program()
        guard pcap_compile(handle, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            throw Failure(description: "\(name): filter rejected: \(String(cString: pcap_geterr(handle)))")
        }
        defer { pcap_freecode(&program) }
        guard pcap_setfilter(handle, &program) == 0 else {
            throw Failure(description: "\(name): cannot install filter: \(String(cString: pcap_geterr(handle)))")
        }
    }

    var selectableFD: Int32 { pcap_get_selectable_fd(handle) }

    @inline(__always)
    func next() throws(Failure) -> Next {
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        switch pcap_next_ex(handle, &header, &data) {
        case 1:
            guard let header, let data else { return .none }
            let h = header.pointee
            return .packet(UnsafeRawBufferPointer(start: data, count: Int(h.caplen)),
                           seconds: Int(h.ts.tv_sec), subsecond: Int(h.ts.tv_usec))
        case 0: return .none
        case -2: return .end
        default: throw Failure(description: "\(name): \(String(cString: pcap_geterr(handle)))")
        }
    }

    struct Stats {
        var received: UInt64
        var dropped: UInt64
        var interfaceDropped: UInt64
    }

    func stats() -> Stats? {
        var s = pcap_stat()
        guard pcap_stats(handle, &s) == 0 else { return nil }
        return Stats(received: UInt64(s.ps_recv), dropped: UInt64(s.ps_drop), interfaceDropped: UInt64(s.ps_ifdrop))
    }
}

func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
