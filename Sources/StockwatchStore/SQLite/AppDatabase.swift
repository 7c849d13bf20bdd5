import CSQLiteSettings
import Foundation
import GRDB
import StockwatchModel

/// The one SQLite file holding all state. Opening it runs the migrations; every write
/// goes through `write`, which GRDB begins as `BEGIN IMMEDIATE` so that concurrent
/// cron processes queue on the busy timeout instead of failing with SQLITE_BUSY.
public final class AppDatabase: Sendable {
    public let writer: any DatabaseWriter
    public let path: String

    /// Process-wide SQLite settings, once, before this process's first connection opens:
    /// SQLITE_OK, or SQLITE_MISUSE when a connection opened without `AppDatabase` first
    /// (a test's), which leaves SQLite's defaults.
    static let sqliteSettings: Int32 = stockwatch_sqlite_memory_statistics_off()

    /// How long a process waits for another's write lock before giving up.
    public static let busyTimeout: TimeInterval = 10
    /// The page size of a database this binary creates (see `configuration`).
    public static let pageSize = 8192

    /// Whether this is the one read-only connection `readOnly` asked for (not a writer's,
    /// as for a file that did not exist or was not migrated yet).
    public var isReadOnly: Bool { writer.configuration.readonly }

    /// `readOnly`: for a command that only reads (a listing, history, status). When the file
    /// exists with every migration applied it opens one read-only connection, which writes
    /// nothing: no WAL set-up transaction and no checkpoint at close, about 6 ms of a
    /// cold start. Otherwise it opens as a writer would, creating and migrating.
    public init(path: String, readOnly: Bool = false) throws(StockwatchError) {
        _ = Self.sqliteSettings
        self.path = path
        if readOnly, let queue = Self.openReadOnly(path) {
            writer = queue
            return
        }
        do {
            try Self.createFileIfMissing(path)
            // A file not yet in WAL mode (a new one) is switched by its first writer, which
            // needs the only lock on it: another process opening it meanwhile got
            // SQLITE_BUSY at once, with no busy timeout (seen with 6 processes adding
            // alerts to a new database on a loaded machine). They take turns until the
            // switch and the migrations are done; a WAL file is opened without the turn.
            let pool = try Self.inTurn(path, unless: Self.isInWALMode(path)) {
                let pool = try DatabasePool(path: path, configuration: Self.configuration(readOnly: false))
                try Self.migrate(pool, path: path, inTurn: $0)
                return pool
            }
            writer = pool
        } catch {
            throw Self.translate(error, path: path)
        }
    }

    /// One read-only connection, or nil when the writer's open must decide (a new or older
    /// file, a file or file system this user cannot write, or any failure, which that open
    /// then reports: a read works where a write would, and fails where it would, the same
    /// way). A queue, not a pool: a pool opens a writer connection beside its reader, and
    /// each reads the schema.
    private static func openReadOnly(_ path: String) -> DatabaseQueue? {
        let file = PathSafety.resolved(path)
        guard (try? PathSafety.check(path)) != nil, access(file, F_OK) == 0, whyNotWritable(file) == nil,
              let queue = try? DatabaseQueue(path: path, configuration: configuration(readOnly: true)),
              (try? queue.read(isMigrated)) == true
        else { return nil }
        return queue
    }

