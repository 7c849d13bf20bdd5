import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct FetchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch the latest prices of watched symbols (or those named) into the database.",
        discussion: "Exit 0 when every symbol got a fresh quote or was skipped by its budget, 75 when some failed, 69 when nothing could be fetched, 78 on a provider config problem.")

    @Argument(help: "Symbols to fetch (default: those of active alerts and [fetch] watch).") var symbols: [String] = []
    @Option(help: ArgumentHelp("Read quotes from a CSV (symbol,price,time) or NDJSON file, or - for stdin, instead of providers.", valueName: "path"))
    var from: String?
    @Flag(help: "Fetch daily closes from Stooq instead (default symbols: those of alerts that need history and have none).")
    var history = false
    @Option(help: ArgumentHelp("With --history: keep this many days (default 400, or the longest new-high/low window plus 14).", valueName: "n")) var days: Int?
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let (database, config) = try global.open()
        if history { return try await fetchHistory(DailyHistoryService(database: database, config: config)) }
        if days != nil { throw StockwatchError.usage("--days goes only with --history") }
        let service = FetchService(database: database, config: config, environment: global.environment)
        let report: FetchReport
        if let from {
            if !symbols.isEmpty { throw StockwatchError.usage("give symbols or --from, not both") }
            let input = try InputFile.read(from)
            report = try service.ingest(input.data, source: input.source)
        } else {
            report = try await service.run(symbols: symbols)
        }
        if global.json {
            Output.json(report)
        } else {
            if global.verbose {
                for quote in report.quotes { print("\(quote.symbol) \(quote.price.formattedPrice) \(quote.provider) \(Output.time(quote.observedAt))") }
                for skip in report.skipped { print("\(skip.symbol) skipped: \(skip.provider.map { "\($0): " } ?? "")\(Output.cell(skip.reason))") }
            }
        }
        // Failures go to stderr even without -v: cron mails them.
        try Output.finish(report.exitStatus, problems: report.errors.map(\.message), json: global.json)
    }

    /// `--history`: daily closes into the daily table; `--from` reads one symbol's CSV.
    func fetchHistory(_ service: DailyHistoryService) async throws {
        let report: DailyHistoryReport
        if let from {
            guard symbols.count == 1 else { throw StockwatchError.usage("--history --from reads one symbol's history: name exactly one symbol") }
            if days != nil { throw StockwatchError.usage("--days goes with a download, not --from (the file's rows are kept)") }
            let input = try InputFile.read(from)
            report = try service.ingest(symbol: symbols[0], input.data, source: input.source)
        } else {
            report = try await service.backfill(symbols: symbols, days: days)
        }
        if global.json {
            Output.json(report)
        } else if global.verbose {
            for entry in report.symbols {
                print("\(entry.symbol) \(entry.stored) stored, \(entry.days) days \(entry.oldest ?? "-")..\(entry.newest ?? "-")")
            }
            for skip in report.skipped { print("\(skip.symbol) skipped: \(skip.provider.map { "\($0): " } ?? "")\(Output.cell(skip.reason))") }
        }
        try Output.finish(report.exitStatus, problems: report.errors.map(\.message), json: global.json)
    }
}
