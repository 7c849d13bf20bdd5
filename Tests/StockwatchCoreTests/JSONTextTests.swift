import Foundation
import Testing
@testable import StockwatchModel

/// `alert list --json` and the FCM message are written by hand (issue 19); scripts compare
/// them with what `JSONEncoder` wrote before, so every byte must stay the same.
@Suite struct JSONTextTests {
    private func encoded(_ alerts: [AlertJSON]) throws -> String {
        String(decoding: try JSONOutput.encoder().encode(alerts), as: UTF8.self)
    }

    private func written(_ alerts: [AlertJSON]) -> String {
        var json = JSONText()
        json.raw("[")
        for (index, alert) in alerts.enumerated() {
            if index > 0 { json.raw(",") }
            alert.write(to: &json)
        }
        json.raw("]")
        return String(decoding: json.bytes, as: UTF8.self)
    }

    @Test func everyControlCharacterQuoteSlashAndNonASCIIIsEscapedAsJSONEncoderDoes() throws {
        var texts = (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }
        texts += ["\"", "\\", "/", "\u{7F}", "é", "€", "🙂", "\u{2028}\u{2029}", "a\"b\\c/d\ne\u{1}f", "", "plain"]
        for text in texts {
            let alert = AlertJSON(id: 1, user: text, symbol: "AAPL", condition: .init(Condition.above(1)), note: text, schedule: text)
            #expect(written([alert]) == (try encoded([alert])), "text \(Array(text.unicodeScalars.map(\.value)))")
        }
    }

    @Test func numbersDatesAndAbsentValuesAreTheEncodersBytes() throws {
        let values: [Double] = [1, 150, 150.5, 0.1 + 0.2, 1e-7, 123_456_789.123, 1e15 - 1, 1e16, 2.5e-300, 99.99, 0.01, 1_000_000]
        let dates: [Date?] = [nil, Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_795_599_000.999),
                              Date(milliseconds: 1_795_599_000_001), Date(timeIntervalSince1970: 4_102_444_800), Date(timeIntervalSince1970: 951_782_400)]
        var alerts: [AlertJSON] = []
        for (index, value) in values.enumerated() {
            let date = dates[index % dates.count]
            alerts.append(AlertJSON(
                id: Int64(index) * 1_000_003, user: "u", symbol: "EUR/USD", condition: .init(Condition.above(value)), trigger: .every,
                cooldownSeconds: Int64(index), rearmMarginPercent: value / 1000, channels: ["fcm", "hook/b"], state: .firing,
                createdAt: date, lastFiredAt: date, expiresAt: date, note: nil, snoozedUntil: date, schedule: nil, trailingFrom: value))
            alerts.append(AlertJSON(
                symbol: "S", condition: .init(Condition.rise(percent: value.truncatingRemainder(dividingBy: 100) + 0.5, windowSeconds: 3600 + Int64(index)))))
            alerts.append(AlertJSON(symbol: "T", condition: .init(Condition.trailingFall(percent: 5)), trailingFrom: value))
        }
        #expect(written(alerts) == (try encoded(alerts)))
    }

    @Test func quotedIsTheSameLiteral() throws {
        for text in ["a\"b", "line\nbreak\u{0}", "ünï/cödé"] {
            #expect(JSONText.quoted(text) == String(decoding: try JSONOutput.encoder().encode(text), as: UTF8.self))
        }
    }

    /// Strings are copied in runs between the bytes that need escaping: runs at the start,
    /// middle and end, escapes side by side, and long runs of multi-byte text.
    @Test func runsBetweenEscapesAreCopiedWhole() throws {
        let pieces = ["plain text ", "\"", "\\", "\n", "\u{1}", "\u{1F}", "é€🙂", "/", String(repeating: "x", count: 300), ""]
        var random = SystemRandomNumberGenerator()
        var texts = ["\"start", "end\n", "mid\u{1}dle", "\\\\\\", "\n\n", String(repeating: "ü", count: 1000) + "\t"]
        for _ in 0..<500 {
            texts.append((0..<Int.random(in: 0...8, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined())
        }
        for text in texts {
            #expect(JSONText.quoted(text) == String(decoding: try JSONOutput.encoder().encode(text), as: UTF8.self), "text \(text.debugDescription)")
        }
    }

    @Test func integersAreTheSameArray() throws {
        for values: [Int64] in [[], [7], [1, -2, Int64.max, Int64.min, 0]] {
            #expect(JSONText.integers(values) == String(decoding: try JSONOutput.encoder().encode(values), as: UTF8.self))
        }
    }
}
