import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StockwatchCore
import StockwatchModel
import StockwatchStore

/// The JSON API's handlers: the CLI's services, scoped to the authenticated user, with
/// the CLI's JSON objects. Every database call runs off the event loop.
struct APIRoutes: Sendable {
    let database: any DataStore
    let config: Config
    let writes: WriteRateLimiter

    init(database: any DataStore, config: Config) {
        self.database = database
        self.config = config
        writes = WriteRateLimiter(perMinute: config.serve.writesPerMinute)
    }

    private var alerts: AlertService { AlertService(database: database, config: config) }
    private var devices: DeviceService { DeviceService(database: database) }
    private var history: HistoryService { HistoryService(database: database) }
    private var users: UserService { UserService(database: database) }

    /// `?limit=N&after=ID`: a page of this user's alerts by id.
    func listAlerts(_ request: Request, user: AuthenticatedUser) async throws -> Response {
        let page = try Page(request, cursor: "after")
        let alerts = self.alerts
        let list = try await blocking { try alerts.list(.init(user: user.name, afterID: page.cursor, limit: page.limit)) }
        return try json(list, next: page.next(after: list.last?.id, count: list.count, request: request))
    }

    /// The body is an alert object as `alert list --json` prints it; id, user, state
    /// (except paused) and timestamps other than expires_at are ignored.
    func addAlert(_ request: Request, user: AuthenticatedUser) async throws -> Response {
        try await writes.admit(user.id)
        let object = try await Self.decode(AlertJSON.self, from: request, allowedKeys: Self.alertKeys)
        var spec = try object.spec(user: user.name)
        if spec.state != .paused { spec.state = .armed }
        spec.channels = try Self.apiChannels(spec.channels, config: config)
        let alerts = self.alerts, input = spec, limit = config.serve.maxAlertsPerUser
        return try json(await blocking { try alerts.add(input, limitPerUser: limit) }, status: .created)
    }

    func showAlert(_ id: Int64, user: AuthenticatedUser) async throws -> Response {
        let alerts = self.alerts
        return try json(await blocking { try alerts.show(id: id, ownerID: user.id) })
    }

    /// From a notification's button: the alert stops notifying until resumed.
    func pauseAlert(_ id: Int64, user: AuthenticatedUser) async throws -> Response {
        try await writes.admit(user.id)
        let alerts = self.alerts
        return try json(await blocking { try alerts.pause(id: id, ownerID: user.id) })
    }

    /// A resumed alert is armed again and judges from the newest quote on.
    func resumeAlert(_ id: Int64, user: AuthenticatedUser) async throws -> Response {
        try await writes.admit(user.id)
        let alerts = self.alerts
        return try json(await blocking { try alerts.resume(id: id, ownerID: user.id) })
    }

    struct SnoozeBody: Decodable {
        var until: Date?
        var seconds: Int64?

