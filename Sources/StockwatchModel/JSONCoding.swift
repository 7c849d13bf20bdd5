import Foundation

/// The one JSON dialect of stockwatch, for `--json` and the HTTP API:
/// snake_case keys, ISO 8601 UTC times ending in Z, absent values as null.
public enum JSONOutput {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `apiTimes`: only the API's time forms (`ValueParser.apiTime`), for request bodies;
    /// otherwise any ISO 8601 time, offsets included (`alert import` files).
    public static func decoder(apiTimes: Bool = false) -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = apiTimes ? ValueParser.apiTime(text) : ValueParser.date(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
            }
            return date
        }
        return decoder
    }

    public static func encode(_ value: some Encodable, pretty: Bool = false) -> String {
        do {
            return String(decoding: try encoder(pretty: pretty).encode(value), as: UTF8.self)
        } catch {
            return #"{"error":{"code":"internal","message":"cannot encode output"}}"#
        }
    }

    /// `{"error":{"code":...,"message":...}}`, as written to stderr under `--json`.
    public static func errorDocument(code: String, message: String, exitStatus: Int32) -> String {
        encode(ErrorDocument(error: .init(code: code, message: message, exitStatus: exitStatus)))
    }

    struct ErrorDocument: Encodable {
        struct Body: Encodable {
            let code: String
            let message: String
            let exitStatus: Int32
            enum CodingKeys: String, CodingKey { case code, message, exitStatus = "exit_status" }
        }
        let error: Body
    }
}
