import Foundation
import StockwatchCore
import Testing
import Yams
import StockwatchModel

/// Checks the API's answers against `openapi.yaml` at the package root, so that the
/// document cannot drift from the code: `OpenAPI.validate(body, path: "/v1/alerts/{id}",
/// method: "get", status: 200)` throws unless the operation documents that status with a
/// JSON schema the body satisfies.
///
/// It implements the subset of JSON Schema (2020-12, as in OpenAPI 3.1) the document uses:
/// `$ref`, `type` (also arrays such as `[string, "null"]`), `enum`, `required`, `properties`,
/// `additionalProperties`, `items`, `minItems`/`maxItems`, `minLength`/`maxLength`, `pattern`,
/// `minimum`/`maximum` and their exclusive forms, and `oneOf`. Annotations (`description`, `format`,
/// `default`, ...) are ignored; any other keyword is reported as unsupported rather than
/// silently passed, so the document cannot promise more than this checks.
enum OpenAPI {
    /// The document's location: Tests/StockwatchEndToEndTests/ -> ../../openapi.yaml.
    static let documentURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("openapi.yaml")

    /// A failed check; `description` lists each failure as `JSON path: what failed`.
    struct Failure: Error, CustomStringConvertible, Sendable {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Validates a response body against the schema the document gives for this operation
    /// and status. `path` is the template as written in the document, e.g. "/v1/alerts/{id}".
    static func validate(_ body: Data, path: String, method: String, status: Int) throws {
        let document = try self.document()
        let (schema, location) = try responseSchema(in: document, path: path, method: method, status: status)
        let instance = try parse(body, what: "\(method.uppercased()) \(path) \(status) body")
        try check(instance, against: schema, at: location, in: document)
    }

    /// Validates a JSON text against `#/components/schemas/NAME` (e.g. the stream's messages).
    static func validate(_ body: Data, schema name: String) throws {
        let document = try self.document()
        let pointer = "#/components/schemas/\(name)"
        let schema = try resolve(pointer, in: document)
        let instance = try parse(body, what: "\(name) message")
        try check(instance, against: schema, at: pointer, in: document)
    }

    // MARK: - The document

    /// The parsed document, loaded once. `Node` is a Sendable value, so a plain `static let`.
    static let loaded: Result<Node, Failure> = {
        do {
            let text = try String(contentsOf: documentURL, encoding: .utf8)
            guard let root = try Yams.load(yaml: text) else { return .failure(Failure("\(documentURL.path) is empty")) }
            return .success(try Node(yaml: root, at: "#"))
        } catch let failure as Failure {
            return .failure(Failure("\(documentURL.path): \(failure.description)"))
        } catch {
            return .failure(Failure("cannot load \(documentURL.path): \(error)"))
        }
    }()

    static func document() throws -> Node { try loaded.get() }

