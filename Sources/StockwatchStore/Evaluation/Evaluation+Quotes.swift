import Foundation

/// Each symbol's quotes in one evaluate run, the same on both backends: where they load
/// from, which are fresh, which a candidate judges, and the watermarks they move.
extension Evaluation {
    /// The quotes of one symbol from the oldest point any of its alerts needs, oldest first.
    struct SymbolQuotes {
        var prices: [Double] = []
        var times: [Int64] = []
        var watermark: Int64?
        /// The first quote after the watermark: where alerts that follow it start.
        var firstNew = 0
        /// The price of the last quote judged as current before this run, and after it
        /// (`derivesLevels`; nil: none known).
        var judged: Double?
        var judgedNow: Double?
        /// Where its quotes load from (`addProgress`, `addStart`).
        var from = Int64.max
        /// Its place among the symbols with a watermark in their table's key order, when
        /// the store read them in that order (`inKeyOrder`; nil: not known).
        var keyRank: Int?

        /// One more quote, newer than the others (both arrays in step).
        mutating func append(_ price: Double, at time: Int64) {
            // Room for a tick's few quotes at once: growing both arrays from empty, for
            // 50,000 symbols, was a seventh of loading the near tick's quotes.
            if prices.capacity == 0 {
                prices.reserveCapacity(4)
                times.reserveCapacity(4)
            }
            prices.append(price)
            times.append(time)
        }

        /// Its fresh quotes' indexes: after the watermark, not stale.
        func freshIndexes(staleBefore: Int64) -> LazyFilterSequence<Swift.Range<Int>> {
            (firstNew..<times.count).lazy.filter { times[$0] >= staleBefore }
        }

        /// The prices a crossing that follows the watermark may cross from: `judge` takes
        /// the quote before the first fresh one, then each quote after it but the last,
        /// as the previous price, too old to judge or not (empty: no previous price).
        func previousPrices() -> Range {
            var range = Range()
            for i in max(firstNew - 1, 0)..<max(times.count - 1, 0) { range.add(prices[i]) }
            return range
        }

        /// After its quotes are loaded: where the fresh ones begin, and the last price
        /// judged as current once this run has judged them.
        mutating func loaded(staleBefore: Int64) {
            let after = watermark ?? (staleBefore - 1)
            firstNew = times.firstIndex { $0 > after } ?? times.count
            // Quotes are in time order: if the newest is too old to judge, so are the rest.
            judgedNow = judged
            if firstNew < times.count, let newest = times.last, newest >= staleBefore {
                judgedNow = prices.last
            }
        }
    }

    /// A symbol with a watermark: its quotes load from there (followers need the quote at
    /// the watermark as their previous price), unless its new alerts start earlier.
    mutating func addProgress(_ symbol: String, watermark: Int64, judged: Double?, keyRank: Int? = nil) {
        symbols[symbol] = SymbolQuotes(watermark: watermark, judged: judged, from: watermark, keyRank: keyRank)
    }

    /// The earliest start of a symbol's new and resumed alerts (a `start_at` of 0, no
    /// quote when the alert was added, counting as `staleBefore`, the first fresh quote):
    /// its quotes load from there if that is older than its watermark.
    mutating func addStart(_ symbol: String, _ start: Int64) {
        symbols[symbol, default: SymbolQuotes()].from = min(symbols[symbol]?.from ?? start, start)
    }

    /// Where one scan of the quotes by time loads the symbols that start there or later
    /// (SQLite's `loadQuotes`); a symbol starting earlier (one not quoted for a while, or
    /// new alerts judging older quotes) is loaded by a seek of its own. A statement per
    /// symbol was a tenth of an evaluate of 50,000 symbols. The scan reads in vain the
    /// quotes between its start and a symbol's own, so it starts where nine symbols in ten
    /// start or later: every tick's symbols mostly start at the last tick's quotes, and
    /// the scan then reads each symbol's quote there and its new ones. Never more than
    /// `sharedQuoteMargin` before the latest start: symbols whose quotes come minutes
    /// apart do not make it read minutes of everyone's quotes. Nil: no symbol to load.
    func sharedQuoteStart() -> Int64? {
        let starts = symbols.values.map(\.from).sorted()
        guard let latest = starts.last else { return nil }
        return max(starts[starts.count / 10], latest - Self.sharedQuoteMargin)
    }

