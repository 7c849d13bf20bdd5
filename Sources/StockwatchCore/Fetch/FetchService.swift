import Foundation
import StockwatchModel
import StockwatchStore

/// `stockwatch fetch`: asks each symbol of the first provider whose budget allows, fails
/// over along the route, validates, and stores quotes with the providers' new budgets in
/// one transaction.
public struct FetchService: Sendable {
    let database: any QuoteStore & ProviderBudgetStore
    let config: Config
    let environment: [String: String]

    public init(database: any QuoteStore & ProviderBudgetStore, config: Config, environment: [String: String]) {
        self.database = database
        self.config = config
        self.environment = environment
    }

    public func run(symbols explicit: [String] = [], now: Date = Date()) async throws(StockwatchError) -> FetchReport {
        var named: [Symbol] = []
        for text in explicit { named.append(try Symbol.parse(text)) }
        var report = FetchReport()
        var symbols = named
        if explicit.isEmpty {
            let backedOff = try symbolsBackingOff(now: now)
            let watched = try watchedSymbols()
            symbols = watched.filter { backedOff[$0.text] == nil }
            for symbol in watched {
                guard let until = backedOff[symbol.text] else { continue }
                report.skipped.append(.init(symbol: symbol.text, provider: nil, reason: "no provider had data for it; next try after \(ISO8601DateFormatter().string(from: until))"))
            }
        }
        guard !symbols.isEmpty else { return report }

        // The providers this run claims, with their states as it leaves them; the claims
        // end once the new states are stored (a run that comes after reads them).
        var states: [String: ProviderStateRecord] = [:]
        var claims: [any RunLease] = []
        defer { for claim in claims { claim.release() } }
        let connectTimeout = config.providers.values.map(\.connectTimeoutSeconds).max() ?? 5
        let http = HTTPTransport(connectTimeoutSeconds: connectTimeout)
        var accepted: [(FetchedQuote, ProviderName)] = []
        for kind in [Symbol.Kind.currencyPair, .stock] {
            let group = symbols.filter { $0.kind == kind }
            guard !group.isEmpty else { continue }
            do {
                try await fetch(group, kind: kind, claims: &claims, states: &states, accepted: &accepted, report: &report, http: http, now: now)
            } catch {
                await http.shutdown()
                throw error
            }
        }
        await http.shutdown()

        let served = report.servedSymbols, inconclusive = report.inconclusive
        let noData = Dictionary(
            report.errors.filter { $0.code == "no_data" }.compactMap { e in e.symbol.map { ($0, e.message) } }, uniquingKeysWith: { a, _ in a }
        ).filter { !served.contains($0.key) && !inconclusive.contains($0.key) }
        var run = FetchWrite(
            providerStates: Array(states.values),
            quotes: accepted.map { quote, provider in QuoteJSON(symbol: quote.symbol, price: quote.price, provider: provider.rawValue, observedAt: quote.observedAt) },
            served: served, noData: noData, noDataBackoffSeconds: { Self.noDataBackoffSeconds(afterAnswers: $0) }, retentionSeconds: config.quoteRetentionSeconds, now: now)
        // A previous close belongs to the market day of the quote it came with.
        run.previousCloses = accepted.compactMap { quote, _ in
            quote.previousClose.map { PreviousClose(symbol: quote.symbol, day: MarketDay(symbol: quote.symbol).day(of: quote.observedAt), close: $0) }
        }
        run.dailyRetentionDays = DailyHistoryService.defaultDays
        let stored = try database.recordFetch(run)
        report.quotes = stored
        return report
    }

    /// `fetch --from`: stores every quote of the input, or none.
    public func ingest(_ data: Data, source: String, now: Date = Date()) throws(StockwatchError) -> FetchReport {
        let quotes = try QuoteFile.parse(data, source: source, validator: QuoteValidator(now: now, maxAgeSeconds: config.maxAgeSeconds))
        var report = FetchReport()
        report.quotes = try database.addQuotes(
            quotes.map { QuoteJSON(symbol: $0.symbol, price: $0.price, provider: "file", observedAt: $0.observedAt) }, fetchedAt: now)
        return report
    }

    /// Symbols of active alerts (armed or firing) and `[fetch] watch`, in turns across
    /// users (every user's stalest symbol, then every user's next one, ...; the watch list
    /// takes its turns like a user), so that no user's many symbols crowd out another's
    /// from a per-run request budget, and within a turn stalest first, so that the budget
    /// rotates through all of them.
    func watchedSymbols() throws(StockwatchError) -> [Symbol] {
        var result: [Symbol] = []
        for text in try database.watchedSymbols(watchList: config.watch.map { $0.uppercased() }) { result.append(try Symbol.parse(text)) }
        return result
    }

    /// Symbols waiting out a no-data back-off, with the time of their next try.
    func symbolsBackingOff(now: Date) throws(StockwatchError) -> [String: Date] {
        try database.symbolsBackingOff(now: now)
    }

    /// The first no-data answer of a symbol waits 5 minutes, each next one twice as long,
    /// at most a day; a quote from any provider ends the back-off.
    static func noDataBackoffSeconds(afterAnswers count: Int) -> Int64 {
        min(300 << Int64(min(count - 1, 20)), 86_400)
    }

