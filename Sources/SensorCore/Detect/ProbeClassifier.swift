package import PortsentryShared

/// Names a TCP probe by its flags, in Portsentry's order (NULL, XMAS, FIN, SYN), plus the
/// kinds 2.x drops unseen: ACK (`-sA`, `-sW`), Maimon (`-sM`) and every odd combination.
package enum ProbeClassifier {
    /// The probe kind, or nil for backscatter: a packet with RST, or a SYN+ACK, is what a
    /// host sends *in answer* to something. At a tripwire it means somebody else spoofed our
    /// address (or an old connection died); it is never evidence against its source.
    @inline(__always)
    package static func classify(_ all: TCPFlags) -> ProbeKind? {
        let f = all.classic
        if f.contains(.rst) { return nil }
        if f == [.syn, .ack] { return nil }
        if f.isEmpty { return .tcpNULL }
        if f.isSuperset(of: [.fin, .urg, .psh]) { return .tcpXMAS }
        if f == .fin { return .tcpFIN }
        if f == .syn { return .tcpSYN }
        if f == .ack { return .tcpACK }
        if f == [.fin, .ack] { return .tcpMaimon }
        return .tcpOther(f)
    }

    /// Probes carrying ACK also belong to every live connection; they are evidence only on
    /// a port where no connection can exist.
    @inline(__always)
    package static func needsNoConnection(_ flags: TCPFlags) -> Bool {
        flags.contains(.ack)
    }
}
