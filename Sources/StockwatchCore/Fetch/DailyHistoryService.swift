import Foundation
import StockwatchModel
import StockwatchStore

/// What `fetch --history` did, for `--json`, `-v` and the exit code.
public struct DailyHistoryReport: Encodable, Sendable {
    public struct Entry: Encodable, Sendable, Equatable {
        public var symbol: String
        /// Rows new or changed by this run.
        public var stored: Int
        /// The symbol's history after the run (nil: none).
        public var oldest: String?
        public var newest: String?
        public var days: Int

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(symbol, forKey: .symbol)
            try c.encode(stored, forKey: .stored)
            try c.encode(oldest, forKey: .oldest)
            try c.encode(newest, forKey: .newest)
            try c.encode(days, forKey: .days)
        }
        enum CodingKeys: String, CodingKey { case symbol, stored, oldest, newest, days }
    }

    public var symbols: [Entry] = []
    public var skipped: [FetchReport.Skipped] = []
    public var errors: [FetchReport.Failure] = []

    /// 0 when every symbol was served or skipped by the budget, 75 when some failed, 69
    /// when none was served.
    public var exitStatus: ExitStatus {
        if errors.isEmpty { return .success }
        return symbols.contains { $0.stored > 0 || $0.days > 0 } && errors.count < symbols.count + skipped.count ? .temporary : .unavailable
    }

    enum CodingKeys: String, CodingKey { case symbols, skipped, errors }
}

/// Daily history: Stooq's daily download (`fetch --history`), a file in the same CSV
/// (`--from`), the symbols that need it, and its retention.
public struct DailyHistoryService: Sendable {
    let database: any DataStore
    let config: Config

    public init(database: any DataStore, config: Config) {
        self.database = database
        self.config = config
    }

    /// How many days `fetch --history` keeps by default, and the least retention: a 52-week
    /// window with room for the days before it.
    public static let defaultDays = 400

    /// The first day the retention keeps (`MarketDay.keepFrom`), by the windows of active
    /// alerts: what a download keeps by default.
    func retentionStart(now: Date) throws(StockwatchError) -> String {
        MarketDay.keepFrom(now: now, days: Self.defaultDays, longestWindowSeconds: try database.symbolsNeedingHistory().values.max() ?? 0)
    }

    /// Downloads the daily history of each symbol from Stooq, one request per symbol, within
    /// Stooq's budget (`max_requests_per_run`, back-off; `min_interval` paces the quote
    /// requests, not these), keeping the last `days` days (default: the retention). No
    /// symbols: those of active alerts that need history and have none downloaded, in a
    /// random order, so that a symbol Stooq does not know cannot hold the others back.
    /// `maxRequests`: fewer requests than Stooq's `max_requests_per_run` (tick's share).
    public func backfill(symbols explicit: [String], days: Int? = nil, maxRequests: Int? = nil, now: Date = Date()) async throws(StockwatchError) -> DailyHistoryReport {
        if let days, !(1...3_660).contains(days) { throw .invalidValue(option: "--days", value: "\(days)", reason: "between 1 and 3660") }
        var symbols: [String] = []
        for text in explicit { symbols.append(try Symbol.parse(text).text) }
        if explicit.isEmpty {
            // Not those that every provider had no quote for: Stooq would have no history.
            let backingOff = try database.symbolsBackingOff(now: now)
            symbols = try symbolsWithoutHistory().filter { backingOff[$0] == nil }.shuffled()
        }
        var report = DailyHistoryReport()
        guard !symbols.isEmpty else { return report }
        let stooq = config.providers[ProviderName.stooq.rawValue] ?? ProviderConfig(name: .stooq)
        guard let claim = try database.claimProvider(ProviderName.stooq.rawValue) else {
            report.skipped = symbols.map { .init(symbol: $0, provider: "stooq", reason: "another fetch is asking stooq right now") }
            return report
        }
        defer { claim.release() }
        var state = try database.providerStates().first { $0.provider == ProviderName.stooq.rawValue } ?? ProviderStateRecord(provider: ProviderName.stooq.rawValue)
        var paced = stooq
        paced.minIntervalSeconds = 0
        if let refusal = state.refusal(config: paced, now: now) {
            report.skipped = symbols.map { .init(symbol: $0, provider: "stooq", reason: refusal) }
            return report
        }
        let budget = min(stooq.maxRequestsPerRun, maxRequests ?? .max)
        report.skipped = symbols.dropFirst(budget).map {
            .init(symbol: $0, provider: "stooq", reason: "request budget of this run used (max_requests_per_run)")
        }
        // Never drop a day this download asked for, even past the retention.
        let retention = try retentionStart(now: now)
        let first = days.map { MarketDay.adding(-$0, to: MarketDay(zone: .gmt).day(of: now))! } ?? retention
        let http = HTTPTransport(connectTimeoutSeconds: stooq.connectTimeoutSeconds)
        var rows: [DailyPrice] = []
        var answered: [String] = []
        var asked = symbols.prefix(budget)
        while let symbol = asked.popFirst() {
            do throws(ProviderFailure) {
                let csv = try await StooqProvider(config: stooq).daily(symbol, http: http)
                let parsed: [DailyPrice]
                do {
                    parsed = try Self.parse(csv, symbol: symbol, source: .stooq, origin: "stooq answer for \(symbol)")
                } catch {
                    throw ProviderFailure(.unavailable, "stooq: malformed daily history for \(symbol): \(error.message)")
                }
                answered.append(symbol)
                if parsed.isEmpty {
                    report.errors.append(.init(provider: "stooq", symbol: symbol, code: "no_data", message: "stooq has no daily history for \(symbol)"))
                }
                rows += parsed.filter { $0.day >= first }
            } catch {
                report.errors.append(.init(provider: "stooq", symbol: symbol, code: error.kind.rawValue, message: error.message))
                state.recordFailure(error, config: stooq, now: now)
                report.skipped = asked.map { .init(symbol: $0, provider: "stooq", reason: "not asked after stooq failed") } + report.skipped
                break
            }
        }
        await http.shutdown()
        if !answered.isEmpty && state.blockedUntil.map({ $0 <= now }) ?? true { state.recordSuccess(now: now) }
        let stored = try database.saveDailyPrices(rows, providerStates: [state], keepFrom: min(first, retention))
        report.symbols = try entries(answered, stored: stored)
        return report
    }