        /// A key given as null is refused, not taken as absent.
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if c.contains(.until) { until = try c.decode(Date.self, forKey: .until) }
            if c.contains(.seconds) { seconds = try c.decode(Int64.self, forKey: .seconds) }
        }
        enum CodingKeys: String, CodingKey { case until, seconds }
    }

    /// From a notification's button: `{"until": TIME}` or `{"seconds": N}`.
    func snoozeAlert(_ id: Int64, _ request: Request, user: AuthenticatedUser) async throws -> Response {
        try await writes.admit(user.id)
        let body = try await Self.decode(SnoozeBody.self, from: request, allowedKeys: ["until", "seconds"])
        let now = Date()
        let until: Date
        switch (body.until, body.seconds) {
        case (let date?, nil): until = date
        case (nil, let seconds?):
            guard (1...Int64(AlertService.maximumSnooze)).contains(seconds) else {
                throw StockwatchError.invalidValue(option: "seconds", value: String(seconds), reason: "a whole number from 1 to \(Int64(AlertService.maximumSnooze)) (a year)")
            }
            until = now.addingTimeInterval(TimeInterval(seconds))
        default: throw StockwatchError.usage("request body: give either until or seconds")
        }
        let alerts = self.alerts
        return try json(await blocking { try alerts.snooze(id: id, until: until, ownerID: user.id, now: now) })
    }

    func unsnoozeAlert(_ id: Int64, user: AuthenticatedUser) async throws -> Response {
        try await writes.admit(user.id)
        let alerts = self.alerts
        return try json(await blocking { try alerts.snooze(id: id, until: nil, ownerID: user.id) })
    }

    func removeAlert(_ id: Int64, user: AuthenticatedUser) async throws -> Response {
        try await writes.admit(user.id)
        let alerts = self.alerts
        try await blocking { try alerts.remove(ids: [id], ownerID: user.id) }
        return try json(["removed": [id]])
    }

    /// The authenticated user, as `user list --json` shows them.
    func me(user: AuthenticatedUser) async throws -> Response {
        let users = self.users
        return try json(await blocking { try users.user(id: user.id) })
    }

    struct SettingsBody: Decodable {
        var timezone: String?
        /// Absent: unchanged; null: no quiet hours.
        var quietHours: String??
        enum CodingKeys: String, CodingKey { case timezone, quietHours = "quiet_hours" }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if c.contains(.timezone) { timezone = try c.decode(String.self, forKey: .timezone) }
            if c.contains(.quietHours) { quietHours = .some(try c.decodeNil(forKey: .quietHours) ? nil : try c.decode(String.self, forKey: .quietHours)) }
        }
    }

    /// `{"timezone": "Europe/Warsaw", "quiet_hours": "22:00-07:00" | null}`, either or both.
    func changeMe(_ request: Request, user: AuthenticatedUser) async throws -> Response {
        try await writes.admit(user.id)
        let body = try await Self.decode(SettingsBody.self, from: request, allowedKeys: ["timezone", "quiet_hours"])
        guard body.timezone != nil || body.quietHours != nil else { throw StockwatchError.usage("request body: give timezone or quiet_hours") }
        let users = self.users
        let change = UserService.SettingsChange(timezone: body.timezone, quietHours: body.quietHours, options: ("timezone", "quiet_hours"))
        return try json(await blocking { try users.change(userID: user.id, change) })
    }

    /// `?limit=N&after=ID`: a page of this user's devices by id.
    func listDevices(_ request: Request, user: AuthenticatedUser) async throws -> Response {
        let page = try Page(request, cursor: "after")
        let devices = self.devices
        let list = try await blocking { try devices.list(user: user.name, afterID: page.cursor, limit: page.limit).map(\.forApp) }
        return try json(list, next: page.next(after: list.last?.id, count: list.count, request: request))
    }

    struct DeviceBody: Decodable {
        var fcmToken: String
        var label: String?
        enum CodingKeys: String, CodingKey { case label, fcmToken = "fcm_token" }
    }

    /// Registers the app's FCM token, or refreshes it when this user has it (apps send it
    /// on every start); a token another user registered becomes a new device of this
    /// user, without the previous owner's label or waiting deliveries.
    func addDevice(_ request: Request, user: AuthenticatedUser) async throws -> Response {
        try await writes.admit(user.id)
        let body = try await Self.decode(DeviceBody.self, from: request, allowedKeys: ["fcm_token", "label"])
        let devices = self.devices, limit = config.serve.maxDevicesPerUser
        return try json(await blocking { try devices.add(user: user.name, fcmToken: body.fcmToken, label: body.label, limitPerUser: limit).forApp })
    }

    func removeDevice(_ id: Int64, user: AuthenticatedUser) async throws -> Response {
        try await writes.admit(user.id)
        let devices = self.devices
        try await blocking { try devices.remove(id: id, ownerID: user.id) }
        return try json(["removed": [id]])
    }

    /// `?symbols=AAPL,EUR/USD`: the newest quote of each that has one. Only the shape of
    /// each symbol is checked (openapi.yaml's pattern): a pair such as AAA/BBB has no quote.
    func quotes(_ request: Request) async throws -> Response {
        guard let list = request.uri.queryParameters["symbols"].map(String.init), !list.isEmpty else {
            throw StockwatchError.invalidValue(option: "symbols", value: "", reason: "give symbols=AAPL,EUR/USD")
        }
        let items = list.split(separator: ",", omittingEmptySubsequences: false)
        guard items.count <= Self.maximumLimit else {
            throw StockwatchError.invalidValue(option: "symbols", value: list, reason: "at most \(Self.maximumLimit) symbols")
        }
        var symbols: [String] = []
        var seen = Set<String>()
        for text in items {
            let symbol = try Symbol.parse(String(text), option: "symbols", shapeOnly: true).text
            if seen.insert(symbol).inserted { symbols.append(symbol) }
        }
        let history = self.history, wanted = symbols
        return try json(await blocking { try history.latestQuotes(symbols: wanted) })
    }

    /// `?since=TIME&state=unread&limit=N&before=ID`: this user's notifications, newest first, as
    /// `history --json` with app-level delivery reasons.
    func notifications(_ request: Request, user: AuthenticatedUser) async throws -> Response {
        let page = try Page(request, cursor: "before")
        // By id, so that the cursor pages exactly: created_at is each evaluate's start,
        // which two overlapping runs (or a clock step) can write out of id order.
        var filter = HistoryService.Filter(userID: user.id, beforeID: page.cursor ?? .max, limit: page.limit)
        if let since = request.uri.queryParameters["since"].map(String.init) {
            guard let date = ValueParser.apiTime(since) else {
                throw StockwatchError.invalidValue(option: "since", value: since, reason: "an ISO 8601 UTC time, e.g. 2026-11-25T09:30:00Z or 2026-11-25")
            }
            filter.since = date
        }
        if let text = request.uri.queryParameters["state"].map(String.init) { filter.state = try NotificationState.parse(text, option: "state") }
        let history = self.history, query = filter
        let list = try await blocking { try history.notifications(query).map(\.forApp) }
        return try json(list, next: page.next(after: list.last?.id, count: list.count, request: request))
    }

    func unreadCount(user: AuthenticatedUser) async throws -> Response {
        let history = self.history
        return try json(["unread": await blocking { try history.unreadCount(userID: user.id) }])
    }

    struct MarkBody: Decodable {
        var ids: [Int64]?
        var upTo: Int64?
        var deviceID: Int64?
        enum CodingKeys: String, CodingKey { case ids, upTo = "up_to", deviceID = "device_id" }

        /// A key given as null is refused, not taken as absent.
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if c.contains(.ids) { ids = try c.decode([Int64].self, forKey: .ids) }
            if c.contains(.upTo) { upTo = try c.decode(Int64.self, forKey: .upTo) }
            if c.contains(.deviceID) { deviceID = try c.decode(Int64.self, forKey: .deviceID) }
        }
    }

    struct MarkAnswer: Encodable {
        var state: NotificationState
        var ids: [Int64]
        var unread: Int
    }

    /// `{"ids": [...]}` or `{"up_to": ID}`, with the `device_id` it was done on if the app
    /// knows it: answers the ids that changed and the unread count after, and the stream
    /// tells the user's connections.
    func markNotifications(_ request: Request, as state: NotificationState, user: AuthenticatedUser) async throws -> Response {
        try await writes.admit(user.id)
        let body = try await Self.decode(MarkBody.self, from: request, allowedKeys: ["ids", "up_to", "device_id"])
        let selection: NotificationSelection
        switch (body.ids, body.upTo) {
        case (let ids?, nil): selection = .ids(ids)
        case (nil, let upTo?): selection = .upTo(upTo)
        default: throw StockwatchError.usage("request body: give either ids or up_to")
        }
        let history = self.history
        let answer = try await blocking {
            let changed = try history.mark(selection, as: state, userID: user.id, deviceID: body.deviceID)
            return MarkAnswer(state: state, ids: changed, unread: try history.unreadCount(userID: user.id))
        }
        return try json(answer)
    }

    /// `limit` (1 to `maximumLimit`, default 100) and a cursor (an id) of a list route.
    /// A full page links to the next one in a `Link: <...>; rel="next"` header, so the
    /// body stays a plain array.
    struct Page {
        var limit: Int
        var cursor: Int64?
        let cursorName: String

        init(_ request: Request, cursor name: String) throws(StockwatchError) {
            let parameters = request.uri.queryParameters
            cursorName = name
            limit = 100
            if let text = parameters["limit"].map(String.init) {
                guard let value = Int(text), (1...APIRoutes.maximumLimit).contains(value) else {
                    throw .invalidValue(option: "limit", value: text, reason: "a whole number from 1 to \(APIRoutes.maximumLimit)")
                }
                limit = value
            }
            if let text = parameters[Substring(name)].map(String.init) {
                guard let value = Int64(text), value >= 0 else {
                    throw .invalidValue(option: name, value: text, reason: "an id from the previous page's Link header")
                }
                cursor = value
            }
        }

        /// The next page's path and query when this page is full.
        func next(after lastID: Int64?, count: Int, request: Request) -> String? {
            guard let lastID, count == limit else { return nil }
            var query = request.uri.queryParameters.filter { $0.key != Substring(cursorName) && $0.key != "limit" }
                .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(["&", "+", "="])) ?? "")" }
            query.sort()
            query += ["limit=\(limit)", "\(cursorName)=\(lastID)"]
            return request.uri.path + "?" + query.joined(separator: "&")
        }
    }

    /// An app's user may route alerts only to `[serve] api_channels`; without a list,
    /// to the defaults among them (or all of them when no default is one).
    static func apiChannels(_ asked: [String]?, config: Config) throws(StockwatchError) -> [String] {
        let allowed = config.apiChannelNames
        guard !allowed.isEmpty else {
            throw .unavailable("no channel is open to the API; list some in [serve] api_channels")
        }
        guard let asked else {
            let defaults = config.defaultNotify.filter(allowed.contains)
            return defaults.isEmpty ? allowed : defaults
        }
        for channel in asked where !allowed.contains(channel) {
            throw .invalidValue(option: "channels", value: channel, reason: "not a channel open to the API (open: \(allowed.joined(separator: ", ")))")
        }
        return asked
    }

    static let maximumLimit = APIServer.maximumLimit
    static let link = HTTPField.Name("Link")!
    static let alertKeys: Set<String> = [
        "id", "user", "symbol", "condition", "trigger", "cooldown_seconds", "rearm_margin_percent", "channels", "state",
        "created_at", "last_fired_at", "expires_at", "note", "snoozed_until", "schedule", "trailing_from",
    ]

    /// Reads at most `APIServer.maximumBody` bytes (more is 413), refuses keys the object
    /// does not have (a typo would otherwise be silently ignored), then decodes.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, allowedKeys: Set<String>) async throws -> T {
        let buffer = try await request.body.collect(upTo: APIServer.maximumBody)
        let data = Data(buffer.readableBytesView)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw StockwatchError.invalidInput(source: "request body", position: nil, reason: "not a JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { !allowedKeys.contains($0) }) {
            throw StockwatchError.invalidValue(option: "request body", value: unknown, reason: "unknown field (known: \(allowedKeys.sorted().joined(separator: ", ")))")
        }
        do {
            return try JSONOutput.decoder(apiTimes: true).decode(type, from: data)
        } catch let error as DecodingError {
            throw StockwatchError.usage("request body: \(error.humanDescription)")
        }
    }

    func json<T: Encodable>(_ list: [T], next: String?) throws -> Response {
        var response = try json(list)
        if let next { response.headers[Self.link] = "<\(next)>; rel=\"next\"" }
        return response
    }

    func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let text = JSONOutput.encode(value) + "\n"
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
