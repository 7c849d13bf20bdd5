import Foundation
import Testing
@testable import StockwatchCore
@testable import StockwatchModel

/// `alert import` reads records with `AlertJSONScan` and falls back to `JSONDecoder`: the
/// two must read the same records, and the scan must give up wherever it is not sure.
@Suite struct AlertJSONScanTests {
    private func decoded(_ data: Data) throws -> [AlertJSON] {
        try JSONOutput.decoder().decode([AlertJSON].self, from: data)
    }

    private var variedAlerts: [AlertJSON] {
        let texts = ["plain", "", "a\"b\\c/d\ne\u{1}f\tg", "é€🙂", "\u{2028}\u{2029}\u{7F}", "snow ☃ and 𝄞"]
        let dates: [Date?] = [nil, Date(timeIntervalSince1970: 0), Date(milliseconds: 1_795_599_000_001), Date(timeIntervalSince1970: 4_102_444_800)]
        let conditions: [AlertJSON.ConditionJSON] = [
            .init(Condition.above(150.5)), .init(Condition.below(0.1 + 0.2)), .init(kind: .rise, percent: 2.5, windowSeconds: 3_600),
            .init(kind: .newHigh, windowSeconds: 31_449_600), .init(kind: .crossesAbove, value: 1e-7), .init(kind: .fallSinceClose, percent: 1e16),
        ]
        return (0..<48).map { index in
            AlertJSON(
                id: index % 5 == 0 ? nil : Int64(index) * 1_000_003, user: index % 7 == 0 ? nil : texts[index % texts.count],
                symbol: index % 2 == 0 ? "EUR/USD" : "AAPL", condition: conditions[index % conditions.count],
                trigger: index % 4 == 0 ? nil : AlertTrigger.allCases[index % 3], cooldownSeconds: index % 3 == 0 ? nil : Int64(index * 60),
                rearmMarginPercent: index % 2 == 0 ? nil : 0.5, channels: index % 3 == 0 ? nil : (index % 3 == 1 ? [] : ["phone", texts[index % texts.count]]),
                state: index % 6 == 0 ? nil : AlertState.allCases[index % AlertState.allCases.count],
                createdAt: dates[index % dates.count], lastFiredAt: dates[(index + 1) % dates.count], expiresAt: dates[(index + 2) % dates.count],
                note: index % 2 == 0 ? nil : texts[index % texts.count], snoozedUntil: dates[(index + 3) % dates.count],
                schedule: index % 5 == 1 ? "mon-fri 09:30-16:00" : nil, trailingFrom: index % 4 == 1 ? 123_456_789.123 : nil)
        }
    }

    @Test func theListFormatReadsAsJSONDecoderReadsIt() throws {
        let data = try JSONOutput.encoder(pretty: true).encode(variedAlerts)
        #expect(AlertJSONScan.array(data) == (try decoded(data)))
        let compact = try JSONOutput.encoder().encode(variedAlerts)
        #expect(AlertJSONScan.array(compact) == (try decoded(compact)))
        #expect(AlertJSONScan.array(Data("[]".utf8)) == [])
        for alert in variedAlerts {
            let line = try JSONOutput.encoder().encode(alert)
            let scanned = try #require(AlertJSONScan.object(line))
            #expect(scanned == (try JSONOutput.decoder().decode(AlertJSON.self, from: line)))
        }
    }

    @Test func escapesAreDecodedAsJSONDecoderDoes() throws {
        let line = #"{"symbol":"A\u00e9\/\ud83d\ude00\n","condition":{"kind":"above","value":1e2},"note":"\"\\\b\f\r\t"}"#
        let scanned = try #require(AlertJSONScan.object(Data(line.utf8)))
        #expect(scanned == (try JSONOutput.decoder().decode(AlertJSON.self, from: Data(line.utf8))))
        #expect(scanned.symbol == "Aé/😀\n")
        #expect(scanned.condition.value == 100)
    }

    /// Where the scan gives up, import decodes with JSONDecoder: the same records, or the
    /// same error naming the record.
    @Test func anythingUncertainIsLeftToJSONDecoder() throws {
        let records = [
            #"{"symbol":"A","condition":{"kind":"above","value":1},"extra":{"nested":[1,2]}}"#,
            #"{"symbol":"A","condition":{"kind":"above","value":1},"cooldown_seconds":5.0}"#,
            #"{"symbol":"A","symbol":"B","condition":{"kind":"above","value":1}}"#,
            #"{"symbol":"A","condition":{"kind":"sideways","value":1}}"#,
            #"{"symbol":"A","condition":{"kind":"above","value":1},"expires_at":"tomorrow"}"#,
            #"{"symbol":"A","condition":{"kind":"above","value":"1"}}"#,
            #"{"symbol":"A\ud800","condition":{"kind":"above","value":1}}"#,
            #"{"symbol":"A","condition":{"kind":"above","value":1},"state":"armed",}"#,
            #"{"condition":{"kind":"above","value":1}}"#,
            #"{"symbol":"A","condition":{"kind":"above","value":01}}"#,
            #"{"symbol":"A","condition":{"kind":"above","value":.5}}"#,
            #"{"symbol":"A","condition":{"kind":"above","value":1.}}"#,
            #"{"symbol":"A","condition":{"kind":"above","value":1},"cooldown_seconds":+5}"#,
        ]
        // Invalid UTF-8 in a string.
        var invalid = Data(#"{"symbol":"A"#.utf8)
        invalid.append(0xFF)
        invalid.append(contentsOf: Data(#"","condition":{"kind":"above","value":1}}"#.utf8))
        #expect(AlertJSONScan.object(invalid) == nil)
        var invalidEscaped = Data(#"{"symbol":"A\n"#.utf8)
        invalidEscaped.append(0xFF)
        invalidEscaped.append(contentsOf: Data(#"é","condition":{"kind":"above","value":1}}"#.utf8))
        #expect(AlertJSONScan.object(invalidEscaped) == nil)
        for record in records {
            #expect(AlertJSONScan.object(Data(record.utf8)) == nil, "\(record)")
            #expect(AlertJSONScan.array(Data("[\(record)]".utf8)) == nil, "\(record)")
        }
        // Through import: the first is a valid record (the unknown key ignored), the
        // fourth an error naming record 2.
        let imported = try AlertService.decodeImport(Data("[\(records[0])]".utf8), source: "f")
        #expect(imported.map(\.1.symbol) == ["A"])
        do {
            _ = try AlertService.decodeImport(Data("[\(records[0]),\(records[3])]".utf8), source: "f")
            Issue.record("accepted an unknown kind")
        } catch {
            #expect(error.message.contains("record 2"))
        }
    }
}