    /// `fetch --history SYMBOL --from FILE`: the same CSV as Stooq's, all rows or none.
    public func ingest(symbol text: String, _ data: Data, source: String, now: Date = Date()) throws(StockwatchError) -> DailyHistoryReport {
        let symbol = try Symbol.parse(text).text
        guard let csv = String(data: data, encoding: .utf8) else { throw .invalidInput(source: source, position: nil, reason: "not UTF-8 text") }
        let rows = try Self.parse(csv, symbol: symbol, source: .file, origin: source)
        if rows.isEmpty { throw .invalidInput(source: source, position: nil, reason: "no daily rows (expected the CSV header Date,Open,High,Low,Close,Volume and rows)") }
        let stored = try database.saveDailyPrices(rows, providerStates: [], keepFrom: min(rows.map(\.day).min()!, try retentionStart(now: now)))
        var report = DailyHistoryReport()
        report.symbols = try entries([symbol], stored: stored)
        return report
    }

    func entries(_ symbols: [String], stored: [String: Int]) throws(StockwatchError) -> [DailyHistoryReport.Entry] {
        let coverage = try database.dailyCoverage(symbols: symbols)
        return symbols.map { symbol in
            .init(symbol: symbol, stored: stored[symbol] ?? 0, oldest: coverage[symbol]?.oldest, newest: coverage[symbol]?.newest, days: coverage[symbol]?.days ?? 0)
        }
    }

    /// Symbols of active alerts that need daily history and have none downloaded (rows
    /// derived from quotes alone are no history for a window): what tick backfills.
    public func symbolsWithoutHistory() throws(StockwatchError) -> [String] {
        let needing = try database.symbolsNeedingHistory()
        let coverage = try database.dailyCoverage(symbols: needing.keys.sorted())
        return needing.keys.filter { !(coverage[$0]?.downloaded ?? false) }.sorted()
    }

    /// Stooq's daily CSV (`Date,Open,High,Low,Close,Volume`, oldest first; columns found
    /// by name, Volume optional). A row whose close is `N/D` or empty is a day without
    /// data and skipped; an unknown symbol's answer ("No data") has no rows.
    static func parse(_ csv: String, symbol: String, source: DailyPrice.Source, origin: String) throws(StockwatchError) -> [DailyPrice] {
        let lines = csv.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard let header = lines.first else { return [] }
        let names = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard let dateColumn = names.firstIndex(of: "date"), let closeColumn = names.firstIndex(of: "close") else {
            // "No data" / "Brak danych": Stooq's answer for a symbol it does not know.
            if lines.count == 1, !header.contains(",") { return [] }
            throw .invalidInput(source: origin, position: "line 1", reason: "expected the header Date,Open,High,Low,Close,Volume")
        }
        func column(_ name: String) -> Int? { names.firstIndex(of: name) }
        var rows: [DailyPrice] = []
        var seen = Set<String>()
        for (offset, line) in lines.dropFirst().enumerated() {
            let position = "line \(offset + 2)"
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == names.count else { throw .invalidInput(source: origin, position: position, reason: "expected \(names.count) fields, found \(fields.count)") }
            let day = fields[dateColumn]
            guard MarketDay.parts(day) != nil else { throw .invalidInput(source: origin, position: position, reason: "not a date (YYYY-MM-DD): \(day)") }
            guard seen.insert(day).inserted else { throw .invalidInput(source: origin, position: position, reason: "\(day) appears twice") }
            func number(_ index: Int?, _ name: String, positive: Bool = true) throws(StockwatchError) -> Double? {
                guard let index, !["", "N/D", "-"].contains(fields[index]) else { return nil }
                guard let value = Double(fields[index]), value.isFinite, positive ? value > 0 : value >= 0, value < ValueParser.maximumPrice else {
                    throw .invalidInput(source: origin, position: position, reason: "\(name) is not a \(positive ? "positive " : "")number: \(fields[index])")
                }
                return value
            }
            guard let close = try number(closeColumn, "close") else { continue }
            let row = DailyPrice(
                symbol: symbol, day: day, open: try number(column("open"), "open"), high: try number(column("high"), "high"),
                low: try number(column("low"), "low"), close: close, volume: try number(column("volume"), "volume", positive: false), source: source)
            if let high = row.high, let low = row.low, low > high {
                throw .invalidInput(source: origin, position: position, reason: "low \(low.formattedPrice) is above high \(high.formattedPrice)")
            }
            rows.append(row)
        }
        return rows
    }
}
