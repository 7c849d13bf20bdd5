import StockwatchModel

// Every command's result becomes its exit status here and nowhere else: errors by their
// case, and the reports of the commands that can partly succeed by what happened. The CLI
// exits with it; README's and the man page's tables are tested row by row against
// `ExitStatus.meaning`.

/// The documented exit codes (sysexits.h where one fits).
public enum ExitStatus: Int32, CaseIterable, Sendable {
    case success = 0
    case attention = 1
    case usage = 64
    case dataError = 65
    case unavailable = 69
    case software = 70
    case temporary = 75
    case config = 78

    /// The `code` of the JSON error a command that ends with this status writes to stderr.
    public var code: String {
        switch self {
        case .success: "success"
        case .attention: "attention"
        case .usage: "usage"
        case .dataError: "invalid_input"
        case .unavailable: "unavailable"
        case .software: "internal"
        case .temporary: "temporary"
        case .config: "config"
        }
    }

    public var meaning: String {
        switch self {
        case .success: "success"
        case .attention: "status found something that needs attention"
        case .usage: "usage: bad flag, value or combination"
        case .dataError: "data: unknown id, malformed input file"
        case .unavailable: "unavailable: a service or the database cannot be reached"
        case .software: "internal error (a bug)"
        case .temporary: "temporary: retry later (database busy, disk full, tick lock held, partial failure, deliveries waiting for a retry or failed)"
        case .config: "config: bad configuration, missing or insecure secret"
        }
    }
}

extension StockwatchError {
    public var exitStatus: ExitStatus {
        switch self {
        case .invalidValue, .usage, .limitReached: .usage
        case .notFound, .alreadyExists, .invalidInput: .dataError
        case .config, .insecureFile, .insecureFolder: .config
        case .unavailable: .unavailable
        case .temporary: .temporary
        case .internal: .software
        }
    }
}

/// An error inside a report's JSON (tick's failed steps, notify's broken channels).
public struct ErrorJSON: Encodable, Sendable {
    public var code: String
    public var message: String
    public var exitStatus: Int32
    enum CodingKeys: String, CodingKey { case code, message, exitStatus = "exit_status" }
}

extension StockwatchError {
    public var json: ErrorJSON { ErrorJSON(code: code, message: message, exitStatus: exitStatus.rawValue) }
}

extension FetchReport {
    /// 0 all fresh or skipped by budget; 78 a config problem; 69 nothing fetched; 75 partial.
    public var exitStatus: ExitStatus {
        if errors.contains(where: { $0.code == ProviderFailure.Kind.config.rawValue }) { return .config }
        if failedSymbols.isEmpty { return .success }
        return servedSymbols.isEmpty ? .unavailable : .temporary
    }
}

extension NotifyReport {
    /// 0 when everything due was delivered, 75 when some wait for a retry or failed, 78
    /// when a channel's config is broken.
    public var exitStatus: ExitStatus {
        if !configErrors.isEmpty { return .config }
        return deliveries.allSatisfy { $0.status == .sent } ? .success : .temporary
    }
}

extension TickReport {
    /// The first failure in step order, else 0. The history step is best effort: its
    /// errors are in `--json` only (`fetch --history` shows them), so that a symbol Stooq
    /// has no history for does not fail every tick.
    public var exitStatus: ExitStatus {
        if let fetch, fetch.exitStatus != .success { return fetch.exitStatus }
        if let error = errors.first { return error.exitStatus }
        return notify?.exitStatus ?? .success
    }
}

extension StatusReport {
    /// 1 when something needs a person.
    public var exitStatus: ExitStatus { healthy ? .success : .attention }
}
