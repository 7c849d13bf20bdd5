import Foundation

/// Reads alert records straight from JSON bytes, for `alert import` of what `alert list
/// --json` printed: with `JSONDecoder`, decoding was over half of importing 100,000 such
/// records (its keyed containers, dynamic casts and generic metadata per field). It reads
/// exactly what the decoder would, and gives up (nil) on anything it is not sure of: a
/// type it does not expect, an unknown kind, state or trigger, a bad date, a repeated
/// key. The caller then decodes with `JSONDecoder`, whose errors name the record and field.
/// `AlertJSONScanTests` checks both agree.
public enum AlertJSONScan {
    /// The records of a JSON array of alert objects, or nil.
    public static func array(_ data: Data) -> [AlertJSON]? {
        data.withUnsafeBytes { raw -> [AlertJSON]? in
            var scanner = JSONByteScanner(raw.bindMemory(to: UInt8.self))
            guard scanner.consume(UInt8(ascii: "[")) else { return nil }
            var records: [AlertJSON] = []
            if scanner.consume(UInt8(ascii: "]")) { return scanner.atEnd ? records : nil }
            repeat {
                guard let record = scanner.alert() else { return nil }
                records.append(record)
            } while scanner.consume(UInt8(ascii: ","))
            return scanner.consume(UInt8(ascii: "]")) && scanner.atEnd ? records : nil
        }
    }

    /// One record (an NDJSON line, read in place), or nil.
    public static func object(_ data: Data) -> AlertJSON? {
        data.withUnsafeBytes { raw in
            var scanner = JSONByteScanner(raw.bindMemory(to: UInt8.self))
            guard let record = scanner.alert(), scanner.atEnd else { return nil }
            return record
        }
    }
}

