/// Picks the firewall backend the config asks for.
enum FirewallFactory {
    static func make(_ config: SensorConfig) throws(FirewallError) -> (any FirewallBackend)? {
        if config.dryRun { return DryRunFirewall() }
        switch config.nativeFirewall {
        case .nftables: return try NftablesFirewall(sessionPorts: config.protectPorts)
        case .iptables: return IptablesFirewall(sessionPorts: config.protectPorts)
        case .none, .auto: return nil
        }
    }

    /// Where the controller's fleet-wide list goes: its own nftables sets, or its own ipsets with
    /// FIREWALL="iptables" (dry-run logs only).
    static func makeFleet(_ config: SensorConfig) throws(FirewallError) -> any FirewallBackend {
        if config.dryRun { return DryRunFirewall() }
        if config.nativeFirewall == .iptables { return IptablesFirewall(list: .fleet, sessionPorts: config.protectPorts) }
        return try NftablesFirewall(list: .fleet, sessionPorts: config.protectPorts)
    }
}
