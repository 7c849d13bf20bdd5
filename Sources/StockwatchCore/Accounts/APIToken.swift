import Crypto
import Foundation

/// API tokens: shown once at creation, stored only as a SHA-256 hash. Tokens are
/// 256 random bits, so a plain hash (no salt or stretching) is enough to make a stolen
/// database useless for logging in.
public enum APIToken {
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "sw_" + bytes.map { String(format: "%02x", $0) }.joined()
    }

    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