    /// A JSON (or YAML) value: both the document and the bodies it describes.
    indirect enum Node: Sendable, Decodable, CustomStringConvertible {
        case null
        case bool(Bool)
        case int(Int64)
        case double(Double)
        case string(String)
        case array([Node])
        case object([String: Node])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Int64.self) {
                self = .int(value)
            } else if let value = try? container.decode(Double.self) {
                self = .double(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else if let value = try? container.decode([Node].self) {
                self = .array(value)
            } else {
                self = .object(try container.decode([String: Node].self))
            }
        }

        /// From `Yams.load(yaml:)`'s `Any`. Mapping keys become strings (`200:` and `'200':` alike).
        init(yaml value: Any, at pointer: String) throws {
            switch value {
            case is NSNull: self = .null
            case let value as Bool: self = .bool(value)
            case let value as Int: self = .int(Int64(value))
            case let value as Double: self = .double(value)
            case let value as String: self = .string(value)
            case let value as [Any]:
                self = .array(try value.enumerated().map { try Node(yaml: $0.element, at: "\(pointer)/\($0.offset)") })
            case let value as [AnyHashable: Any]:
                var object: [String: Node] = [:]
                for (key, element) in value {
                    let name = key.base as? String ?? "\(key.base)"
                    object[name] = try Node(yaml: element, at: "\(pointer)/\(name)")
                }
                self = .object(object)
            default:
                // A YAML timestamp, binary or set: quote it in the document.
                throw Failure("\(pointer): unsupported YAML value \(type(of: value)) \(value) (quote it)")
            }
        }

        subscript(key: String) -> Node? {
            if case let .object(object) = self { object[key] } else { nil }
        }

        var string: String? { if case let .string(value) = self { value } else { nil } }
        var object: [String: Node]? { if case let .object(value) = self { value } else { nil } }
        var array: [Node]? { if case let .array(value) = self { value } else { nil } }
        var number: Double? {
            switch self {
            case let .int(value): Double(value)
            case let .double(value): value
            default: nil
            }
        }

        /// JSON equality: numbers compare by value (1 == 1.0), objects ignore key order.
        func sameJSON(as other: Node) -> Bool {
            switch (self, other) {
            case (.null, .null): return true
            case let (.bool(a), .bool(b)): return a == b
            case let (.string(a), .string(b)): return a == b
            case let (.array(a), .array(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.sameJSON(as: $1) }
            case let (.object(a), .object(b)):
                return a.count == b.count && a.allSatisfy { key, value in b[key].map { value.sameJSON(as: $0) } ?? false }
            default:
                if let a = number, let b = other.number { return a == b }
                return false
            }
        }

        /// Compact JSON, for messages.
        var description: String {
            switch self {
            case .null: "null"
            case let .bool(value): "\(value)"
            case let .int(value): "\(value)"
            case let .double(value): value == value.rounded() && abs(value) < 1e15 ? "\(Int64(value))" : "\(value)"
            case let .string(value): Self.quoted(value)
            case let .array(values): "[" + values.map(\.description).joined(separator: ",") + "]"
            case let .object(object):
                "{" + object.keys.sorted().map { "\(Self.quoted($0)):\(object[$0]!.description)" }.joined(separator: ",") + "}"
            }
        }

        /// The JSON Schema type names this value has ("integer" values are also "number").
        var typeNames: [String] {
            switch self {
            case .null: ["null"]
            case .bool: ["boolean"]
            case .int: ["integer", "number"]
            case let .double(value): value.isFinite && value == value.rounded() ? ["integer", "number"] : ["number"]
            case .string: ["string"]
            case .array: ["array"]
            case .object: ["object"]
            }
        }

        static func quoted(_ text: String) -> String {
            let data = (try? JSONEncoder().encode(text)) ?? Data()
            let quoted = String(decoding: data, as: UTF8.self)
            return quoted.count > 80 ? String(quoted.prefix(77)) + "...\"" : quoted
        }
    }

    static func parse(_ body: Data, what: String) throws -> Node {
        do {
            return try JSONDecoder().decode(Node.self, from: body)
        } catch {
            let text = String(decoding: body.prefix(200), as: UTF8.self)
            throw Failure("\(what) is not JSON: \(text.debugDescription)")
        }
    }

    /// Resolves a local reference such as `#/components/schemas/Alert` (JSON Pointer, with
    /// `~1` for `/` and `~0` for `~`).
    static func resolve(_ reference: String, in document: Node) throws -> Node {
        guard reference == "#" || reference.hasPrefix("#/") else {
            throw Failure("$ref '\(reference)': only references within openapi.yaml (#/...) are supported")
        }
        var node = document
        for token in reference.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
            let key = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if case let .array(values) = node, let index = Int(key), values.indices.contains(index) {
                node = values[index]
            } else if let next = node[key] {
                node = next
            } else {
                throw Failure("$ref '\(reference)' does not resolve (no '\(key)')")
            }
        }
        return node
    }

    /// Follows `$ref` until an object without one (for responses, parameters, ...).
    static func dereference(_ node: Node, in document: Node) throws -> Node {
        var node = node, seen = Set<String>()
        while let reference = node["$ref"]?.string {
            guard seen.insert(reference).inserted else { throw Failure("$ref cycle through '\(reference)'") }
            node = try resolve(reference, in: document)
        }
        return node
    }

