import Foundation
import Testing
@testable import StockwatchCore
@testable import StockwatchStore
@testable import StockwatchServer

@Suite struct PathSafetyTests {
    let store: TemporaryStore
    init() throws { store = try TemporaryStore() }

    func mode(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1
    }

    func folder(_ name: String, mode: mode_t) throws -> String {
        let path = store.folder + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, mode)
        return path
    }

    static let isRoot = geteuid() == 0

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
        let open = try folder("open", mode: 0o777)
        let secret = store.write("open/key", "s3cret")
        let config = store.write("open/config.toml", "[fetch]\nwatch = [\"AAPL\"]\n")

        let database = expectError { _ = try AppDatabase(path: open + "/state.db") }
        #expect(database?.message == "\(open)/state.db is reachable through \(open), which other users may write (mode 777); run 'chmod go-w \(open)' or move it")
        #expect(database?.exitStatus == .config)
        #expect(!FileManager.default.fileExists(atPath: open + "/state.db"))
        #expect(expectError { try SecretReader.checkPrivate(secret) }?.code == "insecure_file")
        let configError = expectError { _ = try ConfigLoader.load(path: config, named: true, environment: [:]) }
        #expect(configError?.message.contains("which other users may write") == true, "\(configError?.message ?? "")")

        // A link in a safe folder to a target in an open one is refused too, and so is a
        // folder open to its group.
        try FileManager.default.createSymbolicLink(atPath: store.folder + "/key-link", withDestinationPath: "open/key")
        #expect(expectError { try SecretReader.checkPrivate(self.store.folder + "/key-link") }?.code == "insecure_file")
        let group = try folder("group", mode: 0o775)
        #expect(expectError { try SecretReader.checkPrivate(self.store.write("group/key", "s3cret")) }?.message.contains("mode 775") == true)
    }

    @Test func anExecProgramOthersCouldSwapIsAConfigError() throws {
        let open = try folder("bin", mode: 0o777)
        let program = store.write("bin/notify.sh", "#!/bin/sh\nexit 0\n", mode: 0o700)
        var channel = ChannelConfig(name: "pager", type: .exec)
        channel.command = [program]
        let error = expectError { _ = try ExecSender(channel: channel) }
        #expect(error?.exitStatus == .config)
        #expect(error?.message.contains("channels.pager.command") == true && error?.message.contains("reachable through \(open)") == true, "\(error?.message ?? "no error")")
    }

    /// A link in the middle of the path (~/.local/state -> /data/shared/state) is followed
    /// and the folders of its target are checked, not only the target's own mode.
    @Test func aLinkInTheMiddleOfThePathIsFollowedAndItsFoldersChecked() throws {
        let shared = try folder("shared", mode: 0o777)
        _ = try folder("shared/state", mode: 0o700)
        try FileManager.default.createSymbolicLink(atPath: store.folder + "/state", withDestinationPath: "shared/state")
        let error = expectError { _ = try AppDatabase(path: self.store.folder + "/state/stockwatch.db") }
        #expect(error?.message.contains("reachable through \(shared)") == true, "\(error?.message ?? "no error")")
        // and a folder that does not exist yet is fine: it is created 0700
        _ = try AppDatabase(path: store.folder + "/new/deeper/stockwatch.db")
        #expect(try mode(store.folder + "/new/deeper") == 0o700)
    }

    /// /tmp-like folders (world-writable and sticky) are fine for files this user owns.
    @Test func aStickyFolderIsFineForOwnFiles() throws {
        let sticky = try folder("sticky", mode: 0o1777)
        _ = try AppDatabase(path: sticky + "/state.db")
        try SecretReader.checkPrivate(store.write("sticky/key", "s3cret"))
    }

    /// Only root can give a file or folder away, which these cases need.
    @Test(.enabled(if: isRoot, "needs root to give files to another user"))
    func anotherUsersFolderOrAnotherUsersEntryInAStickyFolderIsRefused() throws {
        let sticky = try folder("sticky", mode: 0o1777)
        let planted = store.write("sticky/state.db", "")
        chown(planted, 4321, 4321)
        let error = expectError { _ = try AppDatabase(path: planted) }
        #expect(error?.message.contains("belongs to user 4321") == true, "\(error?.message ?? "no error")")
        _ = sticky

        let theirs = try folder("theirs", mode: 0o755)
        chown(theirs, 4321, 4321)
        let owned = expectError { try SecretReader.checkPrivate(self.store.write("theirs/key", "s3cret")) }
        #expect(owned?.message.contains("which user 4321 owns") == true, "\(owned?.message ?? "no error")")
    }

    /// The folder the disk-full and read-only messages name, as Foundation's URL gave it.
    @Test func aFilesFolderIsTheOneURLNames() {
        let cwd = FileManager.default.currentDirectoryPath
        for path in ["/var/lib/stockwatch/stockwatch.db", "/stockwatch.db", "stockwatch.db", "state/stockwatch.db", "/a b/ü.db"] {
            #expect(PathSafety.folder(of: path) == URL(fileURLWithPath: path).deletingLastPathComponent().path, "\(path)")
        }
        #expect(PathSafety.folder(of: "x.db") == cwd)
        #expect(PathSafety.folder(of: "/x.db") == "/")
        // The joinable form the path walk and the database's creation use: "" is the root.
        #expect(PathSafety.parent(ofAbsolute: "/x.db") == "")
        #expect(PathSafety.parent(ofAbsolute: "/a b/ü.db") == "/a b")
        #expect(PathSafety.parent(ofAbsolute: "/a/b/") == "/a/b")
    }
}
