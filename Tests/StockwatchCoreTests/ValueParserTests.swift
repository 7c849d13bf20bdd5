import Foundation
import Testing
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchServer

@Suite struct ValueParserTests {
    @Test(arguments: [("90s", 90), ("15m", 900), ("4h", 14_400), ("2d", 172_800), ("1w", 604_800), ("1h30m", 5_400), ("1d12h", 129_600)])
    func durations(text: String, seconds: Int64) throws {
        #expect(try ValueParser.duration(text, option: "--within") == seconds)
        #expect(try ValueParser.duration(ValueParser.format(seconds: seconds), option: "x") == seconds)
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
