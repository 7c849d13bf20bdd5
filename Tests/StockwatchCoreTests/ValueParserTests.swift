import Foundation
import Testing
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchServer

@Suite struct ValueParserTests {
    /// Issue 14, item 5: the API's times are exactly openapi.yaml's pattern.
    @Test func apiTimesAreExactlyTheDocumentedForms() {
        #expect(ValueParser.apiTime("2026-11-25T09:30:00Z") == Date(timeIntervalSince1970: 1_795_599_000))
        #expect(ValueParser.apiTime("2026-11-25T09:30:00.250Z") == Date(timeIntervalSince1970: 1_795_599_000.25))
        #expect(ValueParser.apiTime("2026-11-25") == Date(timeIntervalSince1970: 1_795_564_800))
        #expect(ValueParser.apiTime("2028-02-29") != nil)
        for refused in ["2026-11-25T09:30:00+02:00", "2026-11-25t09:30:00z", "2026-11-25T09:30:00", "2026-11-25T09:30Z",
                        "2026-11-25T09:30:00.Z", "2026-11-25T09:30:00.1234567890Z", "2027-02-29", "2026-04-31", "2026-13-01",
                        "2026-11-25T24:00:00Z", "0999-01-01", "２026-11-25", "2026-11-25 ", "__main__"] {
            #expect(ValueParser.apiTime(refused) == nil, "\(refused)")
        }
    }


    /// Quote files and `--since`/`--expires` take RFC 3339 times with an offset, fractions,
    /// or a bare day; the clock fields are range-checked (the format style alone rolls
    /// 25:00 over into the next day).
    @Test func quoteAndOptionTimes() {
        #expect(ValueParser.date("2026-11-25T09:30:00Z") == Date(timeIntervalSince1970: 1_795_599_000))
        #expect(ValueParser.date("2026-11-25T10:30:00+01:00") == Date(timeIntervalSince1970: 1_795_599_000))
        #expect(ValueParser.date("2026-11-25T09:30:00.250Z")?.milliseconds == 1_795_599_000_250)
        #expect(ValueParser.date("2026-11-25T09:30:00.123456789Z")?.milliseconds == 1_795_599_000_123)
        #expect(ValueParser.date("2026-11-25") == Date(timeIntervalSince1970: 1_795_564_800))
        for refused in ["2026-11-25T25:00:00Z", "2026-11-25T09:60:00Z", "2026-11-25T09:30:60Z", "2026-11-25T09:30:00",
                        "2026-11-25 09:30:00Z", "2026-11-25T09:30Z", "2026-13-01", "2026-11-2", "1795599000", ""] {
            #expect(ValueParser.date(refused) == nil, "\(refused)")
        }
    }
    /// Before, 'ß' upper-cased to the ticker 'SS' and was accepted.
    @Test(arguments: ["ß", "ﬀ", "é", "AAPL\u{0301}"])
    func symbolsAreASCIIBeforeUpperCasing(text: String) {
        #expect(throws: StockwatchError.self) { try Symbol.parse(text) }
    }

    @Test(arguments: [("90s", 90), ("15m", 900), ("4h", 14_400), ("2d", 172_800), ("1w", 604_800), ("1h30m", 5_400), ("1d12h", 129_600)])
    func durations(text: String, seconds: Int64) throws {
        #expect(try ValueParser.duration(text, option: "--within") == seconds)
        #expect(try ValueParser.duration(ValueParser.format(seconds: seconds), option: "x") == seconds)
    }

    /// A message's durations and changes: the forms `String(format:)` and the dictionary
    /// of units gave before they were written without them.
    @Test func messageDurationsAndChanges() {
        #expect([90, 900, 3_600, 5_400, 129_600, 694_861].map(ValueParser.format(seconds:)) == ["1m30s", "15m", "1h", "1h30m", "1d12h", "1w1d1h1m1s"])
        for change in [0, 0.04, 0.05, 0.15, 0.25, 0.35, 1, 1.25, 12.345, 99.95, 100, 123_456.75] {
            #expect(change.formattedOneDecimal == String(format: "%.1f", change))
        }
        #expect(0.25.formattedOneDecimal == "0.2" && 1.0.formattedOneDecimal == "1.0")
    }

