/// The configuration used when no file is given and /etc/portsentry/portsentry.conf does
/// not exist: Portsentry 2.x's example port lists, log only, output to stdout. Safe to run
/// anywhere: it blocks nothing and writes no files.
enum DefaultConfig {
    static let path = "/etc/portsentry/portsentry.conf"

    static let text = """
    # Built-in default: Portsentry 2.x's example tripwire ports, log only.
    TCP_PORTS="1,7,9,11,13,15,17,19,20,21,70,79,111,113,119,389,512-515,540,543-544,873,989,990,992,1080"
    UDP_PORTS="7,9,13,19,111,389,513,517-518"
    BLOCK_TCP="0"
    BLOCK_UDP="0"
    SCAN_TRIGGER="0"
    """

    static func load() -> SensorConfig {
        // The embedded text is covered by a unit test; failing here is a build defect.
        do { return try ConfigParser.parse(text: text, file: "<built-in default>") } catch {
            fatalError("built-in default config is invalid: \(error)")
        }
    }
}
