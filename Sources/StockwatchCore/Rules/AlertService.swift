import Foundation
import GRDB
import StockwatchModel
import StockwatchStore

/// Adding, listing and changing alerts. Each change is one transaction.
public struct AlertService: Sendable {
    let database: AppDatabase
    let config: Config

    public init(database: AppDatabase, config: Config) {
        self.database = database
        self.config = config
    }

    public struct Filter: Sendable {
        public var user: String?
        public var symbol: String?
        public var state: AlertState?
        /// A page: alerts with ids above `afterID`, at most `limit` (the API's cursor).
        public var afterID: Int64?
        public var limit: Int?
        public init(user: String? = nil, symbol: String? = nil, state: AlertState? = nil, afterID: Int64? = nil, limit: Int? = nil) {
            self.afterID = afterID
            self.limit = limit
            self.user = user
            self.symbol = symbol
            self.state = state
        }
    }

    public func add(_ input: AlertInput, now: Date = Date()) throws(StockwatchError) -> AlertJSON {
        try insert(try input.spec(config: config, now: now), now: now)
    }

    /// Adds an alert given as JSON (the API); errors name the JSON field. With
    /// `limitPerUser`, a user who has that many alerts gets `limitReached`.
    public func add(_ spec: AlertSpec, limitPerUser: Int? = nil, now: Date = Date()) throws(StockwatchError) -> AlertJSON {
        try insert(try spec.validated(config: config, now: now), limitPerUser: limitPerUser, now: now)
    }

    private func insert(_ spec: AlertSpec, limitPerUser: Int? = nil, now: Date) throws(StockwatchError) -> AlertJSON {
        try database.write { db in
            let userID = try UserService.resolve(spec.user, in: db, now: now)
            if let limit = limitPerUser, try AlertRecord.filter(Column("user_id") == userID).fetchCount(db) >= limit {
                throw StockwatchError.limitReached(kind: "alert", limit: limit, key: "[serve] max_alerts_per_user")
            }
            var alert = Self.record(spec, userID: userID, now: now)
            alert.startAt = try Self.startAt(symbol: alert.symbol, in: db)
            try alert.insert(db)
            return AlertJSON(alert, user: spec.user ?? UserService.defaultUserName)
        }
    }

    public func list(_ filter: Filter = Filter()) throws(StockwatchError) -> [AlertJSON] {
        let symbol = try filter.symbol.map { (s) throws(StockwatchError) in try Symbol.parse(s, option: "--symbol").text }
        return try database.read { db in
            var request = AlertRecord.order(Column("id"))
            if let user = filter.user { request = request.filter(Column("user_id") == (try UserService.existingID(user, in: db))) }
            if let symbol { request = request.filter(Column("symbol") == symbol) }
            if let state = filter.state { request = request.filter(Column("state") == state) }
            if let afterID = filter.afterID { request = request.filter(Column("id") > afterID) }
            if let limit = filter.limit { request = request.limit(limit) }
            let names = try Self.userNames(db)
            return try request.fetchAll(db).map { AlertJSON($0, user: names[$0.userId] ?? "?") }
        }
    }

    /// With `ownerID`, another user's alert is reported as not found (the API's scoping).
    public func show(id: Int64, ownerID: Int64? = nil) throws(StockwatchError) -> AlertJSON {
        try database.read { db in
            guard let alert = try AlertRecord.fetchOne(db, key: id), ownerID.map({ $0 == alert.userId }) ?? true else { throw StockwatchError.notFound(kind: "alert", id: String(id)) }
            return AlertJSON(alert, user: try Self.userNames(db)[alert.userId] ?? "?")
        }
    }

    /// All or nothing: one unknown id (or, with `ownerID`, another user's) removes none.
    public func remove(ids: [Int64], ownerID: Int64? = nil) throws(StockwatchError) {
        try database.write { db in
            for id in ids {
                let owner = try Int64.fetchOne(db, sql: "SELECT user_id FROM alerts WHERE id = ?", arguments: [id])
                if owner != nil, ownerID == nil || owner == ownerID { continue }
                throw StockwatchError.notFound(kind: "alert", id: String(id))
            }
            try AlertRecord.deleteAll(db, keys: ids)
        }
    }

    /// Pausing an armed or firing alert stops evaluation; pausing a paused one changes nothing.
    public func pause(id: Int64) throws(StockwatchError) -> AlertJSON {
        try changeState(id: id) { alert, _ in
            switch alert.state {
            case .armed, .firing, .paused: alert.state = .paused
            case .fired, .expired: throw StockwatchError.usage("alert \(id) is \(alert.state.rawValue); only armed or firing alerts can be paused")
            }
        }
    }

    /// A resumed alert starts armed again (evaluate starts it at the newest quote).
    public func resume(id: Int64, now: Date = Date()) throws(StockwatchError) -> AlertJSON {
        try changeState(id: id) { alert, db in
            switch alert.state {
            case .paused:
                alert.state = (alert.expiresAt.map { $0 <= now } ?? false) ? .expired : .armed
                alert.startAt = try Self.startAt(symbol: alert.symbol, in: db)
            case .armed, .firing: break
            case .fired, .expired: throw StockwatchError.usage("alert \(id) is \(alert.state.rawValue); only paused alerts can be resumed")
            }
        }
    }

    private func changeState(id: Int64, _ change: @Sendable (inout AlertRecord, Database) throws -> Void) throws(StockwatchError) -> AlertJSON {
        try database.write { db in
            guard var alert = try AlertRecord.fetchOne(db, key: id) else { throw StockwatchError.notFound(kind: "alert", id: String(id)) }
            try change(&alert, db)
            try alert.update(db, columns: ["state", "start_at"])
            return AlertJSON(alert, user: try Self.userNames(db)[alert.userId] ?? "?")
        }
    }

    static func record(_ spec: AlertSpec, userID: Int64, now: Date) -> AlertRecord {
        AlertRecord(
            userId: userID, symbol: spec.symbol, kind: spec.condition.kind, value: spec.condition.value,
            percent: spec.condition.percent, windowSeconds: spec.condition.windowSeconds, trigger: spec.trigger,
            cooldownSeconds: spec.cooldownSeconds, rearmMarginPercent: spec.rearmMarginPercent,
            channels: spec.channels ?? [], state: spec.state, note: spec.note, createdAt: now, expiresAt: spec.expiresAt)
    }

    /// Where a new or resumed alert starts judging: the newest quote of its symbol, which
    /// the next evaluate judges, so that older history never fires it (0: no quote yet).
    static let startAtSQL = "(SELECT COALESCE(max(observed_at), 0) FROM quotes WHERE symbol = ?)"

    static func startAt(symbol: String, in db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT \(startAtSQL)", arguments: [symbol]) ?? 0
    }

    static func userNames(_ db: Database) throws -> [Int64: String] {
        var names: [Int64: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT id, name FROM users") { names[row["id"]] = row["name"] }
        return names
    }
}
