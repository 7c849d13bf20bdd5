import Foundation
import GRDB

/// Runs the built `stockwatch` binary against a temporary database and config folder.
final class Sandbox: @unchecked Sendable {
    struct Result {
        var stdout: String
        var stderr: String
        var status: Int32

        /// Decodes stdout as JSON.
        func json() throws -> Any { try JSONSerialization.jsonObject(with: Data(stdout.utf8), options: [.fragmentsAllowed]) }
    }

    let folder: String
    /// A PostgreSQL database of this sandbox's own instead of the SQLite file.
    let postgres: PostgresCommandTests.Database?
    /// What STOCKWATCH_DB names: the SQLite file, or the PostgreSQL URL.
    var db: String { postgres?.url ?? folder + "/state/stockwatch.db" }

    /// `backend` "postgresql": a new database, migrated, on the server the PG* variables name.
    init(backend: String = "sqlite") throws {
        folder = NSTemporaryDirectory() + "stockwatch-e2e-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        postgres = backend == "postgresql" ? try PostgresCommandTests.Database() : nil
        if postgres != nil {
            let migrated = try run(["db", "migrate"])
            guard migrated.status == 0 else { throw TestFailure("db migrate failed: \(migrated.stderr)") }
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    /// The binary next to the test bundle (swift build puts both in the same folder),
    /// or STOCKWATCH_BIN.
    static let binary: String = {
        if let explicit = ProcessInfo.processInfo.environment["STOCKWATCH_BIN"] { return explicit }
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("stockwatch").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/stockwatch").path
    }()

    /// Environment: the database via STOCKWATCH_DB, config under the sandbox's XDG_CONFIG_HOME.
    var environment: [String: String] {
        [
            "PATH": "/usr/bin:/bin", "HOME": folder, "STOCKWATCH_DB": db,
            "XDG_CONFIG_HOME": folder + "/config", "XDG_STATE_HOME": folder + "/xdg-state",
        ].merging(postgres == nil ? [:] : PostgresCommandTests.server) { $1 }
    }

    @discardableResult
    func run(_ arguments: [String], stdin: String? = nil, extraEnvironment: [String: String] = [:], in directory: String? = nil) throws -> Result {
        let process = try start(arguments, stdin: stdin, extraEnvironment: extraEnvironment, in: directory)
        return try process.finish()
    }

    func start(_ arguments: [String], stdin: String? = nil, extraEnvironment: [String: String] = [:], in directory: String? = nil) throws -> Running {
        let id = UUID().uuidString
        let outPath = folder + "/out-\(id)", errPath = folder + "/err-\(id)"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.environment = environment.merging(extraEnvironment) { $1 }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        if let stdin {
            let inPath = folder + "/in-\(id)"
            FileManager.default.createFile(atPath: inPath, contents: Data(stdin.utf8))
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
        } else {
            process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        }
        try process.run()
        return Running(process: process, outPath: outPath, errPath: errPath)
    }

    struct Running {
        let process: Process
        let outPath: String
        let errPath: String

        func finish() throws -> Result {
            process.waitUntilExit()
            return Result(
                stdout: try String(contentsOfFile: outPath, encoding: .utf8),
                stderr: try String(contentsOfFile: errPath, encoding: .utf8),
                status: process.terminationStatus)
        }
    }

    func write(_ relativePath: String, _ contents: String, mode: Int = 0o600) -> String {
        let path = folder + "/" + relativePath
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: mode])
        return path
    }

    /// Every row of every table, to prove that a rejected command changed nothing.
    func snapshot() throws -> String {
        guard FileManager.default.fileExists(atPath: db) else { return "(no database)" }
        let queue = try DatabaseQueue(path: db)
        return try queue.read { db in
            var text = ""
            let tables = try Row.fetchAll(db, sql: "SELECT name, sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE type = 'table' ORDER BY name")
            for table in tables {
                let name: String = table[0]
                text += "## \(name)\n"
                // A WITHOUT ROWID table has no rowid: its scan is in key order.
                let order = (table[1] as Bool) ? "" : " ORDER BY rowid"
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \"\(name)\"" + order) { text += "\(row)\n" }
            }
            return text
        }
    }

    func count(_ table: String) throws -> Int {
        try DatabaseQueue(path: db).read { try Int.fetchOne($0, sql: "SELECT count(*) FROM \"\(table)\"") ?? 0 }
    }
}
