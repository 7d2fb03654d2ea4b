import Foundation

/// Integers out of `JSONSerialization` results, exactly: a fraction, a number beyond Int64
/// or something that is not a number is nil. (`NSNumber.doubleValue` loses digits above 2^53
/// and `int64Value` truncates 1.9 to 1; neither is acceptable in a signed block list.)
public enum JSONInteger {
    public static func int64(_ value: Any?) -> Int64? {
        guard let n = value as? NSNumber else { return nil }
        return Int64(exactly: n)
    }
}
