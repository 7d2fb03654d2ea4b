/// Bounds on every number that enters the controller (HTTP, config, CLI). Checked where the
/// value enters, with a clear error, so no later sum or product of times can overflow.
package enum Bounds {
    /// Longest duration anyone means (a block, a memory, a window, a "since"): ten years.
    /// Times in milliseconds plus this stay eleven orders of magnitude below Int64's limit.
    package static let maxDurationSeconds: Int64 = 10 * 365 * 86_400

    /// `value` when it is a whole number of seconds in 0...maxDurationSeconds.
    package static func duration(_ value: Int64) -> Int64? {
        (0...maxDurationSeconds).contains(value) ? value : nil
    }

    package static let durationError = "a duration must be 0 to \(maxDurationSeconds) seconds (ten years)"
}
