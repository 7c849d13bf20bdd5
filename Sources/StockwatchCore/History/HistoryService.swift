import Foundation
import GRDB

/// What has happened: notifications (newest first, with their deliveries) and stored quotes.
public struct HistoryService: Sendable {
    let database: AppDatabase

    public init(database: AppDatabase) { self.database = database }

    public struct Filter: Sendable {
        public var symbol: String?
        public var alertID: Int64?
        public var since: Date?
        public var limit: Int
        public init(symbol: String? = nil, alertID: Int64? = nil, since: Date? = nil, limit: Int = 100) {
            self.symbol = symbol
            self.alertID = alertID
            self.since = since
            self.limit = limit
        }
    }

    public func notifications(_ filter: Filter) throws(StockwatchError) -> [NotificationJSON] {
        let symbol = try filter.symbol.map { (s) throws(StockwatchError) in try Symbol.parse(s, option: "--symbol").text }
        return try database.read { db in
            var request = NotificationRecord.order(Column("created_at").desc, Column("id").desc).limit(filter.limit)
            if let symbol { request = request.filter(Column("symbol") == symbol) }
            if let alertID = filter.alertID { request = request.filter(Column("alert_id") == alertID) }
            if let since = filter.since { request = request.filter(Column("created_at") >= since.milliseconds) }
            let notifications = try request.fetchAll(db)
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
            return try request.fetchAll(db).map { QuoteJSON(symbol: $0.symbol, price: $0.price, provider: $0.provider, observedAt: $0.observedAt) }
        }
    }
}