    static let sharedQuoteMargin: Int64 = 5 * 60 * 1000

    /// After the quotes are loaded: where each symbol's fresh quotes begin. In place, by
    /// position: no symbol is hashed again (50,000 of them at the near shape).
    mutating func loaded() {
        // Not `for index in symbols.values.indices`: the indices hold the dictionary, and
        // the first change then copied all 50,000 entries.
        var index = symbols.values.startIndex
        while index != symbols.values.endIndex {
            symbols.values[index].loaded(staleBefore: staleBefore)
            symbols.values.formIndex(after: &index)
        }
    }

    /// The fresh quotes' indexes of a symbol (after its watermark, not stale).
    func freshIndexes(_ symbol: String) -> [Int] {
        guard let quotes = symbols[symbol] else { return [] }
        return Array(quotes.freshIndexes(staleBefore: staleBefore))
    }

    /// Each symbol's fresh price range; fills `batched`.
    mutating func priceRanges() -> [String: Range] {
        Dictionary(uniqueKeysWithValues: freshRanges().map { ($0.symbol, $0.range) })
    }

    /// The same, with each symbol's bounds for the level seeks (`levelBounds`), in one
    /// pass over the symbols (none looked up by name: 50,000 at the near shape).
    mutating func freshRanges() -> [(symbol: String, range: Range, bounds: LevelBounds)] {
        var ranges: [(symbol: String, range: Range, bounds: LevelBounds)] = []
        ranges.reserveCapacity(symbols.count)
        for (symbol, quotes) in symbols {
            var range = Range()
            for i in quotes.freshIndexes(staleBefore: staleBefore) { range.add(quotes.prices[i]) }
            guard !range.isEmpty else { continue }
            ranges.append((symbol, range, Self.levelBounds(range, judged: quotes.judged, previous: quotes.previousPrices())))
        }
        batched.reserveCapacity(ranges.count)
        for row in ranges { batched.insert(row.symbol) }
        return ranges
    }

    /// The quotes the new and resumed alerts of a symbol judge between them: the fresh ones
    /// from the earliest of their starts.
    func starterIndexes(_ symbol: String) -> [Int] {
        guard let quotes = symbols[symbol], let earliest = starterSpans[symbol]?.earliest else { return [] }
        let from = quotes.times.firstIndex { $0 >= earliest } ?? quotes.times.count
        return (from..<quotes.times.count).filter { quotes.times[$0] >= staleBefore }
    }

    /// The quotes a candidate judges: from its start, or from its symbol's first fresh quote.
    func judgedRange(_ candidate: Candidate) -> Swift.Range<Int>? {
        symbols[candidate.symbol].flatMap { judgedRange(candidate, in: $0) }
    }

    func judgedRange(_ candidate: Candidate, in quotes: SymbolQuotes) -> Swift.Range<Int>? {
        if let start = candidate.startAt {
            guard let newest = quotes.times.last, newest >= start else { return nil }
            return (quotes.times.firstIndex { $0 >= start } ?? quotes.times.count)..<quotes.times.count
        }
        return quotes.firstNew..<quotes.times.count
    }

    /// The symbols whose watermark moves, with the newest quote judged and the last price
    /// judged as current (which moves only with the watermark).
    func watermarks() -> [(symbol: String, observedAt: Int64, judged: Double?)] {
        symbols.compactMap { symbol, quotes in
            guard let newest = quotes.times.last, newest > (quotes.watermark ?? Int64.min) else { return nil }
            return (symbol, newest, quotes.judgedNow)
        }
    }
}