/// A cursor over JSON text: whitespace skipped before every token.
struct JSONByteScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var atEnd: Bool {
        mutating get {
            skipSpace()
            return index == bytes.count
        }
    }

    mutating func skipSpace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    mutating func null() -> Bool {
        skipSpace()
        guard index + 4 <= bytes.count, bytes[index] == UInt8(ascii: "n"), bytes[index + 1] == UInt8(ascii: "u"),
            bytes[index + 2] == UInt8(ascii: "l"), bytes[index + 3] == UInt8(ascii: "l")
        else { return false }
        index += 4
        return true
    }

    /// A string without escapes is copied as it stands; one with escapes is decoded.
    mutating func string() -> String? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = index
        var escaped = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                // Invalid UTF-8 is JSONDecoder's to refuse, not ours to repair.
                return escaped ? Self.unescape(raw) : Self.validUTF8(raw)
            }
            if byte < 0x20 { return nil }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 1
            }
            index += 1
        }
        return nil
    }

    /// The text, or nil for invalid UTF-8 (String(validating:) needs macOS 15). ASCII,
    /// nearly every string here, needs no validation, and Foundation's generic
    /// initializer cost a tenth of an import.
    private static func validUTF8(_ bytes: some Collection<UInt8>) -> String? {
        bytes.allSatisfy({ $0 < 0x80 }) ? String(decoding: bytes, as: UTF8.self) : String(bytes: bytes, encoding: .utf8)
    }

    private static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> String? {
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        var i = 0
        func flush() -> Bool {
            guard !utf8.isEmpty else { return true }
            guard let text = validUTF8(utf8) else { return false }
            scalars.append(contentsOf: text.unicodeScalars)
            utf8.removeAll()
            return true
        }
        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= raw.count else { return nil }
            var value: UInt32 = 0
            for byte in raw[at..<(at + 4)] {
                guard let digit = Character(UnicodeScalar(byte)).hexDigitValue else { return nil }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        while i < raw.count {
            guard raw[i] == UInt8(ascii: "\\") else { utf8.append(raw[i]); i += 1; continue }
            guard i + 1 < raw.count else { return nil }
            let simple: UInt8? = switch raw[i + 1] {
            case UInt8(ascii: "\""): 0x22
            case UInt8(ascii: "\\"): 0x5C
            case UInt8(ascii: "/"): 0x2F
            case UInt8(ascii: "b"): 0x08
            case UInt8(ascii: "f"): 0x0C
            case UInt8(ascii: "n"): 0x0A
            case UInt8(ascii: "r"): 0x0D
            case UInt8(ascii: "t"): 0x09
            default: nil
            }
            if let simple { utf8.append(simple); i += 2; continue }
            guard raw[i + 1] == UInt8(ascii: "u"), let unit = hex4(i + 2) else { return nil }
            i += 6
            var scalar = unit
            if (0xD800..<0xDC00).contains(unit) {
                // A high surrogate must be followed by an escaped low one.
                guard i + 1 < raw.count, raw[i] == UInt8(ascii: "\\"), raw[i + 1] == UInt8(ascii: "u"), let low = hex4(i + 2), (0xDC00..<0xE000).contains(low) else { return nil }
                scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                i += 6
            } else if (0xDC00..<0xE000).contains(unit) {
                return nil
            }
            guard let value = UnicodeScalar(scalar), flush() else { return nil }
            scalars.append(value)
        }
        return flush() ? String(scalars) : nil
    }

    /// The text of a JSON number (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?), or nil:
    /// "01", "+1", ".5" and "1." are not JSON, and JSONDecoder refuses them.
    private mutating func numberText() -> Substring? {
        skipSpace()
        let start = index
        func isDigit(_ at: Int) -> Bool { at < bytes.count && bytes[at] >= UInt8(ascii: "0") && bytes[at] <= UInt8(ascii: "9") }
        func digits() -> Bool {
            guard isDigit(index) else { return false }
            while isDigit(index) { index += 1 }
            return true
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        if index < bytes.count, bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if !digits() {
            return nil
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() else { return nil }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() else { return nil }
        }
        return Substring(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
    }

    mutating func double() -> Double? {
        numberText().flatMap { Double($0) }.flatMap { $0.isFinite ? $0 : nil }
    }

    /// Plain integers only; "5.0" and "5e0" are left to JSONDecoder.
    mutating func int64() -> Int64? {
        numberText().flatMap { Int64($0) }
    }

    mutating func optional<T>(_ read: (inout JSONByteScanner) -> T?) -> T?? {
        if null() { return .some(nil) }
        return read(&self).map { .some($0) }
    }

    /// The members of an object, each value read by `member` (false: give up).
    mutating func object(_ member: (String, inout JSONByteScanner) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "{")) else { return false }
        if consume(UInt8(ascii: "}")) { return true }
        repeat {
            guard let key = string(), consume(UInt8(ascii: ":")), member(key, &self) else { return false }
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "}"))
    }

    mutating func alert() -> AlertJSON? {
        var seen = SeenKeys()
        var record = AlertJSON(symbol: "", condition: AlertJSON.ConditionJSON(kind: .above))
        var hasSymbol = false, hasCondition = false
        func set<T>(_ value: T??, _ apply: (T?) -> Void) -> Bool {
            guard let value else { return false }
            apply(value)
            return true
        }
        func date(_ s: inout JSONByteScanner) -> Date? { s.string().flatMap(ValueParser.date) }
        let complete = object { key, s in
            guard seen.first(key, of: Self.alertKeys) else { return false }
            switch key {
            case "id": return set(s.optional { $0.int64() }) { record.id = $0 }
            case "user": return set(s.optional { $0.string() }) { record.user = $0 }
            case "symbol":
                guard let symbol = s.string() else { return false }
                record.symbol = symbol
                hasSymbol = true
                return true
            case "condition":
                guard let condition = s.condition() else { return false }
                record.condition = condition
                hasCondition = true
                return true
            case "trigger": return set(s.optional { $0.string().flatMap(AlertTrigger.init(rawValue:)) }) { record.trigger = $0 }
            case "cooldown_seconds": return set(s.optional { $0.int64() }) { record.cooldownSeconds = $0 }
            case "rearm_margin_percent": return set(s.optional { $0.double() }) { record.rearmMarginPercent = $0 }
            case "channels": return set(s.optional { $0.strings() }) { record.channels = $0 }
            case "state": return set(s.optional { $0.string().flatMap(AlertState.init(rawValue:)) }) { record.state = $0 }
            case "created_at": return set(s.optional(date)) { record.createdAt = $0 }
            case "last_fired_at": return set(s.optional(date)) { record.lastFiredAt = $0 }
            case "expires_at": return set(s.optional(date)) { record.expiresAt = $0 }
            case "snoozed_until": return set(s.optional(date)) { record.snoozedUntil = $0 }
            case "note": return set(s.optional { $0.string() }) { record.note = $0 }
            case "schedule": return set(s.optional { $0.string() }) { record.schedule = $0 }
            case "trailing_from": return set(s.optional { $0.double() }) { record.trailingFrom = $0 }
            // Another key: JSONDecoder ignores it, but its value must still be valid JSON,
            // which only the decoder checks.
            default: return false
            }
        }
        return complete && hasSymbol && hasCondition ? record : nil
    }

    mutating func condition() -> AlertJSON.ConditionJSON? {
        var kind: ConditionKind?
        var value: Double??, percent: Double??, window: Int64??
        var seen = SeenKeys()
        let complete = object { key, s in
            guard seen.first(key, of: Self.conditionKeys) else { return false }
            switch key {
            case "kind": kind = s.string().flatMap(ConditionKind.init(rawValue:)); return kind != nil
            case "value": value = s.optional { $0.double() }; return value != nil
            case "percent": percent = s.optional { $0.double() }; return percent != nil
            case "window_seconds": window = s.optional { $0.int64() }; return window != nil
            default: return false
            }
        }
        guard complete, let kind else { return nil }
        return AlertJSON.ConditionJSON(kind: kind, value: value ?? nil, percent: percent ?? nil, windowSeconds: window ?? nil)
    }

    static let alertKeys = [
        "id", "user", "symbol", "condition", "trigger", "cooldown_seconds", "rearm_margin_percent", "channels", "state",
        "created_at", "last_fired_at", "expires_at", "snoozed_until", "note", "schedule", "trailing_from",
    ]
    static let conditionKeys = ["kind", "value", "percent", "window_seconds"]

    /// Which of an object's known keys were read, as bits: a repeated key is JSONDecoder's
    /// to judge. A set of strings hashed every key, a twentieth of an import.
    struct SeenKeys {
        var bits: UInt32 = 0

        /// False for a key read before; an unknown key passes (the caller gives up on it).
        mutating func first(_ key: String, of keys: [String]) -> Bool {
            guard let index = keys.firstIndex(of: key) else { return true }
            defer { bits |= 1 << index }
            return bits & (1 << index) == 0
        }
    }

    mutating func strings() -> [String]? {
        guard consume(UInt8(ascii: "[")) else { return nil }
        var values: [String] = []
        if consume(UInt8(ascii: "]")) { return values }
        repeat {
            guard let value = string() else { return nil }
            values.append(value)
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "]")) ? values : nil
    }
}
