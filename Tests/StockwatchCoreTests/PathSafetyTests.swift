import Foundation
import Testing
@testable import StockwatchCore

@Suite struct PathSafetyTests {
    let store: TemporaryStore
    init() throws { store = try TemporaryStore() }

    func mode(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1
    }

    /// A database path that is a dangling link: its target used to be created by SQLite
    /// with the umask's mode (0644), readable by every user.
    @Test func aDanglingLinkDatabaseCreatesItsTargetPrivate() throws {
        let target = store.folder + "/real/state.db"
        try FileManager.default.createDirectory(atPath: store.folder + "/real", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: store.folder + "/link.db", withDestinationPath: "real/state.db")
        _ = try AppDatabase(path: store.folder + "/link.db")
        #expect(FileManager.default.fileExists(atPath: target))
        #expect(try mode(target) == 0o600)
    }

    @Test func aDatabaseConfigOrSecretInAFolderOthersMayWriteIsRefused() throws {
        let open = store.folder + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
        chmod(open, 0o777)
        let secret = store.write("open/key", "s3cret")
        let config = store.write("open/config.toml", "[fetch]\nwatch = [\"AAPL\"]\n")

        let database = expectError { _ = try AppDatabase(path: open + "/state.db") }
        #expect(database == .insecureFolder(path: open + "/state.db", folder: open, mode: 0o777))
        #expect(database?.exitStatus == .config)
        #expect(!FileManager.default.fileExists(atPath: open + "/state.db"))
        #expect(expectError { try SecretReader.checkPrivate(secret) } == .insecureFolder(path: secret, folder: open, mode: 0o777))
        let configError = expectError { _ = try ConfigLoader.load(path: config, named: true, environment: [:]) }
        #expect(configError?.message.contains("which other users may write") == true, "\(configError?.message ?? "")")

        // A link in a safe folder to a target in an open one is refused too.
        try FileManager.default.createSymbolicLink(atPath: store.folder + "/key-link", withDestinationPath: secret)
        #expect(expectError { try SecretReader.checkPrivate(self.store.folder + "/key-link") }?.code == "insecure_file")
    }

    /// /tmp-like folders (world-writable and sticky) are fine for files this user owns.
    @Test func aStickyFolderIsFineForOwnFiles() throws {
        let sticky = store.folder + "/sticky"
        try FileManager.default.createDirectory(atPath: sticky, withIntermediateDirectories: true)
        chmod(sticky, 0o1777)
        _ = try AppDatabase(path: sticky + "/state.db")
        try SecretReader.checkPrivate(store.write("sticky/key", "s3cret"))
    }
}