    static let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    /// The JSON schema of one documented response, and where it is (for messages).
    static func responseSchema(in document: Node, path: String, method: String, status: Int) throws -> (Node, String) {
        let method = method.lowercased()
        guard let paths = document["paths"]?.object else { throw Failure("openapi.yaml has no paths") }
        guard let item = paths[path] else {
            throw Failure("path '\(path)' is not documented in openapi.yaml (documented: \(paths.keys.sorted().joined(separator: ", ")))")
        }
        let pathItem = try dereference(item, in: document)
        guard let operation = pathItem[method] else {
            let documented = methods.filter { pathItem[$0] != nil }.map { $0.uppercased() }
            throw Failure("\(method.uppercased()) \(path) is not documented in openapi.yaml (documented: \(documented.joined(separator: ", ")))")
        }
        guard let responses = operation["responses"]?.object else {
            throw Failure("\(method.uppercased()) \(path) has no responses in openapi.yaml")
        }
        let range = "\(status / 100)XX"
        guard let key = [String(status), range, "default"].first(where: { responses[$0] != nil }), let found = responses[key] else {
            throw Failure("\(method.uppercased()) \(path) does not document status \(status) (documented: \(responses.keys.sorted().joined(separator: ", ")))")
        }
        let response = try dereference(found, in: document)
        guard let schema = response["content"]?["application/json"]?["schema"] else {
            throw Failure("\(method.uppercased()) \(path) \(key) has no application/json schema in openapi.yaml")
        }
        let location = "#/paths/\(path.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1"))/\(method)/responses/\(key)"
        return (schema, location)
    }

    // MARK: - JSON Schema

    /// Keywords that only annotate; they never make a body fail.
    static let annotations: Set<String> = [
        "description", "title", "summary", "format", "example", "examples", "default", "deprecated",
        "readOnly", "writeOnly", "$comment", "externalDocs", "xml", "discriminator",
    ]
    /// Keywords this validator checks.
    static let assertions: Set<String> = [
        "$ref", "type", "enum", "required", "properties", "additionalProperties", "items", "minItems", "maxItems",
        "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "oneOf",
    ]

    /// Throws one `Failure` listing every way `instance` fails `schema`.
    static func check(_ instance: Node, against schema: Node, at location: String, in document: Node) throws {
        var failures: [String] = []
        try check(instance, path: "$", schema: schema, location: location, document: document, failures: &failures, depth: 0)
        guard failures.isEmpty else {
            let shown = failures.prefix(20) + (failures.count > 20 ? ["... and \(failures.count - 20) more"] : [])
            throw Failure("body does not match \(location):\n" + shown.joined(separator: "\n"))
        }
    }

    /// Body mismatches go to `failures`; problems of the document itself are thrown.
    private static func check(_ instance: Node, path: String, schema: Node, location: String, document: Node, failures: inout [String], depth: Int) throws {
        guard depth < 64 else { throw Failure("\(location): schema nested too deep (a $ref cycle?)") }
        if case let .bool(allowed) = schema {
            if !allowed { failures.append("\(path): no value is allowed here") }
            return
        }
        guard let keywords = schema.object else { throw Failure("\(location): a schema must be an object or a boolean, not \(schema)") }
        if let unknown = keywords.keys.sorted().first(where: { !assertions.contains($0) && !annotations.contains($0) && !$0.hasPrefix("x-") }) {
            throw Failure("\(location): schema keyword '\(unknown)' is not supported by OpenAPIValidator.swift")
        }
        if let reference = keywords["$ref"] {
            guard let text = reference.string else { throw Failure("\(location): $ref must be a string") }
            try check(instance, path: path, schema: try resolve(text, in: document), location: text, document: document, failures: &failures, depth: depth + 1)
        }

        if let type = keywords["type"] {
            let allowed: [String]
            switch type {
            case let .string(name): allowed = [name]
            case let .array(names) where names.allSatisfy({ $0.string != nil }): allowed = names.compactMap(\.string)
            default: throw Failure("\(location)/type must be a type name or an array of them")
            }
            guard instance.typeNames.contains(where: allowed.contains) else {
                failures.append("\(path): expected \(allowed.joined(separator: " or ")), found \(instance.typeNames[0]) \(instance)")
                return
            }
        }

        if let alternatives = keywords["oneOf"] {
            guard let schemas = alternatives.array, !schemas.isEmpty else { throw Failure("\(location)/oneOf must be a non-empty array") }
            var matching = 0
            var reasons: [String] = []
            for (index, alternative) in schemas.enumerated() {
                var own: [String] = []
                try check(instance, path: path, schema: alternative, location: "\(location)/oneOf/\(index)", document: document, failures: &own, depth: depth + 1)
                if own.isEmpty { matching += 1 } else { reasons += own }
            }
            if matching != 1 {
                failures.append("\(path): matches \(matching) of the \(schemas.count) oneOf schemas, not exactly one" + (matching == 0 ? " (\(reasons.joined(separator: "; ")))" : ""))
            }
        }

        if let values = keywords["enum"] {
            guard let values = values.array else { throw Failure("\(location)/enum must be an array") }
            if !values.contains(where: { $0.sameJSON(as: instance) }) {
                failures.append("\(path): \(instance) not in enum \(Node.array(values))")
            }
        }

        if let number = instance.number {
            func bound(_ name: String) throws -> Double? {
                guard let value = keywords[name] else { return nil }
                guard let limit = value.number else { throw Failure("\(location)/\(name) must be a number") }
                return limit
            }
            if let limit = try bound("minimum"), number < limit { failures.append("\(path): \(instance) is less than the minimum \(limit.plain)") }
            if let limit = try bound("maximum"), number > limit { failures.append("\(path): \(instance) is more than the maximum \(limit.plain)") }
            if let limit = try bound("exclusiveMinimum"), number <= limit { failures.append("\(path): \(instance) is not more than \(limit.plain)") }
            if let limit = try bound("exclusiveMaximum"), number >= limit { failures.append("\(path): \(instance) is not less than \(limit.plain)") }
        }

        if let text = instance.string {
            let length = text.unicodeScalars.count
            if let limit = try count("minLength", keywords, location), length < limit { failures.append("\(path): \(instance) is shorter than \(limit) characters") }
            if let limit = try count("maxLength", keywords, location), length > limit { failures.append("\(path): \(instance) is longer than \(limit) characters") }
            if let pattern = keywords["pattern"] {
                guard let pattern = pattern.string, let regex = try? NSRegularExpression(pattern: pattern) else {
                    throw Failure("\(location)/pattern is not a valid regular expression")
                }
                if regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) == nil {
                    failures.append("\(path): \(instance) does not match the pattern \(pattern)")
                }
            }
        }

        if let elements = instance.array {
            if let limit = try count("minItems", keywords, location), elements.count < limit { failures.append("\(path): \(elements.count) items, fewer than \(limit)") }
            if let limit = try count("maxItems", keywords, location), elements.count > limit { failures.append("\(path): \(elements.count) items, more than \(limit)") }
            if let items = keywords["items"] {
                for (index, element) in elements.enumerated() {
                    try check(element, path: "\(path)[\(index)]", schema: items, location: "\(location)/items", document: document, failures: &failures, depth: depth + 1)
                }
            }
        }

        if let object = instance.object {
            if let required = keywords["required"] {
                guard let names = required.array?.compactMap(\.string) else { throw Failure("\(location)/required must be an array of names") }
                for name in names where object[name] == nil {
                    failures.append("\(path): missing required key \(Node.quoted(name))")
                }
            }
            if let properties = keywords["properties"], properties.object == nil { throw Failure("\(location)/properties must be an object") }
            let properties = keywords["properties"]?.object ?? [:]
            for key in object.keys.sorted() {
                let childPath = path + member(key)
                if let property = properties[key] {
                    try check(object[key]!, path: childPath, schema: property, location: "\(location)/properties/\(key)", document: document, failures: &failures, depth: depth + 1)
                } else if let additional = keywords["additionalProperties"] {
                    if case .bool(false) = additional {
                        failures.append("\(path): unexpected key \(Node.quoted(key)) (additionalProperties is false)")
                    } else {
                        try check(object[key]!, path: childPath, schema: additional, location: "\(location)/additionalProperties", document: document, failures: &failures, depth: depth + 1)
                    }
                }
            }
        }
    }

    private static func count(_ name: String, _ keywords: [String: Node], _ location: String) throws -> Int? {
        guard let value = keywords[name] else { return nil }
        guard case let .int(limit) = value, limit >= 0 else { throw Failure("\(location)/\(name) must be a whole number") }
        return Int(limit)
    }

    /// `.key`, or `["odd key"]` when the key is not an identifier.
    private static func member(_ key: String) -> String {
        let identifier = key.first.map { $0 == "_" || ($0.isASCII && $0.isLetter) } == true
            && key.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
        return identifier ? ".\(key)" : "[\(Node.quoted(key))]"
    }

    // MARK: - Walking the document (for the tests below)

    /// Every `$ref` in the document, with where it is.
    static func references(in node: Node, at pointer: String = "#") -> [(pointer: String, reference: String)] {
        switch node {
        case let .object(object):
            var found: [(String, String)] = []
            if let reference = object["$ref"]?.string { found.append((pointer, reference)) }
            for key in object.keys.sorted() where key != "$ref" {
                found += references(in: object[key]!, at: "\(pointer)/\(key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1"))")
            }
            return found
        case let .array(values):
            return values.enumerated().flatMap { references(in: $0.element, at: "\(pointer)/\($0.offset)") }
        default:
            return []
        }
    }

    /// Every documented operation as "METHOD /path".
    static func operations(in document: Node) throws -> Set<String> {
        var found = Set<String>()
        for (path, item) in document["paths"]?.object ?? [:] {
            let item = try dereference(item, in: document)
            for method in methods where item[method] != nil { found.insert("\(method.uppercased()) \(path)") }
        }
        return found
    }

    static let typeNames: Set<String> = ["null", "boolean", "integer", "number", "string", "array", "object"]

    /// Schemas anywhere in the document (components, media types, parameters) that use a
    /// keyword or type name this validator does not check.
    static func schemaProblems(in document: Node) -> [String] {
        var problems: [String] = []
        func walkSchema(_ schema: Node, _ location: String) {
            if case .bool = schema { return }
            guard let keywords = schema.object else { return problems.append("\(location): a schema must be an object or a boolean") }
            for key in keywords.keys.sorted() where !assertions.contains(key) && !annotations.contains(key) && !key.hasPrefix("x-") {
                problems.append("\(location): keyword '\(key)' is not supported by OpenAPIValidator.swift")
            }
            if let type = keywords["type"] {
                let names = type.string.map { [Node.string($0)] } ?? type.array ?? [type]
                for name in names where !(name.string.map(typeNames.contains) ?? false) {
                    problems.append("\(location)/type: \(name) is not a type name (quote \"null\")")
                }
            }
            for (name, property) in keywords["properties"]?.object ?? [:] { walkSchema(property, "\(location)/properties/\(name)") }
            if let items = keywords["items"] { walkSchema(items, "\(location)/items") }
            for (index, alternative) in (keywords["oneOf"]?.array ?? []).enumerated() { walkSchema(alternative, "\(location)/oneOf/\(index)") }
            if let additional = keywords["additionalProperties"], additional.object != nil { walkSchema(additional, "\(location)/additionalProperties") }
        }
        func walk(_ node: Node, _ pointer: String) {
            switch node {
            case let .object(object):
                for key in object.keys.sorted() {
                    let child = "\(pointer)/\(key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1"))"
                    if key == "schema" {
                        walkSchema(object[key]!, child)
                    } else if pointer == "#/components", key == "schemas" {
                        for (name, schema) in object[key]?.object ?? [:] { walkSchema(schema, "\(child)/\(name)") }
                    } else {
                        walk(object[key]!, child)
                    }
                }
            case let .array(values):
                for (index, value) in values.enumerated() { walk(value, "\(pointer)/\(index)") }
            default:
                break
            }
        }
        walk(document, "#")
        return problems
    }

    /// Every `example` next to a `schema` (media types, parameters), with where it is.
    static func examples(in node: Node, at pointer: String = "#") -> [(pointer: String, example: Node, schema: Node)] {
        switch node {
        case let .object(object):
            var found: [(String, Node, Node)] = []
            if let example = object["example"], let schema = object["schema"] { found.append((pointer, example, schema)) }
            for key in object.keys.sorted() where key != "schema" && key != "example" {
                found += examples(in: object[key]!, at: "\(pointer)/\(key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1"))")
            }
            return found
        case let .array(values):
            return values.enumerated().flatMap { examples(in: $0.element, at: "\(pointer)/\($0.offset)") }
        default:
            return []
        }
    }
}

