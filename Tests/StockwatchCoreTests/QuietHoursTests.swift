import Foundation
import Testing
@testable import StockwatchModel

/// Quiet hours on the user's wall clock: over midnight, and across both daylight-saving
/// changes of Europe/Warsaw in 2026 (29 March 02:00 CET -> 03:00 CEST; 25 October
/// 03:00 CEST -> 02:00 CET).
@Suite struct QuietHoursTests {
    func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
    let warsaw = TimeZone(identifier: "Europe/Warsaw")!

    @Test(arguments: [
        ("2026-12-01T21:59:00Z", false), ("2026-12-01T22:00:00Z", true), ("2026-12-02T00:00:00Z", true),
        ("2026-12-02T06:59:00Z", true), ("2026-12-02T07:00:00Z", false), ("2026-12-02T12:00:00Z", false),
    ])
    func overMidnight(_ at: String, _ quiet: Bool) throws {
        let hours = try QuietHours.parse("22:00-07:00", option: "--quiet")
        #expect(hours.contains(utc(at), in: TimeZone(identifier: "UTC")!) == quiet)
    }

    /// The hour that does not exist: 02:30-03:30 local is 03:00-03:30 that night.
    @Test(arguments: [
        ("2026-03-29T00:59:59Z", false),  // 01:59:59 CET
        ("2026-03-29T01:00:00Z", true),   // 03:00 CEST, the clock jumped over 02:30
        ("2026-03-29T01:29:00Z", true),   // 03:29 CEST
        ("2026-03-29T01:30:00Z", false),  // 03:30 CEST
    ])
    func theHourThatDoesNotExist(_ at: String, _ quiet: Bool) throws {
        #expect(try QuietHours.parse("02:30-03:30", option: "--quiet").contains(utc(at), in: warsaw) == quiet)
    }

    /// The hour that happens twice: 02:00-03:00 local is quiet both times, two real hours.
    @Test(arguments: [
        ("2026-10-24T23:59:00Z", false),  // 01:59 CEST
        ("2026-10-25T00:00:00Z", true),   // 02:00 CEST, the first time
        ("2026-10-25T00:59:00Z", true),   // 02:59 CEST
        ("2026-10-25T01:00:00Z", true),   // 02:00 CET, the second time
        ("2026-10-25T01:59:00Z", true),   // 02:59 CET
        ("2026-10-25T02:00:00Z", false),  // 03:00 CET
    ])
    func theHourThatHappensTwice(_ at: String, _ quiet: Bool) throws {
        #expect(try QuietHours.parse("02:00-03:00", option: "--quiet").contains(utc(at), in: warsaw) == quiet)
    }

    /// When a period ends, on the wall clock: over midnight, and on the night the clock
    /// skips the end (02:30 does not exist on 29 March: the first time after is 03:00).
    @Test func theEndIsTheNextTimeTheClockShowsIt() throws {
        let night = try QuietHours.parse("22:00-07:00", option: "q")
        #expect(night.end(after: utc("2026-12-01T23:00:00Z"), in: TimeZone(identifier: "UTC")!) == utc("2026-12-02T07:00:00Z"))
        #expect(night.end(after: utc("2026-12-02T06:59:00Z"), in: TimeZone(identifier: "UTC")!) == utc("2026-12-02T07:00:00Z"))
        #expect(night.end(after: utc("2026-12-01T23:00:00Z"), in: warsaw) == utc("2026-12-02T06:00:00Z"))  // 07:00 CET
        let skipped = try QuietHours.parse("01:00-02:30", option: "q")
        #expect(skipped.end(after: utc("2026-03-29T00:30:00Z"), in: warsaw) == utc("2026-03-29T01:00:00Z"))  // 03:00 CEST
        let twice = try QuietHours.parse("01:00-02:30", option: "q")
        #expect(twice.end(after: utc("2026-10-24T23:30:00Z"), in: warsaw) == utc("2026-10-25T00:30:00Z"))  // the first 02:30
    }

    @Test(arguments: ["25:00-07:00", "22:00-07:60", "7:00-08:00", "22:00", "22:00-07:00-08:00", "22:00-22:00", "", "22.00-07.00", "２２:00-07:00"])
    func badQuietHoursAreRefusedNamingThem(_ text: String) {
        #expect(throws: StockwatchError.self) { try QuietHours.parse(text, option: "--quiet") }
        do { _ = try QuietHours.parse(text, option: "--quiet") } catch {
            #expect("\(error)".contains("--quiet"))
        }
    }

    @Test func timeZonesAreIANANamesExactly() throws {
        #expect(try UserTimeZone.parse("Europe/Warsaw", option: "--timezone").identifier == "Europe/Warsaw")
        #expect(try UserTimeZone.parse("UTC", option: "--timezone").secondsFromGMT() == 0)
        #expect(throws: StockwatchError.invalidValue(option: "--timezone", value: "europe/warsaw", reason: "not a time zone; did you mean Europe/Warsaw?")) {
            try UserTimeZone.parse("europe/warsaw", option: "--timezone")
        }
        for bad in ["Mars/Olympus_Mons", "CEST", "+02:00", "", String(repeating: "A/", count: 50)] {
            #expect(throws: StockwatchError.self, "\(bad)") { try UserTimeZone.parse(bad, option: "--timezone") }
        }
        #expect(try QuietHours.parse("22:00-07:00", option: "q").description == "22:00-07:00")
    }

    /// Weekly schedules: day ranges (wrapping), lists, hours within a day, on the user's clock.
    @Test func schedulesParseAndReadTheUsersClock() throws {
        let market = try WeeklySchedule.parse("Mon-Fri 09:30-16:00", option: "--active")
        #expect(market.description == "mon-fri 09:30-16:00" && market.days == [2, 3, 4, 5, 6])
        #expect(try WeeklySchedule.parse("fri-mon 10:00-11:00", option: "s").days == [6, 7, 1, 2])
        #expect(try WeeklySchedule.parse("sat,sun 10:00-14:00", option: "s").days == [7, 1])
        // Monday 2026-03-30 09:30 in Warsaw is 07:30 UTC (CEST, the day after the change).
        #expect(market.contains(utc("2026-03-30T07:30:00Z"), in: warsaw))
        #expect(!market.contains(utc("2026-03-30T07:29:00Z"), in: warsaw))
        #expect(!market.contains(utc("2026-03-30T14:00:00Z"), in: warsaw))  // 16:00 local
        #expect(!market.contains(utc("2026-03-28T10:00:00Z"), in: warsaw))  // a Saturday
        for bad in ["", "mon-fri", "mon-fri 16:00-09:30", "xyz 10:00-11:00", "mon-fri 25:00-26:00", "mon-fri 10:00-10:00", "mon- 10:00-11:00", "mon-fri 10:00-11:00 extra"] {
            #expect(throws: StockwatchError.self, "\(bad)") { try WeeklySchedule.parse(bad, option: "--active") }
        }
    }
}
