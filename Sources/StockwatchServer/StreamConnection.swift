import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import StockwatchCore
import StockwatchModel

/// One client of `GET /v1/stream`. It sends `{"type":"subscribe","symbols":[...]}` or
/// `unsubscribe`; it receives `subscribed`, the newest quote of each new symbol, then
/// every new `quote` of its symbols and every `notification` of its user, and an
/// `error` for a message it got wrong (the connection stays open).
struct StreamConnection: Sendable {
    /// Symbols one connection may watch (the whole API's list limit).
    static let maximumSymbols = APIServer.maximumLimit
    /// Inbound messages: a burst of this many, then this many a second. An app sends a
    /// handful; more is a bug or abuse, and the connection is closed with 1008.
    static let messageBurst = 50.0
    static let messagesPerSecond = 20.0

    /// How long a client may take to answer the server's close frame (Hummingbird's
    /// own close timeout, `APIServer`'s channel configuration, is the same).
    static let closeHandshakeTimeout: Duration = .seconds(5)

    /// Why one of a connection's two tasks ended.
    private enum Ending: Sendable {
        case flood, closeSent, inboundEnded, timedOut
    }

    let hub: StreamHub
    let history: HistoryService
    let user: AuthenticatedUser
    let channel: any Channel
    let logger: Logger

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let channel = self.channel
        guard let (id, outbox) = await hub.register(user, close: { channel.close(promise: nil) }) else {
            try await outbound.close(.policyViolation, reason: "too many connections for user \(user.name)")
            return
        }
        do {
            try await withThrowingTaskGroup(of: Ending.self) { group in
                // The writer ends when the hub ends or drops this client (a removed user, a
                // flood, too slow, shutdown), after sending the close frame itself.
                group.addTask {
                    for await item in outbox {
                        switch item {
                        case let .text(text): try await outbound.write(.text(text))
                        case let .close(code, reason):
                            try await outbound.close(code, reason: reason)
                            return .closeSent
                        }
                    }
                    // Shutdown (a dropped client's connection is closed already: nothing to send).
                    try? await outbound.close(.normalClosure, reason: nil)
                    return .closeSent
                }
                group.addTask {
                    var allowance = Self.messageBurst
                    var last = ContinuousClock.now
                    // Messages over the size limit end the loop with close code 1009; the
                    // client's close frame ends it too.
                    for try await message in inbound.messages(maxSize: APIServer.maximumBody) {
                        let now = ContinuousClock.now
                        allowance = min(Self.messageBurst, allowance + (now - last) / .seconds(1) * Self.messagesPerSecond)
                        last = now
                        guard allowance >= 1 else {
                            await hub.end(id, code: .policyViolation, reason: "more than \(Int(Self.messagesPerSecond)) messages a second")
                            return .flood
                        }
                        allowance -= 1
                        await handle(message, client: id)
                    }
                    return .inboundEnded
                }
                switch try await group.next() {
                case .flood?:
                    // The writer sends what was queued, then the close frame.
                    _ = try await group.next()
                case .closeSent?:
                    // The closing handshake: the reader ends at the client's close frame, so the
                    // connection is closed only once the client has read ours. Cancelling the
                    // reader instead would end the inbound stream and close the socket at once,
                    // and a client that was writing then (a ping) could lose our close frame
                    // to the reset and see 1006.
                    group.addTask {
                        try? await Task.sleep(for: Self.closeHandshakeTimeout)
                        return .timedOut
                    }
                    _ = try await group.next()
                default:
                    break
                }
                group.cancelAll()
            }
        } catch {
            await hub.unregister(id)
            throw error
        }
        await hub.unregister(id)
    }

    private func handle(_ message: WebSocketMessage, client id: Int) async {
        guard case let .text(text) = message else {
            return await hub.send(StreamMessage.error("bad_message", "send JSON text messages, not binary"), to: id)
        }
        let request: StreamMessage.Request
        do {
            request = try StreamMessage.Request.parse(text)
        } catch {
            return await hub.send(StreamMessage.error(error.code, error.message), to: id)
        }
        switch request {
        case let .subscribe(symbols):
            guard let (all, added) = await hub.subscribe(id, to: symbols, limit: Self.maximumSymbols) else {
                return await hub.send(StreamMessage.error("too_many_symbols", "one connection watches at most \(Self.maximumSymbols) symbols"), to: id)
            }
            await hub.send(StreamMessage.subscribed(all), to: id)
            // The newest quote of each new symbol, so that the app shows a price at once. A
            // quote committed meanwhile may also arrive from the hub: keep the newest observed_at.
            let history = self.history
            if !added.isEmpty, let latest = try? await blocking({ try history.latestQuotes(symbols: added) }) {
                await hub.send(latest.map(StreamMessage.quote), to: id)
            }
        case let .unsubscribe(symbols):
            await hub.send(StreamMessage.subscribed(await hub.unsubscribe(id, from: symbols)), to: id)
        }
    }
}

/// The stream's messages, as JSON text.
enum StreamMessage {
    enum Request: Equatable {
        case subscribe([String])
        case unsubscribe([String])

        static func parse(_ text: String) throws(StockwatchError) -> Request {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw .invalidInput(source: "message", position: nil, reason: "not a JSON object")
            }
            guard let type = object["type"] as? String else {
                throw .invalidInput(source: "message", position: nil, reason: "missing \"type\" (subscribe or unsubscribe)")
            }
            guard type == "subscribe" || type == "unsubscribe" else {
                throw .invalidValue(option: "type", value: type, reason: "one of subscribe, unsubscribe")
            }
            guard let list = object["symbols"] as? [String], !list.isEmpty else {
                throw .invalidInput(source: "message", position: nil, reason: "\"symbols\" must be a non-empty array of strings")
            }
            var seen = Set<String>()
            let symbols = try list.map { (text) throws(StockwatchError) in try Symbol.parse(text, option: "symbols").text }.filter { seen.insert($0).inserted }
            return type == "subscribe" ? .subscribe(symbols) : .unsubscribe(symbols)
        }
    }

    static func quote(_ quote: QuoteJSON) -> String {
        JSONOutput.encode(Typed(type: "quote", body: quote))
    }

    /// The same object (and id) as `history --json` and the FCM data's notification_id.
    static func notification(_ notification: NotificationJSON) -> String {
        JSONOutput.encode(Typed(type: "notification", body: notification.forApp))
    }

    /// Some of the user's notifications were read or dismissed (on this phone or another).
    static func notificationState(_ change: NotificationStateChange) -> String {
        struct Body: Encodable { let ids: [Int64]; let state: NotificationState }
        return JSONOutput.encode(Typed(type: "notification_state", body: Body(ids: change.ids, state: change.state)))
    }

    static func subscribed(_ symbols: [String]) -> String {
        JSONOutput.encode(Typed(type: "subscribed", body: ["symbols": symbols]))
    }

    static func error(_ code: String, _ message: String) -> String {
        JSONOutput.encode(Typed(type: "error", body: ["code": code, "message": message]))
    }

    /// `{"type":...}` merged into the body's own keys.
    private struct Typed<Body: Encodable>: Encodable {
        let type: String
        let body: Body
        enum Key: String, CodingKey { case type }
        func encode(to encoder: any Encoder) throws {
            try body.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(type, forKey: .type)
        }
    }
}