private extension Double {
    var plain: String { self == rounded() && abs(self) < 1e15 ? "\(Int64(self))" : "\(self)" }
}

// MARK: - Tests of the document and of the validator itself

@Suite struct OpenAPIDocumentTests {
    @Test func openAPIDocumentIsWellFormed() throws {
        let document = try OpenAPI.document()
        let version = try #require(document["openapi"]?.string)
        #expect(version.hasPrefix("3.1"), "openapi: \(version)")

        // Every $ref resolves.
        let references = OpenAPI.references(in: document)
        #expect(references.count > 20)
        for (pointer, reference) in references {
            do {
                _ = try OpenAPI.resolve(reference, in: document)
            } catch {
                Issue.record("\(pointer): \(error)")
            }
        }

        // Exactly the routes APIServer.apiRouter serves, each documenting its answers.
        let expected: Set<String> = [
            "GET /healthz", "GET /v1/me", "PATCH /v1/me",
            "GET /v1/alerts", "POST /v1/alerts", "GET /v1/alerts/{id}", "DELETE /v1/alerts/{id}",
            "POST /v1/alerts/{id}/pause", "POST /v1/alerts/{id}/resume", "POST /v1/alerts/{id}/snooze", "DELETE /v1/alerts/{id}/snooze",
            "GET /v1/devices", "POST /v1/devices", "DELETE /v1/devices/{id}",
            "GET /v1/quotes", "GET /v1/notifications", "GET /v1/notifications/unread_count",
            "POST /v1/notifications/read", "POST /v1/notifications/dismiss", "GET /v1/stream",
        ]
        let operations = try OpenAPI.operations(in: document)
        #expect(operations == expected)
        for operation in operations {
            let parts = operation.split(separator: " ").map(String.init)
            let responses = document["paths"]?[parts[1]]?[parts[0].lowercased()]?["responses"]?.object ?? [:]
            #expect(responses.keys.contains { $0.hasPrefix("2") || $0 == "101" }, "\(operation) documents no success")
        }

        // The schemas say nothing the validator would silently skip, and the document's
        // own examples satisfy their schemas.
        #expect(OpenAPI.schemaProblems(in: document) == [])
        let examples = OpenAPI.examples(in: document)
        #expect(examples.count >= 3)
        for (pointer, example, schema) in examples {
            do {
                try OpenAPI.check(example, against: schema, at: pointer, in: document)
            } catch {
                Issue.record("\(pointer): \(error)")
            }
        }
    }

