import ArgumentParser
import StockwatchCore
import StockwatchModel

struct DBStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the backend, where it is (never a password), the schema version, pending migrations and the rows in each table.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let report = try await DatabaseAdmin.status(try global.location())
        if global.json { Output.json(report) } else { Output.database(report) }
    }
}

extension Output {
    static func database(_ report: DatabaseStatusReport) {
        print("backend: \(report.backend)")
        print("location: \(cell(report.location))")
        print("schema: \(report.schema ?? "none")")
        if !report.applied.isEmpty { print("applied: \(report.applied.joined(separator: ", "))") }
        print("pending migrations: " + (report.pendingMigrations.isEmpty ? "none" : report.pendingMigrations.joined(separator: ", ")))
        if let bytes = report.sizeBytes { print("size: \(bytes / 1024) KiB") }
        if !report.tables.isEmpty {
            print("")
            table(["TABLE", "ROWS"], report.tables.map { [$0.name, String($0.rows)] }, rightAligned: [1])
        }
    }
}
