/// Picks the firewall backend the config asks for.
enum FirewallFactory {
    static func make(_ config: SensorConfig) throws(FirewallError) -> (any FirewallBackend)? {
        if config.dryRun { return DryRunFirewall() }
        switch config.nativeFirewall {
        case .nftables: return try NftablesFirewall()
        case .iptables: return IptablesFirewall()
        case .none, .auto: return nil
        }
    }

    /// Where the controller's fleet-wide list goes: its own nftables sets, or its own ipsets with
    /// FIREWALL="iptables" (dry-run logs only).
    static func makeFleet(_ config: SensorConfig) throws(FirewallError) -> any FirewallBackend {
        if config.dryRun { return DryRunFirewall() }
        if config.nativeFirewall == .iptables { return IptablesFirewall(list: .fleet) }
        return try NftablesFirewall(list: .fleet)
    }
}
