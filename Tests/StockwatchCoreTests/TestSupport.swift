import Foundation
@testable import StockwatchCore

/// A fresh database in its own temporary folder, removed at deinit.
final class TemporaryStore {
    let folder: String
    let database: AppDatabase

    init() throws {
        folder = NSTemporaryDirectory() + "stockwatch-core-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        database = try AppDatabase(path: folder + "/test.db")
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func write(_ name: String, _ contents: String, mode: Int = 0o600) -> String {
        let path = folder + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: mode])
        return path
    }
}

func expectError(_ body: () throws -> Void) -> StockwatchError? {
    do {
        try body()
        return nil
    } catch let error as StockwatchError {
        return error
    } catch {
        return .internal("unexpected \(error)")
    }
}
