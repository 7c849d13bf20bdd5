import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import StockwatchCore
import StockwatchModel

/// Errors that exist only in HTTP; everything else is a `StockwatchError`.
enum APIError: Error {
    case unauthorized
    case forbiddenOrigin(String)
    case upgradeRequired
    /// An upgrade request without a usable Sec-WebSocket-Key or Sec-WebSocket-Version.
    case badUpgrade(String)
    /// The path exists, with other methods.
    case methodNotAllowed(allowed: [String])
    /// `[serve] writes_per_minute` used up; the client may write again after that many seconds.
    case tooManyWrites(retryAfterSeconds: Int)
}

/// Turns every error into `{"error":{"code","message"}}` with a fitting status:
/// 400 malformed body, 401 no or wrong token, 404 unknown (or another user's) id,
/// 409 duplicate, 413 body too large, 422 a value that fails validation or a per-user
/// limit, 429 too many writes.
struct ErrorRendering: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            // The router found no route: a known path asked with another method is 405.
            let allowed = APIServer.methods(forPath: request.uri.path)
            return Self.response(for: allowed.isEmpty ? error : APIError.methodNotAllowed(allowed: allowed), request: request, logger: context.logger)
        } catch {
            return Self.response(for: error, request: request, logger: context.logger)
        }
    }

    static func response(for error: any Error, request: Request, logger: Logger) -> Response {
        let (status, code, message) = describe(error)
        if status == .internalServerError {
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        if status == .unauthorized { headers[.wwwAuthenticate] = #"Bearer realm="stockwatch""# }
        if case let APIError.tooManyWrites(seconds) = error { headers[.retryAfter] = String(seconds) }
        if case let APIError.methodNotAllowed(allowed) = error { headers[.allow] = allowed.joined(separator: ", ") }
        let body = JSONOutput.encode(["error": ["code": code, "message": message]])
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body + "\n")))
    }

    static func describe(_ error: any Error) -> (HTTPResponse.Status, String, String) {
        switch error {
        case let error as StockwatchError:
            let status: HTTPResponse.Status = switch error {
            case .invalidValue, .usage, .limitReached: .unprocessableContent
            case .invalidInput: .badRequest
            case .notFound: .notFound
            case .alreadyExists: .conflict
            case .unavailable, .temporary: .serviceUnavailable
            case .config, .insecureFile, .insecureFolder, .internal: .internalServerError
            }
            return (status, error.code, status == .internalServerError ? "internal error" : error.message)
        case APIError.unauthorized:
            return (.unauthorized, "unauthorized", "missing or wrong bearer token (Authorization: Bearer TOKEN from 'stockwatch user add')")
        case let APIError.forbiddenOrigin(origin):
            return (.forbidden, "forbidden_origin", "origin '\(origin.truncatedForMessage)' is not in [serve] allowed_origins")
        case let APIError.badUpgrade(reason):
            return (.badRequest, "bad_upgrade", reason)
        case let APIError.methodNotAllowed(allowed):
            return (.methodNotAllowed, "method_not_allowed", "this path answers \(allowed.joined(separator: ", ")) only")
        case APIError.upgradeRequired:
            return (.upgradeRequired, "upgrade_required", "GET /v1/stream is a WebSocket: send Connection: Upgrade and Upgrade: websocket")
        case let APIError.tooManyWrites(seconds):
            return (.tooManyRequests, "too_many_writes", "more than [serve] writes_per_minute writes; try again in \(seconds) s")
        case is NIOTooManyBytesError:
            return (.contentTooLarge, "too_large", "request body larger than \(APIServer.maximumBody) bytes")
        case let error as HTTPError:
            let code = error.status == .notFound ? "not_found" : error.status == .methodNotAllowed ? "method_not_allowed" : "http_\(error.status.code)"
            return (error.status, code, error.body ?? error.status.reasonPhrase)
        default:
            return (.internalServerError, "internal", "internal error")
        }
    }
}
