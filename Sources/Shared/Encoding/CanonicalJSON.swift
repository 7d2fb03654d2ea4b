/// A JSON value with one byte-exact encoding: object keys sorted by their UTF-8 bytes, no
/// insignificant white space, integers only (no floats, whose text forms vary), strings
/// escaped the minimal way. Sensor and controller sign and verify these bytes, so both
/// sides must produce them identically: this type is the only way either side makes them.
public indirect enum CanonicalJSON: Equatable, Sendable {
    case object([String: CanonicalJSON])
    case array([CanonicalJSON])
    case string(String)
    case int(Int64)
    case bool(Bool)
    case null

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        write(into: &out)
        return out
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    private func write(into out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .int(let i): out += Array(String(i).utf8)
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            out.append(UInt8(ascii: "{"))
            for (i, key) in fields.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                fields[key]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [92, 34]
            case UInt8(ascii: "\\"): out += [92, 92]
            case 0x0A: out += [92, UInt8(ascii: "n")]
            case 0x0D: out += [92, UInt8(ascii: "r")]
            case 0x09: out += [92, UInt8(ascii: "t")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension ScanEvent {
    /// The event as it travels to the controller.
    public var canonical: CanonicalJSON {
        var fields: [String: CanonicalJSON] = [
            "time_ns": .int(time),
            "source": .string(source.description),
            "destination": .string(destination.description),
            "protocol": .string(proto.description),
            "port": .int(Int64(port)),
            "type": .string(kind.name),
            "evidence": .string(kind.evidence.description),
            "ignored": Self.tri(ignored),
            "triggered": Self.tri(triggered),
            "blocked": Self.tri(blocked),
        ]
        if case .closedPortScan(let n) = kind { fields["ports"] = .int(Int64(n)) }
        if case .tcpOther(let flags) = kind { fields["tcp_flags"] = .int(Int64(flags.rawValue)) }
        return .object(fields)
    }

    private static func tri(_ t: TriState) -> CanonicalJSON {
        switch t {
        case .yes: return .bool(true)
        case .no: return .bool(false)
        case .unset: return .null
        }
    }
}
