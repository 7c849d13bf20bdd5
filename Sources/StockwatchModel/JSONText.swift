import Foundation

/// JSON written byte by byte, for the outputs where `JSONEncoder` is the cost (the FCM
/// message, `alert list --json` of 100,000 alerts): the same bytes as `JSONOutput.encoder()`
/// writes for the same values (sorted keys, unescaped slashes), which a test checks.
public struct JSONText: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    /// Punctuation and keys the caller knows need no escaping: `{"id":`.
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func null() { raw("null") }

    /// A string literal, escaped as `JSONEncoder` escapes it: `"` and `\`, the short forms
    /// of backspace, form feed, newline, return and tab, `\u00xx` for the other controls.
    /// The runs between them are copied whole: appended a byte at a time, strings were a
    /// tenth of `alert list --json`'s instructions.
    public mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var start = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                escape(byte)
                start = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func escape(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): raw("\\\"")
        case UInt8(ascii: "\\"): raw("\\\\")
        case 0x08: raw("\\b")
        case 0x0C: raw("\\f")
        case UInt8(ascii: "\n"): raw("\\n")
        case UInt8(ascii: "\r"): raw("\\r")
        case UInt8(ascii: "\t"): raw("\\t")
        default:
            raw("\\u00")
            bytes.append(Self.hexDigits[Int(byte >> 4)])
            bytes.append(Self.hexDigits[Int(byte & 0xF)])
        }
    }

    public mutating func string(_ text: String?) {
        if let text { string(text) } else { null() }
    }

    public mutating func integer(_ value: Int64) { bytes.append(contentsOf: String(value).utf8) }

    public mutating func integer(_ value: Int64?) {
        if let value { integer(value) } else { null() }
    }

    /// As `JSONEncoder` writes a Double: its shortest description without a trailing `.0`.
    public mutating func number(_ value: Double) {
        var text = value.description
        text.withUTF8 { digits in
            // The description is ASCII; removing the suffix from the String cost as much as
            // writing it.
            let whole = digits.count >= 2 && digits[digits.count - 2] == UInt8(ascii: ".") && digits[digits.count - 1] == UInt8(ascii: "0")
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[..<(whole ? digits.count - 2 : digits.count)]))
        }
    }

    public mutating func number(_ value: Double?) {
        if let value { number(value) } else { null() }
    }

    /// `.iso8601` as `JSONEncoder` writes it: whole seconds, UTC, `2026-12-03T09:14:30Z`.
    public mutating func date(_ date: Date?) {
        guard let date else { return null() }
        bytes.append(UInt8(ascii: "\""))
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        digits(Int(parts.tm_year) + 1900, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        bytes.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        raw("Z\"")
    }

    public mutating func strings(_ values: [String]?) {
        guard let values else { return null() }
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            string(value)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// An array of integers as a String: the id lists the store binds for `json_each`
    /// (notify's claims bind two a batch; JSONEncoder was 6% of a claim's time).
    public static func integers(_ values: [Int64]) -> String {
        var json = JSONText(capacity: values.count * 8 + 2)
        json.raw("[")
        for (index, value) in values.enumerated() {
            if index > 0 { json.raw(",") }
            json.integer(value)
        }
        json.raw("]")
        return String(decoding: json.bytes, as: UTF8.self)
    }

    /// A quoted, escaped literal as a String, for bodies built by interpolation.
    public static func quoted(_ text: String) -> String {
        var json = JSONText(capacity: text.utf8.count + 2)
        json.string(text)
        return String(decoding: json.bytes, as: UTF8.self)
    }

    private mutating func digits(_ value: Int, _ width: Int) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
            rest %= divisor
            divisor /= 10
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}

extension AlertJSON {
    /// The object `encode(to:)` writes, keys sorted, byte for byte the same.
    public func write(to json: inout JSONText) {
        json.raw("{\"channels\":")
        json.strings(channels)
        json.raw(",\"condition\":{\"kind\":")
        json.string(condition.kind.rawValue)
        if let percent = condition.percent {
            json.raw(",\"percent\":")
            json.number(percent)
        }
        if let value = condition.value {
            json.raw(",\"value\":")
            json.number(value)
        }
        if let window = condition.windowSeconds {
            json.raw(",\"window_seconds\":")
            json.integer(window)
        }
        json.raw("},\"cooldown_seconds\":")
        json.integer(cooldownSeconds)
        json.raw(",\"created_at\":")
        json.date(createdAt)
        json.raw(",\"expires_at\":")
        json.date(expiresAt)
        json.raw(",\"id\":")
        json.integer(id)
        json.raw(",\"last_fired_at\":")
        json.date(lastFiredAt)
        json.raw(",\"note\":")
        json.string(note)
        json.raw(",\"rearm_margin_percent\":")
        json.number(rearmMarginPercent)
        json.raw(",\"schedule\":")
        json.string(schedule)
        json.raw(",\"snoozed_until\":")
        json.date(snoozedUntil)
        json.raw(",\"state\":")
        json.string(state?.rawValue)
        json.raw(",\"symbol\":")
        json.string(symbol)
        json.raw(",\"trailing_from\":")
        json.number(trailingFrom)
        json.raw(",\"trigger\":")
        json.string(trigger?.rawValue)
        json.raw(",\"user\":")
        json.string(user)
        json.raw("}")
    }
}
