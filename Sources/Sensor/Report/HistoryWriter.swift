import PortsentryShared

/// The file outputs: HISTORY_FILE (Portsentry 2.x or 1.2 lines) and JSON_LOG_FILE.
/// Shared by the daemon and `replay`, so both write byte-identical files.
final class HistoryWriter {
    private let format: SensorConfig.HistoryFormat
    private let history: AppendFile?
    private let json: AppendFile?

    init(config: SensorConfig) {
        format = config.historyFormat
        history = config.historyFile.map(AppendFile.init)
        json = config.jsonLogFile.map(AppendFile.init)
    }

    /// Creates the files' directories and checks they can be written, so a wrong path is an
    /// error at start-up, not a silent loss later.
    func prepare() throws(TextFile.Failure) {
        try history?.prepare()
        try json?.prepare()
    }

    func write(_ e: ScanEvent) {
        if let history {
            switch format {
            case .portsentry2: history.append([EventFormatter.portsentry2History(e)])
            case .portsentry12: if let line = EventFormatter.portsentry12History(e) { history.append([line]) }
            }
        }
        json?.append([EventFormatter.json(e)])
    }
}
