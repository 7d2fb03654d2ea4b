/// The sensor → controller reporting contract: where a signed batch goes and how its
/// envelope travels (HTTP headers; the body is the `EventBatch` whose bytes the digest covers).
public enum ReportProtocol {
    public static let eventsPath = "/v1/events"
    public static let enrollPath = "/v1/enroll"
    /// Signed (heartbeat domain, sequence 0) status reports; a heartbeat's timestamp must be
    /// newer than the sensor's last one.
    public static let heartbeatPath = "/v1/heartbeat"
    /// A heartbeat: a status object and a protection report whose lists are bounded (under 100 kB).
    public static let maxHeartbeatBytes = 256 << 10

    public static let sensorHeader = "X-Portsentry-Sensor"
    public static let sequenceHeader = "X-Portsentry-Sequence"
    public static let timestampHeader = "X-Portsentry-Timestamp"
    public static let digestHeader = "X-Portsentry-Digest"
    public static let signatureHeader = "X-Portsentry-Signature"

    /// Largest batch body either side accepts.
    public static let maxBodyBytes = 1 << 20
    /// Events in one batch at most.
    public static let maxEventsPerBatch = 5000
    /// A signed message whose timestamp is further than this from the controller's clock is
    /// refused. Batches are signed when sent, so this bounds clock skew, never an outage.
    public static let timestampWindowMillis: Int64 = 300_000

    /// True when `timestamp` is within the window around `now` (no arithmetic on the
    /// untrusted value: any Int64 is safe).
    public static func isFresh(_ timestamp: Int64, now: Int64) -> Bool {
        let (low, o1) = now.subtractingReportingOverflow(timestampWindowMillis)
        let (high, o2) = now.addingReportingOverflow(timestampWindowMillis)
        return (o1 || timestamp >= low) && (o2 || timestamp <= high)
    }

    /// The body of a batch: `{"events":[...]}`.
    public static func body(events: [ScanEvent]) -> [UInt8] {
        WireJSON.encode(EventBatch(events))
    }
}