    /// A change rounded to tenths without printf is printf's `%.1f`, ties included: the
    /// exact ties of the binary values (odd quarters), the decimal ties that are not
    /// exact (0.35 is a little below, 0.45 a little above), their neighbours by one ulp,
    /// tiny and large values, random ones; and what it does not round, printf does.
    @Test func changesRoundToTenthsAsPrintfDoes() {
        var values: [Double] = [0, .leastNonzeroMagnitude, 1e-300, 0.05, 0.95, 9.95, 99.95, 1e13 + 0.25, 9.99999e13, 12_345_678.95]
        for k in 0..<20_000 {
            let quarter = Double(2 * k + 1) / 4, decimal = Double(2 * k + 1) / 20
            values += [quarter, quarter.nextUp, quarter.nextDown, decimal, decimal.nextUp, decimal.nextDown]
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100_000 {
            values.append(Double.random(in: 0..<1_000, using: &generator))
            values.append(Double.random(in: 0..<1, using: &generator) * pow(10, Double(Int.random(in: -8...13, using: &generator))))
        }
        var mismatches: [Double] = []
        for value in values where value.formattedOneDecimal != String(format: "%.1f", value) { mismatches.append(value) }
        #expect(mismatches.isEmpty, "first: \(mismatches.prefix(5))")
        #expect(values.allSatisfy { $0.tenthsRoundedAsPrintf != nil })
        for other in [-0.0, -0.25, -1.35, 1e14, 3e20, .infinity, .nan] {
            #expect(other.tenthsRoundedAsPrintf == nil)
            #expect(other.formattedOneDecimal == String(format: "%.1f", other))
        }
    }

    @Test(arguments: ["", "0s", "10", "h", "1x", "-5m", "1.5h", "5 m", "１h", "99999999999w"])
    func badDurations(text: String) {
        let error = expectError { _ = try ValueParser.duration(text, option: "--within") }
        #expect(error?.exitStatus == .usage)
        #expect(error?.message.contains("--within") == true)
    }

    @Test func zeroCooldownIsAllowed() throws {
        #expect(try ValueParser.duration("0s", option: "--cooldown", allowZero: true) == 0)
    }

    @Test(arguments: [("200", 200.0), ("1.0850", 1.085), (".5", 0.5), ("007", 7.0)])
    func prices(text: String, value: Double) throws {
        #expect(try ValueParser.price(text, option: "--above") == value)
    }

    @Test(arguments: ["0", "-1", "nan", "NaN", "inf", "1e5", "0x10", "1.2.3", "", "abc", "1,5", "99999999999999999", "٣"])
    func badPrices(text: String) {
        #expect(expectError { _ = try ValueParser.price(text, option: "--above") }?.exitStatus == .usage)
    }

    @Test(arguments: [("5", 5.0), ("5%", 5.0), ("0.5%", 0.5), ("1000", 1000.0)])
    func percents(text: String, value: Double) throws {
        #expect(try ValueParser.percent(text, option: "--rise") == value)
    }

    @Test(arguments: ["0", "0%", "%", "5%%", "-5", "1001", "nan%"])
    func badPercents(text: String) {
        #expect(expectError { _ = try ValueParser.percent(text, option: "--rise") }?.exitStatus == .usage)
    }

    @Test func expiryAcceptsDatesAndDurations() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(try ValueParser.expiry("30d", option: "--expires", now: now) == now.addingTimeInterval(30 * 86_400))
        #expect(try ValueParser.expiry("2030-01-01", option: "--expires", now: now) == Date(timeIntervalSince1970: 1_893_456_000))
        #expect(try ValueParser.expiry("2030-01-01T01:00:00+01:00", option: "--expires", now: now) == Date(timeIntervalSince1970: 1_893_456_000))
        #expect(expectError { _ = try ValueParser.expiry("2020-01-01", option: "--expires", now: now) }?.message.contains("past") == true)
        #expect(expectError { _ = try ValueParser.expiry("tomorrow", option: "--expires", now: now) } != nil)
    }
}

@Suite struct SymbolTests {
    @Test(arguments: [("aapl", "AAPL"), ("BRK.B", "BRK.B"), ("vod.l", "VOD.L"), ("eur/usd", "EUR/USD"), ("XAU/USD", "XAU/USD")])
    func valid(input: String, canonical: String) throws {
        #expect(try Symbol.parse(input).text == canonical)
    }

    @Test(arguments: ["", "A B", "AAPL!", ".AAPL", "AAPL.", "EUR/EUR", "EUR/XXY", "EURUSD/", "EUR/US", "ÄPPL", "TOOLONGTICKER1", "EUR/USD/GBP", "'; DROP TABLE alerts;--"])
    func invalid(input: String) {
        let error = expectError { _ = try Symbol.parse(input) }
        #expect(error?.exitStatus == .usage)
    }
}