    private static func configuration(readOnly: Bool) -> Configuration {
        var config = Configuration()
        config.readonly = readOnly
        config.busyMode = .timeout(Self.busyTimeout)
        config.foreignKeysEnabled = true
        config.prepareDatabase { db in
            // NORMAL is crash-safe in WAL mode and avoids an fsync per commit.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // 48 MiB of page cache for the writer (the default is 2 MiB): evaluate
            // touches every page of the alerts table. 64 MiB was no faster and held
            // 16 MiB more at 1,000,000 alerts near the price (issue 19's 150 MB). The
            // readers keep the default: they scan (alert list, history, db copy) and
            // would only fill a big cache with pages they pass once (12 MiB more for a
            // list of 100,000 alerts).
            if !db.configuration.readonly {
                // 8 KiB pages for a new file (before its first table; an existing file
                // keeps its own, and `db copy` to a new file converts it). Half the page
                // reads of evaluate's seeks and row fetches: 1,000,000 alerts near the
                // price judged in 11% less time, 100,000 in 3% less, notify unchanged.
                // 16 KiB saved 17% there but cost notify 10%: its small commits write
                // whole pages to the WAL (docs/benchmarks.md, thirty-third session).
                try db.execute(sql: "PRAGMA page_size = \(Self.pageSize)")
                try db.execute(sql: "PRAGMA cache_size = -49152")
            }
            // Temp tables (evaluate's batch) stay in memory.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        return config
    }

    /// Creates a new database file with mode 0600 before SQLite opens it: quotes and
    /// alerts are private, and SQLite gives the -wal and -shm files the same mode. A path
    /// that is a link (dangling or not) is followed, so its target gets that mode too.
    private static func createFileIfMissing(_ given: String) throws(StockwatchError) {
        try PathSafety.check(given)
        let path = PathSafety.resolved(given)
        let fm = FileManager.default
        if fm.fileExists(atPath: path) { return }
        let parent = PathSafety.parent(ofAbsolute: path)
        if !parent.isEmpty {
            do {
                try fm.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw .unavailable("cannot create database folder \(parent): \(error.localizedDescription)")
            }
        }
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        if fd >= 0 {
            close(fd)
        } else if errno != EEXIST {  // EEXIST: another process created it first
            throw .unavailable("cannot create database \(path): \(String(cString: strerror(errno)))")
        }
        // Again, now that the folders and the file exist: in a folder others may write
        // (a sticky one such as /tmp), another user may have made one of them first.
        try PathSafety.check(given)
    }

    /// Whether every migration is applied: they apply in order, so the newest one being
    /// recorded is enough (what `hasCompletedMigrations` answers). Through the C API:
    /// GRDB's generic fetching costs a cold start a million more instructions, most of
    /// them the runtime's first protocol conformance lookups.
    @Sendable private static func isMigrated(_ db: Database) throws -> Bool {
        guard let newest = migrator.migrations.last else { return true }
        let table = try RawStatement(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'grdb_migrations'")
        defer { table.reset() }
        guard try table.step() else { return false }
        let applied = try RawStatement(db, "SELECT 1 FROM grdb_migrations WHERE identifier = ?")
        applied.bind(1, newest)
        defer { applied.reset() }
        return try applied.step()
    }

    /// Two processes opening a new database at once would both see no migration applied
    /// and both run them; a lock on a sidecar file (never the database file itself, whose
    /// POSIX locks SQLite owns) serialises them. Cheap when nothing is pending.
    /// `inTurn`: the caller already holds that lock.
    private static func migrate(_ writer: DatabasePool, path: String, inTurn: Bool) throws {
        if try writer.writeWithoutTransaction(isMigrated) { return }
        try Self.inTurn(path, unless: inTurn) { _ in
            // Migrations build indexes over whole tables, and with temp_store = MEMORY (for
            // evaluate's small temporary tables) their sorts held every key in memory:
            // v20 on 2,000,000 notifications peaked at 427 MB, 130 MB sorting in files.
            try writer.writeWithoutTransaction { try $0.execute(sql: "PRAGMA temp_store = FILE") }
            defer { try? writer.writeWithoutTransaction { try $0.execute(sql: "PRAGMA temp_store = MEMORY") } }
            try migrator.migrate(writer)
        }
    }

    /// `body` holding the sidecar lock `DB.migrate-lock` (it is passed true), or without
    /// it when `unless` is true (passed false).
    private static func inTurn<T>(_ path: String, unless: Bool, _ body: (Bool) throws -> T) throws -> T {
        if unless { return try body(false) }
        let lockPath = path + ".migrate-lock"
        let fd = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StockwatchError.unavailable("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw StockwatchError.unavailable("cannot lock \(lockPath)") }
        defer { flock(fd, LOCK_UN) }
        return try body(true)
    }

    /// Whether the file's header says WAL mode (bytes 18 and 19 of a database in WAL mode
    /// are 2: sqlite.org/fileformat.html); false for a new, empty file.
    private static func isInWALMode(_ path: String) -> Bool {
        let fd = open(PathSafety.resolved(path), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 20)
        guard pread(fd, &header, 20, 0) == 20 else { return false }
        return header[18] == 2 && header[19] == 2
    }

    public func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws(StockwatchError) -> T {
        do { return try writer.read(body) } catch { throw Self.translate(error, path: path) }
    }

    /// One IMMEDIATE transaction: all of `body` is committed or none of it.
    public func write<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws(StockwatchError) -> T {
        do { return try writer.write(body) } catch { throw Self.translate(error, path: path) }
    }

    /// `write` for async code: the caller suspends instead of blocking its thread, so an
    /// event loop keeps doing I/O (notify's sends) while the transaction runs.
    public func writeAsync<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StockwatchError) -> T {
        do { return try await writer.write(body) } catch { throw Self.translate(error, path: path) }
    }

    /// Less than 1 MiB left for this user on the database's writable file system (a
    /// read-only one, such as squashfs, reports no space left: that is not "full").
    static func folderIsFull(_ path: String) -> Bool {
        var fs = statvfs()
        guard statvfs(PathSafety.folder(of: path), &fs) == 0 else { return false }
        guard fs.f_flag & UInt(ST_RDONLY) == 0 else { return false }
        return UInt64(fs.f_bavail) * UInt64(fs.f_frsize) < 1 << 20
    }

    /// Why the database cannot be written, when the file system says so: every command,
    /// reads included, needs to write `DB-wal` and `DB-shm` beside the file.
    static func whyNotWritable(_ path: String) -> String? {
        let folder = PathSafety.folder(of: path)
        var fs = statvfs()
        if statvfs(folder, &fs) == 0, fs.f_flag & UInt(ST_RDONLY) != 0 {
            return "\(folder) is on a read-only file system"
        }
        if access(path, F_OK) == 0, access(path, W_OK) != 0 { return "the file is read-only for this user" }
        if access(folder, W_OK) != 0 { return "this user cannot write to \(folder), where SQLite keeps its -wal and -shm files" }
        return nil
    }

    /// Maps SQLite failures to the documented error cases; our own errors pass through.
    static func translate(_ error: any Error, path: String) -> StockwatchError {
        if let error = error as? StockwatchError { return error }
        guard let dbError = error as? DatabaseError else {
            return .internal(String(describing: error))
        }
        let detail = dbError.message ?? "\(dbError.resultCode)"
        switch dbError.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return .temporary("database \(path) is busy (another process held it for over \(Int(busyTimeout)) s); try again")
        case .SQLITE_FULL:
            return .temporary("database \(path): disk full; nothing was written")
        case .SQLITE_IOERR where folderIsFull(path), .SQLITE_CANTOPEN where folderIsFull(path):
            // A full disk shows up as an I/O error when SQLite cannot grow its -shm file.
            return .temporary("database \(path): disk full; nothing was written")
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_IOERR:
            // SQLite's own words ("unable to open database file") do not say why.
            return .unavailable("database \(path): \(detail)" + (whyNotWritable(path).map { " (\($0))" } ?? ""))
        case .SQLITE_NOTADB:
            return .unavailable("database \(path): \(detail)")
        case .SQLITE_CONSTRAINT:
            return .internal("database \(path): constraint failed: \(detail)")
        default:
            return .internal("database \(path): \(detail)")
        }
    }
}
