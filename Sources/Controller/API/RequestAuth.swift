import Hummingbird
import PortsentryShared
import ControllerCore

/// What the controller knows about a request beyond its bytes, filled in by the
/// middleware in front of its route: who sent it and, for a signed request, the exact
/// body the signature covers.
struct ControllerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The sensor a signed heartbeat or poll came from (`SensorAuth`).
    var sensor: SensorRecord?
    /// That request's body, read once and verified.
    var signedBody: [UInt8] = []
    /// True behind `OperatorAuth`.
    var isOperator = false

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// The authenticated sender; only routes behind `SensorAuth` ask, and it always set one.
    func authenticatedSensor() throws -> SensorRecord {
        guard let sensor else { throw HTTPError(.internalServerError, message: "route without sensor authentication") }
        return sensor
    }
}

/// In front of a sensor's signed requests without a sequence (heartbeat, block-list poll):
/// reads the body up to `limit`, checks the sensor, the signature under `domain` and the
/// timestamp, and answers the refusal itself (counted and logged) when any fails.
struct SensorAuth: RouterMiddleware {
    let api: ControllerAPI
    let kind: ControllerAPI.SignedRequest
    let limit: Int
    let domain: String

    func handle(_ request: Request, context: ControllerContext,
                next: (Request, ControllerContext) async throws -> Response) async throws -> Response {
        switch try await api.signedBody(request, kind, upTo: limit, domain: domain) {
        case .failure(let refused): return refused.response
        case .success(let (sensor, body)):
            var context = context
            (context.sensor, context.signedBody) = (sensor, body)
            return try await next(request, context)
        }
    }
}

/// In front of the operator API: a bearer token (`operator.token` in the data directory),
/// compared in constant time. Without a token file the API is off.
struct OperatorAuth: RouterMiddleware {
    let token: String?
    let metrics: IngestMetrics

    func handle(_ request: Request, context: ControllerContext,
                next: (Request, ControllerContext) async throws -> Response) async throws -> Response {
        guard let token else {
            return ControllerAPI.error("the operator API is disabled (no operator.token in the data directory)", status: .forbidden)
        }
        let given = request.headers[.authorization] ?? ""
        guard Self.constantTimeEqual(Array(given.utf8), Array("Bearer \(token)".utf8)) else {
            metrics.add("refused_operator")
            return ControllerAPI.error("missing or wrong bearer token", status: .unauthorized)
        }
        var context = context
        context.isOperator = true
        return try await next(request, context)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