    private func fetch(
        _ symbols: [Symbol], kind: Symbol.Kind, claims: inout [any RunLease], states: inout [String: ProviderStateRecord],
        accepted: inout [(FetchedQuote, ProviderName)], report: inout FetchReport, http: HTTPTransport, now: Date
    ) async throws(StockwatchError) {
        let route = config.route(for: kind)
        let kindName = kind == .currencyPair ? "currency pairs" : "stocks"
        guard !route.isEmpty else {
            let hint = kind == .currencyPair ? "[providers.fixer] or [providers.currencylayer]" : "[providers.finnhub] or [providers.stooq]"
            report.errors.append(.init(provider: nil, symbol: nil, code: "config", message: "no provider configured for \(kindName): add \(hint) to the config"))
            report.failedSymbols.formUnion(symbols.map(\.text))
            return
        }
        let validator = QuoteValidator(now: now, maxAgeSeconds: config.maxAgeSeconds)
        var remaining = symbols
        var skippedBy: [String: FetchReport.Skipped] = [:]
        var failed = Set<String>()
        for name in route where !remaining.isEmpty {
            let providerConfig = config.providers[name.rawValue] ?? ProviderConfig(name: name)
            // A config problem is reported on every run, even while the provider backs off.
            var key: String?
            if name.needsKey {
                do throws(StockwatchError) {
                    guard let source = providerConfig.apiKey else {
                        throw .config(file: config.file ?? "config", line: nil, key: "providers.\(name.rawValue).api_key_file", reason: "\(name.rawValue) needs an API key (or \(name.keyEnvironmentVariable))")
                    }
                    key = try SecretReader.read(source, environment: environment)
                } catch {
                    report.errors.append(.init(provider: name.rawValue, symbol: nil, code: "config", message: error.message))
                    failed.formUnion(remaining.map(\.text))
                    report.inconclusive.formUnion(remaining.map(\.text))
                    continue
                }
            }
            // The provider is this run's until it has stored what it got; its state is read
            // after the claim, so what a run that just asked it wrote is seen.
            guard let claim = try database.claimProvider(name.rawValue) else {
                // Another fetch is asking it now: what it would ask is that fetch's to store.
                report.inconclusive.formUnion(remaining.map(\.text))
                for symbol in remaining where skippedBy[symbol.text] == nil {
                    skippedBy[symbol.text] = .init(symbol: symbol.text, provider: name.rawValue, reason: "another fetch is asking \(name.rawValue) right now")
                }
                remaining = []
                continue
            }
            claims.append(claim)
            var state = try database.providerStates().first { $0.provider == name.rawValue } ?? ProviderStateRecord(provider: name.rawValue)
            states[name.rawValue] = state
            if let refusal = state.refusal(config: providerConfig, now: now) {
                report.inconclusive.formUnion(remaining.map(\.text))
                for symbol in remaining where skippedBy[symbol.text] == nil {
                    skippedBy[symbol.text] = .init(symbol: symbol.text, provider: name.rawValue, reason: refusal)
                }
                continue
            }
            let provider = ProviderFactory.make(providerConfig, key: key)
            let budget = name == .finnhub ? providerConfig.maxRequestsPerRun * provider.symbolsPerRequest : remaining.count
            var asked = Array(remaining.prefix(budget))
            report.inconclusive.formUnion(remaining.dropFirst(budget).map(\.text))
            for symbol in remaining.dropFirst(budget) where skippedBy[symbol.text] == nil {
                skippedBy[symbol.text] = .init(symbol: symbol.text, provider: name.rawValue, reason: "request budget of this run used (max_requests_per_run)")
            }
            var answeredAny = false
            var unresolved: [Symbol] = []
            while !asked.isEmpty {
                let chunk = Array(asked.prefix(provider.symbolsPerRequest))
                asked.removeFirst(chunk.count)
                var answer: ProviderAnswer
                do {
                    answer = try await provider.fetch(chunk, http: http)
                } catch {
                    answer = ProviderAnswer()
                    answer.failure = error
                    answer.unanswered = chunk.map(\.text)
                }
                answeredAny = answeredAny || !answer.quotes.isEmpty || !answer.noData.isEmpty
                for quote in answer.quotes {
                    if let refusal = validator.refusal(quote) {
                        report.errors.append(.init(provider: name.rawValue, symbol: quote.symbol, code: "invalid_quote", message: "\(name.rawValue): \(quote.symbol): \(refusal); not stored"))
                        report.inconclusive.insert(quote.symbol)
                        unresolved.append(try! Symbol.parse(quote.symbol))
                    } else {
                        accepted.append((quote, name))
                        report.servedSymbols.insert(quote.symbol)
                    }
                }
                for (symbol, reason) in answer.noData.sorted(by: { $0.key < $1.key }) {
                    report.errors.append(.init(provider: name.rawValue, symbol: symbol, code: answer.omitted.contains(symbol) ? "not_answered" : "no_data", message: reason))
                    unresolved.append(try! Symbol.parse(symbol))
                }
                report.inconclusive.formUnion(answer.omitted)
                if let failure = answer.failure {
                    report.errors.append(.init(provider: name.rawValue, symbol: nil, code: failure.kind.rawValue, message: failure.message))
                    state.recordFailure(failure, config: providerConfig, now: now)
                    let left = Set(answer.unanswered).union(asked.map(\.text))
                    report.inconclusive.formUnion(left)
                    unresolved.append(contentsOf: remaining.filter { left.contains($0.text) })
                    asked = []
                }
            }
            if answeredAny && state.blockedUntil.map({ $0 <= now }) ?? true { state.recordSuccess(now: now) }
            states[name.rawValue] = state
            let served = report.servedSymbols
            failed.formUnion(unresolved.map(\.text))
            // What this provider could not serve goes to the next one, budget skips included.
            remaining = remaining.filter { !served.contains($0.text) && (unresolved.contains($0) || skippedBy[$0.text]?.provider == name.rawValue) }
        }
        for symbol in symbols where !report.servedSymbols.contains(symbol.text) {
            if failed.contains(symbol.text) {
                report.failedSymbols.insert(symbol.text)
            } else if let skip = skippedBy[symbol.text] {
                report.skipped.append(skip)
            }
        }
    }
}
