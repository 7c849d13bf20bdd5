import Foundation
import StockwatchModel
import StockwatchStore

/// `stockwatch demo`: the whole pipeline, offline, in a temporary database. A bundled
/// price series goes through the real file provider, evaluate and notify (stdout
/// channel), one step at a time, the way cron ticks would.
public struct DemoService: Sendable {
    let say: @Sendable (String) -> Void

    public init(say: @escaping @Sendable (String) -> Void) { self.say = say }

    /// Minutes before now, symbol, price: a morning where AAPL crosses 200 twice, EUR/USD
    /// drops over 1% within an hour and TSLA stays above 250 for a while.
    static let series: [(minutesAgo: Int, symbol: String, price: Double)] = [
        (60, "AAPL", 196.10), (60, "EUR/USD", 1.0850), (60, "TSLA", 244.00),
        (50, "AAPL", 198.40), (50, "EUR/USD", 1.0842), (50, "TSLA", 248.50),
        (40, "AAPL", 200.25), (40, "EUR/USD", 1.0815), (40, "TSLA", 251.20),
        (30, "AAPL", 201.35), (30, "EUR/USD", 1.0790), (30, "TSLA", 253.80),
        (20, "AAPL", 199.10), (20, "EUR/USD", 1.0731), (20, "TSLA", 252.40),
        (10, "AAPL", 200.60), (10, "EUR/USD", 1.0712), (10, "TSLA", 249.90),
        (0, "AAPL", 202.05), (0, "EUR/USD", 1.0724), (0, "TSLA", 250.10),
    ]

    static let alerts: [AlertInput] = {
        var crossing = AlertInput(symbol: "AAPL")
        crossing.crossesAbove = "200"
        crossing.note = "trigger rearm (the default): fires on each upward crossing"
        var fall = AlertInput(symbol: "EUR/USD")
        fall.fall = "1%"
        fall.within = "1h"
        fall.trigger = "once"
        fall.note = "trigger once: fires a single time"
        var above = AlertInput(symbol: "TSLA")
        above.above = "250"
        above.trigger = "every"
        above.cooldown = "15m"
        above.note = "trigger every, with a 15 minute cooldown"
        return [crossing, fall, above].map {
            var input = $0
            input.user = "demo"
            input.notify = ["stdout"]
            return input
        }
    }()

    /// Returns the temporary database's path, kept so the next commands can be tried on it.
    public func run(now: Date = Date()) async throws(StockwatchError) -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stockwatch-demo-\(UUID().uuidString.prefix(8))").path
        let path = folder + "/demo.db"
        let database = try openDataStore(at: path)
        let config = Config()
        say("A temporary database: \(path)\n")
        _ = try UserService(database: database).add(name: "demo", now: now)
        let alerts = AlertService(database: database, config: config)
        say("User 'demo' with \(Self.alerts.count) alerts, all notifying the stdout channel:\n")
        for input in Self.alerts {
            let alert = try alerts.add(input, now: now.addingTimeInterval(-3700))
            say("  alert \(alert.id ?? 0): \(alert.symbol) \(alert.condition.summary); \(input.note ?? "")\n")
        }
        say("\nReplaying an hour of prices through fetch --from, evaluate and notify:\n")
        let fetch = FetchService(database: database, config: config, environment: [:])
        let evaluate = EvaluateService(database: database, config: config)
        let notify = NotifyService(database: database, config: config, environment: [:], writeLine: { say("      → " + $0) })
        var delivered = 0
        let steps = Dictionary(grouping: Self.series, by: \.minutesAgo).sorted { $0.key > $1.key }
        for (minutesAgo, quotes) in steps {
            let time = now.addingTimeInterval(-Double(minutesAgo) * 60)
            let csv = "symbol,price,time\n" + quotes.map { "\($0.symbol),\($0.price),\(ISO8601DateFormatter().string(from: time))" }.joined(separator: "\n")
            _ = try fetch.ingest(Data(csv.utf8), source: "demo series", now: now)
            say("  \(Self.clock(time))  " + quotes.map { "\($0.symbol) \($0.price.formattedPrice)" }.joined(separator: "   ") + "\n")
            _ = try evaluate.run(now: now)
            let report = try await notify.run(now: now)
            delivered += report.deliveries.filter { $0.status == .sent }.count
        }
        say("""

            \(delivered) notifications delivered. The database is kept; try:
              stockwatch history --db \(path)
              stockwatch alert list --db \(path)
              stockwatch status --db \(path)
            Then configure providers and channels (config.example.toml) and run 'stockwatch tick' from cron (crontab.example).

            """)
        return path
    }

    private static func clock(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "HH:mm'Z'"
        return formatter.string(from: date)
    }
}
