import Foundation
import GRDB
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchStore
@testable import StockwatchServer

/// A fresh database in its own temporary folder, removed at deinit.
final class TemporaryStore {
    let folder: String
    let database: AppDatabase

    /// `migratedFrom`: the database is first created at that migration (a schema an
    /// earlier release left behind), then opened, which migrates it to today's.
    init(migratedFrom migration: String? = nil) throws {
        folder = NSTemporaryDirectory() + "stockwatch-core-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let migration {
            let old = try DatabaseQueue(path: folder + "/test.db")
            try AppDatabase.migrator.migrate(old, upTo: migration)
            try old.close()
        }
        database = try AppDatabase(path: folder + "/test.db")
    }

    /// The schema of the release before ids were never reused (issue: a removed phone's
    /// retry reached another user's phone).
    static let previousSchema = "v5-notification-ids-never-reused"

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func write(_ name: String, _ contents: String, mode: Int = 0o600) -> String {
        let path = folder + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: mode])
        return path
    }
}

/// A config whose providers are the given fakes, each with a key file when it needs one.
func fakeProviders(_ store: TemporaryStore, _ providers: [(ProviderName, String)], tweak: (inout ProviderConfig) -> Void = { _ in }) -> Config {
    var config = Config()
    for (name, url) in providers {
        var provider = ProviderConfig(name: name)
        provider.baseURL = url
        provider.timeoutSeconds = 2
        if name.needsKey { provider.apiKey = .file(store.write("\(name.rawValue).key", "KEY-\(name.rawValue)")) }
        tweak(&provider)
        config.providers[name.rawValue] = provider
    }
    return config
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