    @Test func theOpenAPIValidatorRejectsWrongBodiesAndAcceptsRightOnes() throws {
        // What the server sends: decoded and re-encoded by the real AlertJSON.
        let listed = #"""
            {"channels":["stdout"],"condition":{"kind":"above","value":200},"cooldown_seconds":0,
             "created_at":"2026-11-25T14:04:59Z","expires_at":null,"id":7,"last_fired_at":null,"note":"buy",
             "rearm_margin_percent":0,"state":"armed","symbol":"AAPL","trigger":"rearm","user":"alice"}
            """#
        let alert = try JSONOutput.decoder().decode(AlertJSON.self, from: Data(listed.utf8))
        let encoded = JSONOutput.encode(alert)
        try OpenAPI.validate(Data(encoded.utf8), path: "/v1/alerts/{id}", method: "get", status: 200)
        try OpenAPI.validate(Data("[\(encoded),\(encoded)]\n".utf8), path: "/v1/alerts", method: "GET", status: 200)
        try OpenAPI.validate(Data(#"{"error":{"code":"not_found","message":"no alert '9'"}}"#.utf8), path: "/v1/alerts/{id}", method: "delete", status: 404)
        try OpenAPI.validate(Data(#"{"removed":[7]}"#.utf8), path: "/v1/devices/{id}", method: "delete", status: 200)

        func failure(_ body: String, path: String = "/v1/alerts/{id}", method: String = "get", status: Int = 200) -> String {
            do {
                try OpenAPI.validate(Data(body.utf8), path: path, method: method, status: status)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        func replacing(_ old: String, _ new: String) -> String {
            precondition(encoded.contains(old), old)
            return encoded.replacingOccurrences(of: old, with: new)
        }

        #expect(failure(replacing(#""note":"buy","#, "")).contains(#"$: missing required key "note""#))
        #expect(failure(replacing(#""kind":"above""#, #""kind":"sideways""#)).contains(#"$.condition.kind: "sideways" not in enum"#))
        #expect(failure(replacing(#""state":"armed""#, #""state":"deleted""#)).contains(#"$.state: "deleted" not in enum"#))
        #expect(failure(replacing(#""id":7"#, #""id":"7""#)).contains(#"$.id: expected integer, found string "7""#))
        #expect(failure(replacing(#""id":7"#, #""id":7.5"#)).contains("$.id: expected integer, found number 7.5"))
        #expect(failure(replacing(#""created_at":"2026-11-25T14:04:59Z""#, #""created_at":null"#)).contains("$.created_at: expected string, found null"))
        #expect(failure(replacing(#""created_at":"2026-11-25T14:04:59Z""#, #""created_at":"2026-11-25 14:04""#)).contains("$.created_at: \"2026-11-25 14:04\" does not match the pattern"))
        #expect(failure(replacing(#""cooldown_seconds":0"#, #""cooldown_seconds":-1"#)).contains("$.cooldown_seconds: -1 is less than the minimum 0"))
        #expect(failure(replacing(#""value":200"#, #""value":0"#)).contains("$.condition.value: 0 is not more than 0"))
        #expect(failure(replacing(#""channels":["stdout"]"#, #""channels":[1]"#)).contains("$.channels[0]: expected string, found integer 1"))
        #expect(failure(replacing(#""user":"alice""#, #""user":"alice","token":"x""#)).contains(#"$: unexpected key "token""#))
        // Nullable keys take null or their type, nothing else.
        #expect(failure(replacing(#""note":"buy""#, #""note":null"#)) == "accepted")
        #expect(failure(replacing(#""note":"buy""#, #""note":5"#)).contains("$.note: expected string or null, found integer 5"))
        // Every failure is reported, with its element's index in a list.
        let two = failure("[\(encoded),\(replacing(#""trigger":"rearm""#, #""trigger":"twice""#).replacingOccurrences(of: #""id":7"#, with: #""id":0"#))]", path: "/v1/alerts")
        #expect(two.contains(#"$[1].trigger: "twice" not in enum"#) && two.contains("$[1].id: 0 is less than the minimum 1"), "\(two)")
        #expect(failure("not json").contains("is not JSON"))
        #expect(failure("[]").contains("$: expected object, found array []"))

        // Undocumented paths, methods and statuses are failures too.
        #expect(failure(encoded, path: "/v1/alert/{id}").contains("path '/v1/alert/{id}' is not documented"))
        #expect(failure(encoded, method: "put").contains("PUT /v1/alerts/{id} is not documented"))
        #expect(failure(encoded, status: 418).contains("does not document status 418"))
        #expect(failure("ok\n", path: "/healthz").contains("no application/json schema"))

        // The stream's messages, by schema name.
        try OpenAPI.validate(Data(#"{"observed_at":"2026-11-25T14:04:59Z","price":160,"provider":"file","symbol":"AAPL","type":"quote"}"#.utf8), schema: "StreamQuote")
        #expect(throws: OpenAPI.Failure.self) {
            try OpenAPI.validate(Data(#"{"price":160,"provider":"file","symbol":"AAPL","type":"quote"}"#.utf8), schema: "StreamQuote")
        }

        // oneOf: exactly one alternative.
        try OpenAPI.validate(Data(#"{"ids":[1],"device_id":2}"#.utf8), schema: "NotificationSelection")
        try OpenAPI.validate(Data(#"{"up_to":9}"#.utf8), schema: "NotificationSelection")
        for body in [#"{"ids":[1],"up_to":9}"#, #"{"device_id":2}"#, #"{"ids":null}"#, "{}"] {
            #expect(throws: OpenAPI.Failure.self, "\(body)") { try OpenAPI.validate(Data(body.utf8), schema: "NotificationSelection") }
        }
    }
}
