import Foundation
import GRDB
import StockwatchModel
import StockwatchStore

/// What has happened: notifications (newest first, with their deliveries) and stored quotes.
public struct HistoryService: Sendable {
    let database: AppDatabase

    public init(database: AppDatabase) { self.database = database }

    public struct Filter: Sendable {
        public var symbol: String?
        public var alertID: Int64?
        public var since: Date?
        /// Only this user's notifications (the API's scoping).
        public var userID: Int64?
        /// Only notifications with a smaller id, ordered by id, newest first (the API's
        /// cursor; `.max` for the first page).
        public var beforeID: Int64?
        public var limit: Int
        public init(symbol: String? = nil, alertID: Int64? = nil, since: Date? = nil, userID: Int64? = nil, beforeID: Int64? = nil, limit: Int = 100) {
            self.beforeID = beforeID
            self.symbol = symbol
            self.alertID = alertID
            self.since = since
            self.userID = userID
            self.limit = limit
        }
    }

    public func notifications(_ filter: Filter) throws(StockwatchError) -> [NotificationJSON] {
        let symbol = try filter.symbol.map { (s) throws(StockwatchError) in try Symbol.parse(s, option: "--symbol").text }
        return try database.read { db in
            var request = NotificationRecord.order(Column("created_at").desc, Column("id").desc).limit(filter.limit)
            if let beforeID = filter.beforeID { request = request.filter(Column("id") < beforeID).order(Column("id").desc) }
            if let symbol { request = request.filter(Column("symbol") == symbol) }
            if let alertID = filter.alertID { request = request.filter(Column("alert_id") == alertID) }
            if let since = filter.since { request = request.filter(Column("created_at") >= since.milliseconds) }
            if let userID = filter.userID { request = request.filter(Column("user_id") == userID) }
            return try Self.json(request.fetchAll(db), in: db)
        }
    }

    /// Notifications committed after `afterID`, oldest first, with their user's id: what
    /// `serve` streams.
    public func notifications(afterID: Int64, limit: Int) throws(StockwatchError) -> [(id: Int64, userID: Int64, notification: NotificationJSON)] {
        try database.read { db in
            let records = try NotificationRecord.filter(Column("id") > afterID).order(Column("id")).limit(limit).fetchAll(db)
            guard !records.isEmpty else { return [] }
            return zip(records, try Self.json(records, in: db)).map { ($0.id!, $0.userId, $1) }
        }
    }

    /// Every user's token hash, by user id: `serve` closes the streams of removed users.
    public func userTokens() throws(StockwatchError) -> [Int64: String] {
        try database.read { db in
            var tokens: [Int64: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, token_hash FROM users") { tokens[row["id"]] = row["token_hash"] }
            return tokens
        }
    }

    /// Quotes stored after `afterID`, oldest first: what `serve` streams.
    public func quotes(afterID: Int64, limit: Int) throws(StockwatchError) -> [(id: Int64, quote: QuoteJSON)] {
        try database.read { db in
            try QuoteRecord.filter(Column("id") > afterID).order(Column("id")).limit(limit).fetchAll(db).map { ($0.id!, QuoteJSON($0)) }
        }
    }

    /// The newest quote of each symbol that has one, in the order asked.
    public func latestQuotes(symbols: [String]) throws(StockwatchError) -> [QuoteJSON] {
        try database.read { db in
            try symbols.compactMap { symbol in
                try QuoteRecord.filter(Column("symbol") == symbol).order(Column("observed_at").desc).fetchOne(db).map(QuoteJSON.init)
            }
        }
    }

    /// The highest notification and quote ids: where a new stream starts.
    public func newestIDs() throws(StockwatchError) -> (notification: Int64, quote: Int64) {
        try database.read { db in
            (try Int64.fetchOne(db, sql: "SELECT COALESCE(max(id), 0) FROM notifications") ?? 0,
             try Int64.fetchOne(db, sql: "SELECT COALESCE(max(id), 0) FROM quotes") ?? 0)
        }
    }

    static func json(_ notifications: [NotificationRecord], in db: Database) throws -> [NotificationJSON] {
        do {
            let ids = notifications.compactMap(\.id)
            let deliveries = try DeliveryRecord.filter(ids.contains(Column("notification_id"))).order(Column("id")).fetchAll(db)
            let byNotification = Dictionary(grouping: deliveries, by: \.notificationId)
            let names = try AlertService.userNames(db)
            return notifications.map { n in
                NotificationJSON(
                    id: n.id!, alertId: n.alertId, user: names[n.userId] ?? "?", symbol: n.symbol, price: n.price,
                    observedAt: n.observedAt, message: n.message, createdAt: n.createdAt,
                    deliveries: (byNotification[n.id!] ?? []).map {
                        DeliveryJSON(id: $0.id!, notificationId: $0.notificationId, channel: $0.channel, target: $0.target, status: $0.status, attempts: $0.attempts, error: $0.lastError)
                    })
            }
        }
    }

    public func quotes(symbol: String?, since: Date?, limit: Int) throws(StockwatchError) -> [QuoteJSON] {
        let symbol = try symbol.map { (s) throws(StockwatchError) in try Symbol.parse(s, option: "--symbol").text }
        return try database.read { db in
            var request = QuoteRecord.order(Column("observed_at").desc, Column("id").desc).limit(limit)
            if let symbol { request = request.filter(Column("symbol") == symbol) }
            if let since { request = request.filter(Column("observed_at") >= since.milliseconds) }
            return try request.fetchAll(db).map(QuoteJSON.init)
        }
    }
}

extension QuoteJSON {
    init(_ quote: QuoteRecord) {
        self.init(symbol: quote.symbol, price: quote.price, provider: quote.provider, observedAt: quote.observedAt)
    }
}
