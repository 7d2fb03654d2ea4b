/// Where sensors' long polls wait for the next block-list revision. `advance` wakes every
/// poll waiting for something newer; a poll that times out just answers "nothing new".
actor RevisionHub {
    private(set) var current: Int64
    private var waiters: [Int: (after: Int64, resume: CheckedContinuation<Void, Never>)] = [:]
    private var nextID = 0
    private(set) var closed = false

    init(current: Int64) { self.current = current }

    func advance(to revision: Int64) {
        guard revision > current else { return }
        current = revision
        for (id, w) in waiters where w.after < revision {
            waiters[id] = nil
            w.resume.resume()
        }
    }

    /// Returns once the revision is past `after`, or after `seconds`.
    func wait(after: Int64, seconds: Double) async {
        guard current <= after, !closed else { return }
        let id = nextID
        nextID += 1
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            waiters[id] = (after, c)
            Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                self.expire(id)
            }
        }
    }

    private func expire(_ id: Int) {
        waiters.removeValue(forKey: id)?.resume.resume()
    }

    var waiting: Int { waiters.count }

    /// Shutting down: every poll answers now, and new ones do not wait.
    func close() {
        closed = true
        for (_, w) in waiters { w.resume.resume() }
        waiters.removeAll()
    }
}
