import Foundation
import StockwatchStore
import StockwatchModel

extension AlertService {
    /// Adds the alerts of a JSON array (as `alert list --json` prints) or NDJSON of the same
    /// objects. Ids, states other than paused/fired/expired, and timestamps other than
    /// `expires_at` are ignored. All or nothing: the first bad record is reported with its
    /// position and nothing is stored. Returns how many alerts were added.
    public func importAlerts(_ data: Data, source: String, user: String? = nil, now: Date = Date()) throws(StockwatchError) -> Int {
        var specs: [(String, AlertSpec)] = []
        for (position, record) in try Self.decodeImport(data, source: source) {
            do {
                specs.append((position, try record.spec(user: user).validated(config: config, now: now)))
            } catch {
                throw .invalidInput(source: source, position: position, reason: error.message)
            }
        }
        do {
            return try database.addAlerts(specs.map(\.1), limitPerUser: nil, now: now).count
        } catch {
            // Named users must exist: the first record naming the missing one is the culprit.
            guard case let .notFound("user", name) = error else { throw error }
            throw .invalidInput(source: source, position: specs.first { $0.1.user == name }?.0, reason: error.message)
        }
    }

    /// Returns each record with its position ("record 3" in an array, "line 7" in NDJSON).
    static func decodeImport(_ data: Data, source: String) throws(StockwatchError) -> [(String, AlertJSON)] {
        let decoder = JSONOutput.decoder()
        let firstByte = data.first { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }
        if firstByte == UInt8(ascii: "[") {
            if let records = AlertJSONScan.array(data) { return records.enumerated().map { ("record \($0.offset + 1)", $0.element) } }
            do {
                return try decoder.decode([AlertJSON].self, from: data).enumerated().map { ("record \($0.offset + 1)", $0.element) }
            } catch let error as DecodingError {
                let index = error.codingPath.first?.intValue
                throw .invalidInput(source: source, position: index.map { "record \($0 + 1)" }, reason: error.humanDescription)
            } catch {
                throw .invalidInput(source: source, position: nil, reason: "not a JSON array of alerts")
            }
        }
        var records: [(String, AlertJSON)] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
            if let record = AlertJSONScan.object(line) {
                records.append(("line \(lineNumber)", record))
                continue
            }
            do {
                records.append(("line \(lineNumber)", try decoder.decode(AlertJSON.self, from: Data(line))))
            } catch let error as DecodingError {
                throw .invalidInput(source: source, position: "line \(lineNumber)", reason: error.humanDescription)
            } catch {
                throw .invalidInput(source: source, position: "line \(lineNumber)", reason: "not a JSON object")
            }
        }
        if records.isEmpty { throw .invalidInput(source: source, position: nil, reason: "no alerts in input") }
        return records
    }
}

extension AlertJSON {
    /// The typed alert an imported object describes; `user` overrides the object's user.
    public func spec(user override: String?) throws(StockwatchError) -> AlertSpec {
        guard let condition = Condition(kind: condition.kind, value: condition.value, percent: condition.percent, windowSeconds: condition.windowSeconds) else {
            throw .usage("condition \(self.condition.kind.rawValue) needs " + self.condition.kind.fieldsNeeded)
        }
        var spec = AlertSpec(symbol: symbol, condition: condition)
        spec.user = override ?? user
        spec.trigger = trigger ?? .rearm
        spec.cooldownSeconds = cooldownSeconds ?? 0
        spec.rearmMarginPercent = rearmMarginPercent ?? 0
        spec.channels = channels
        spec.expiresAt = expiresAt
        spec.note = note
        spec.schedule = schedule
        // Restored alerts keep what an admin decided (paused) or what has happened for good
        // (fired, expired); armed and firing both restart armed at the newest quote.
        switch state {
        case .paused?, .fired?, .expired?: spec.state = state!
        default: spec.state = .armed
        }
        return spec
    }
}

extension DecodingError {
    var codingPath: [any CodingKey] {
        switch self {
        case let .keyNotFound(_, context), let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            context.codingPath
        @unknown default: []
        }
    }

    /// "field 'condition.kind': ..." rather than Foundation's debug dump.
    public var humanDescription: String {
        func path(_ context: Context) -> String {
            let keys = context.codingPath.filter { $0.intValue == nil }.map(\.stringValue)
            return keys.isEmpty ? "" : "field '\(keys.joined(separator: "."))': "
        }
        switch self {
        case let .keyNotFound(key, context):
            return path(context) + "missing field '\(key.stringValue)'"
        case let .typeMismatch(type, context):
            return path(context) + "expected \(type)"
        case let .valueNotFound(type, context):
            return path(context) + "expected \(type), found null"
        case let .dataCorrupted(context):
            return path(context) + (context.underlyingError.map { _ in "malformed JSON" } ?? context.debugDescription)
        @unknown default:
            return "malformed record"
        }
    }
}
