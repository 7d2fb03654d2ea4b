import CCurl
import Foundation
import Logging
import PortsentryShared

/// libcurl transfers: SMTP (smtp:// with optional STARTTLS, smtps://, AUTH) and HTTP(S) POST.
/// A `Connection` keeps one handle (and its connection) across the controller's transfers.
enum CurlTransfer {
    private final class Upload {
        let bytes: [UInt8]
        var offset = 0
        init(_ text: String) { bytes = Array(text.utf8) }
    }

    private static let read: ccurl_data_cb = { buffer, size, count, context in
        guard let buffer, let context else { return 0 }
        let upload = Unmanaged<Upload>.fromOpaque(context).takeUnretainedValue()
        let n = min(size * count, upload.bytes.count - upload.offset)
        upload.bytes.withUnsafeBytes { raw in
            UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + upload.offset, byteCount: n)
        }
        upload.offset += n
        return n
    }

    private static let discard: ccurl_data_cb = { _, size, count, _ in size * count }

    /// Collects a response body, up to `limit` bytes (more is an error).
    private final class Sink {
        var bytes: [UInt8] = []
        let limit: Int
        init(limit: Int) { self.limit = limit }
    }

    private static let collect: ccurl_data_cb = { data, size, count, context in
        guard let data, let context else { return 0 }
        let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
        let n = size * count
        guard sink.bytes.count + n <= sink.limit else { return 0 }  // aborts the transfer
        sink.bytes += UnsafeRawBufferPointer(start: data, count: n)
        return n
    }

    struct Reply {
        var status: Int
        var body: [UInt8]
        /// The pin (`sha256//BASE64`) of the certificate the server presented, when asked for.
        var serverPin: String? = nil
        /// Connections this transfer had to open (0: it reused one, TLS session and all).
        var newConnections = 0
    }

    /// One libcurl easy handle kept across transfers, so its connection (and TLS session)
    /// to the controller is reused: a batch, poll or heartbeat then costs no new handshake.
    /// libcurl reuses a connection only for a transfer with the same TLS settings (CA file,
    /// pinned key), so the pin is checked on every connection that is made.
    /// Used by one thread at a time (the uplink's delivery thread, the fleet poller).
    final class Connection: @unchecked Sendable {
        fileprivate let handle: UnsafeMutableRawPointer?
        init() { handle = curl_easy_init() }
        deinit { if let handle { curl_easy_cleanup(handle) } }
    }

    /// An HTTPS POST to a pinned server: the CA file verifies the certificate, and `pin`
    /// (`sha256//BASE64`) if given also fixes its public key. Returns the reply, or the
    /// transport error (nothing was received). With `wantServerPin` the reply also carries the
    /// pin of the certificate the server presented on this very connection.
    static func post(url: String, body: [UInt8], headers: [String], caFile: String?, pin: String?,
                     timeout: Int, limit: Int = 1 << 20, wantServerPin: Bool = false,
                     reusing connection: Connection? = nil) -> Result<Reply, TransferError> {
        // Without a kept handle (none given, or it could not be made) this call owns a fresh one.
        let owned = connection?.handle == nil
        guard let curl = connection?.handle ?? curl_easy_init() else {
            return .failure(TransferError(description: "libcurl: cannot create a handle"))
        }
        // A kept handle is reset after each use: it keeps its connection cache, but no option
        // and no pointer to this call's headers or sink.
        defer { if owned { curl_easy_cleanup(curl) } else { curl_easy_reset(curl) } }
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for h in headers + ["Content-Type: application/json", "User-Agent: portsentry/\(sensorVersion)", "Expect:"] {
            list = curl_slist_append(list, h)
        }
        defer { curl_slist_free_all(list) }
        ccurl_setopt_string(curl, CURLOPT_URL, url)
        ccurl_setopt_slist(curl, CURLOPT_HTTPHEADER, list)
        ccurl_setopt_long(curl, CURLOPT_POSTFIELDSIZE, body.count)
        body.withUnsafeBufferPointer { p in
            _ = ccurl_setopt_pointer(curl, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: p.baseAddress))
        }
        if let pin { ccurl_setopt_string(curl, CURLOPT_PINNEDPUBLICKEY, pin) }
        let sink = Sink(limit: limit)
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }
        ccurl_setopt_writefunction(curl, collect)
        ccurl_setopt_pointer(curl, CURLOPT_WRITEDATA, context.toOpaque())
        common(curl, caFile: caFile, timeout: timeout)
        if wantServerPin { ccurl_setopt_long(curl, CURLOPT_CERTINFO, 1) }
        let rc = curl_easy_perform(curl)
        guard rc == CURLE_OK else {
            return .failure(TransferError(description: String(cString: curl_easy_strerror(rc)) + " (curl error \(rc.rawValue))"))
        }
        var status = 0, connects = 0
        ccurl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        ccurl_getinfo_long(curl, CURLINFO_NUM_CONNECTS, &connects)
        return .success(Reply(status: status, body: sink.bytes, serverPin: wantServerPin ? serverPin(curl) : nil,
                              newConnections: connects))
    }

    /// The pin of the server's own (first) certificate from libcurl's certificate info.
    private static func serverPin(_ curl: UnsafeMutableRawPointer) -> String? {
        var info: UnsafeMutablePointer<curl_certinfo>? = nil
        guard ccurl_getinfo_certinfo(curl, &info) == CURLE_OK, let info, info.pointee.num_of_certs > 0,
              var entry = info.pointee.certinfo?[0] else { return nil }
        while true {
            if let data = entry.pointee.data {
                let text = String(cString: data)
                if text.hasPrefix("Cert:") { return try? TLSPin.pin(pem: String(text.dropFirst(5))) }
            }
            guard let next = entry.pointee.next else { return nil }
            entry = next
        }
    }

    struct TransferError: Error, CustomStringConvertible {
        let description: String
    }

    static func sendMail(settings: AlertSettings, subject: String, body: String, timeout: Int) -> String? {
        guard let curl = curl_easy_init() else { return "libcurl: cannot create a handle" }
        defer { curl_easy_cleanup(curl) }
        let from = settings.emailFrom ?? "portsentry@localhost"
        let date = EventFormatter.rfc5322Date(Int64(Date().timeIntervalSince1970))
        let message = "Date: \(date)\r\nFrom: \(from)\r\nTo: \(settings.emailTo.joined(separator: ", "))\r\n"
            + "Subject: \(subject)\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            + body.replacingAll("\n", with: "\r\n") + "\r\n"
        let upload = Upload(message)
        var recipients: UnsafeMutablePointer<curl_slist>? = nil
        for r in settings.emailTo { recipients = curl_slist_append(recipients, "<\(r)>") }
        defer { curl_slist_free_all(recipients) }
        ccurl_setopt_string(curl, CURLOPT_URL, settings.smtpURL)
        ccurl_setopt_string(curl, CURLOPT_MAIL_FROM, "<\(from)>")
        ccurl_setopt_slist(curl, CURLOPT_MAIL_RCPT, recipients)
        ccurl_setopt_readfunction(curl, read)
        let context = Unmanaged.passRetained(upload)
        defer { context.release() }
        ccurl_setopt_pointer(curl, CURLOPT_READDATA, context.toOpaque())
        ccurl_setopt_long(curl, CURLOPT_UPLOAD, 1)
        // With credentials, TLS is required whatever ALERT_SMTP_STARTTLS says: a server that
        // does not offer STARTTLS is an error, never a silent downgrade to clear text.
        let requireTLS = settings.smtpRequireTLS || settings.smtpUser != nil
        ccurl_setopt_long(curl, CURLOPT_USE_SSL, Int(requireTLS ? CURLUSESSL_ALL.rawValue : CURLUSESSL_TRY.rawValue))
        if let user = settings.smtpUser {
            ccurl_setopt_string(curl, CURLOPT_USERNAME, user)
            if let file = settings.smtpPasswordFile {
                guard let password = try? TextFile.read(file, limit: 4096).trimmingWhitespace() else {
                    return "cannot read ALERT_SMTP_PASSWORD_FILE \(file)"
                }
                ccurl_setopt_string(curl, CURLOPT_PASSWORD, password)
            }
        }
        common(curl, caFile: settings.caFile, timeout: timeout)
        let rc = curl_easy_perform(curl)
        if rc == CURLE_USE_SSL_FAILED {
            return "the SMTP server at \(settings.smtpURL) does not offer STARTTLS, and TLS is required "
                + (settings.smtpUser != nil ? "to send the ALERT_SMTP_USER credentials" : "(ALERT_SMTP_STARTTLS)")
                + ": nothing was sent (use smtps:// or a server with STARTTLS)"
        }
        return describe(curl, rc)
    }

    static func postJSON(url: String, body: String, caFile: String?, timeout: Int) -> String? {
        guard let curl = curl_easy_init() else { return "libcurl: cannot create a handle" }
        defer { curl_easy_cleanup(curl) }
        var headers = curl_slist_append(nil, "Content-Type: application/json")
        headers = curl_slist_append(headers, "User-Agent: portsentry/\(sensorVersion)")
        defer { curl_slist_free_all(headers) }
        ccurl_setopt_string(curl, CURLOPT_URL, url)
        ccurl_setopt_slist(curl, CURLOPT_HTTPHEADER, headers)
        let bytes = Array(body.utf8)
        ccurl_setopt_long(curl, CURLOPT_POSTFIELDSIZE, bytes.count)
        bytes.withUnsafeBufferPointer { p in
            _ = ccurl_setopt_pointer(curl, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: p.baseAddress))
        }
        ccurl_setopt_long(curl, CURLOPT_FAILONERROR, 1)
        ccurl_setopt_writefunction(curl, discard)
        common(curl, caFile: caFile, timeout: timeout)
        return perform(curl)
    }

    private static func common(_ curl: UnsafeMutableRawPointer, caFile: String?, timeout: Int) {
        ccurl_setopt_long(curl, CURLOPT_TIMEOUT, timeout)
        ccurl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT, 10)
        ccurl_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
        // Only the URL's own scheme: no redirect into another protocol.
        ccurl_setopt_long(curl, CURLOPT_FOLLOWLOCATION, 0)
        // The CA file is the only trust: not also the system's CA directory.
        if let caFile { ccurl_trust_only(curl, caFile) }
    }

    private static func perform(_ curl: UnsafeMutableRawPointer) -> String? {
        describe(curl, curl_easy_perform(curl))
    }

    private static func describe(_ curl: UnsafeMutableRawPointer, _ rc: CURLcode) -> String? {
        guard rc != CURLE_OK else { return nil }
        var status = 0
        ccurl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return String(cString: curl_easy_strerror(rc)) + (status > 0 ? " (server answered \(status))" : "")
    }
}
