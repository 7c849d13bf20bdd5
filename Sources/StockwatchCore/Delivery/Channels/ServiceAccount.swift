import Crypto
import Foundation
import _CryptoExtras
import StockwatchModel

/// A Firebase service-account key file, and the signed JWT that Google's token endpoint
/// exchanges for an access token (OAuth 2.0 JWT bearer grant, RFC 7523).
struct ServiceAccount: Sendable {
    var projectID: String
    var clientEmail: String
    var privateKeyID: String?
    var tokenURI: String
    var privateKey: _RSA.Signing.PrivateKey

    static let scope = "https://www.googleapis.com/auth/firebase.messaging"

    private struct File: Decodable {
        var type: String?
        var project_id: String?
        var private_key_id: String?
        var private_key: String?
        var client_email: String?
        var token_uri: String?
    }

    /// Reads and checks the key file: mode 0600, every field FCM needs, a usable RSA key.
    /// Errors name the file and the field, never the key.
    static func load(path: String) throws(StockwatchError) -> ServiceAccount {
        try SecretReader.checkPrivate(path)
        func fail(_ key: String?, _ reason: String) -> StockwatchError {
            .config(file: path, line: nil, key: key, reason: reason)
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail(nil, "cannot read the service account file") }
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch { throw fail(nil, "not a service account JSON file (download it from the Firebase console: Project settings, Service accounts)") }
        if let type = file.type, type != "service_account" { throw fail("type", "is '\(type)', expected 'service_account'") }
        guard let projectID = file.project_id, !projectID.isEmpty else { throw fail("project_id", "is missing") }
        guard let clientEmail = file.client_email, !clientEmail.isEmpty else { throw fail("client_email", "is missing") }
        guard let pem = file.private_key, !pem.isEmpty else { throw fail("private_key", "is missing") }
        let tokenURI = file.token_uri ?? "https://oauth2.googleapis.com/token"
        guard let url = URL(string: tokenURI), ["http", "https"].contains(url.scheme ?? "") else { throw fail("token_uri", "is not an http(s) URL") }
        let key: _RSA.Signing.PrivateKey
        do { key = try _RSA.Signing.PrivateKey(pemRepresentation: pem) } catch { throw fail("private_key", "is not a PEM RSA private key") }
        return ServiceAccount(projectID: projectID, clientEmail: clientEmail, privateKeyID: file.private_key_id, tokenURI: tokenURI, privateKey: key)
    }

    /// The key of this account's row in `access_tokens`.
    var cacheKey: String { "\(clientEmail) \(tokenURI)" }

    /// An RS256 JWT: iss, scope, aud, and iat/exp in whole seconds (Google rejects
    /// fractions), valid for the maximum hour.
    func assertion(now: Date) throws -> String {
        struct Header: Encodable { var alg = "RS256", typ = "JWT", kid: String? }
        struct Claims: Encodable { var iss: String, scope: String, aud: String, iat: Int64, exp: Int64 }
        let iat = Int64(now.timeIntervalSince1970.rounded(.down))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let header = try encoder.encode(Header(kid: privateKeyID))
        let claims = try encoder.encode(Claims(iss: clientEmail, scope: Self.scope, aud: tokenURI, iat: iat, exp: iat + 3600))
        let signingInput = header.base64URLEncoded + "." + claims.base64URLEncoded
        let signature = try privateKey.signature(for: SHA256.hash(data: Data(signingInput.utf8)), padding: .insecurePKCS1v1_5)
        return signingInput + "." + signature.rawRepresentation.base64URLEncoded
    }
}

extension Data {
    /// Base64url without padding, as JWTs use (RFC 7515).
    var base64URLEncoded: String {
        base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
