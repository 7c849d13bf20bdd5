import Foundation

/// Refuses a path another user could swap: the database, the config and secret files are
/// trusted only when every folder on the way, the link's and its target's, is closed to
/// other users' writes, as sshd's StrictModes does.
public enum PathSafety {
    /// A folder writable by others is refused unless it is sticky (as /tmp), and then only
    /// an entry in it that this user or root owns.
    public static func check(_ path: String) throws(StockwatchError) {
        var current = absolute(path)
        for _ in 0..<40 {
            try checkFolders(of: current, original: path)
            guard let target = linkTarget(current) else { return }
            current = target
        }
        throw .unavailable("\(path): too many levels of symbolic links")
    }

    /// The final target of `path` through any chain of symbolic links (a dangling link
    /// gives the file it would create).
    public static func resolved(_ path: String) -> String {
        var current = absolute(path)
        for _ in 0..<40 {
            guard let target = linkTarget(current) else { return current }
            current = target
        }
        return current
    }

    private static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    private static func linkTarget(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let target = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if target.hasPrefix("/") { return target }
        let folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        return (folder.isEmpty ? "" : folder) + "/" + target
    }

    /// Walks from / to the entry itself; a folder that does not exist yet is created later
    /// with mode 0700 and cannot be swapped.
    private static func checkFolders(of path: String, original: String) throws(StockwatchError) {
        let parts = path.split(separator: "/").map(String.init)
        var folder = ""
        for (index, part) in parts.enumerated() {
            var info = stat()
            guard stat(folder.isEmpty ? "/" : folder, &info) == 0 else { return }
            let mode = Int(info.st_mode) & 0o7777
            if mode & 0o002 != 0 {
                let child = folder + "/" + part
                var childInfo = stat()
                let sticky = mode & Int(S_ISVTX) != 0
                let childIsSafe = lstat(child, &childInfo) != 0 || childInfo.st_uid == geteuid() || childInfo.st_uid == 0
                if !sticky || !childIsSafe {
                    throw .insecureFolder(path: original, folder: folder.isEmpty ? "/" : folder, mode: mode & 0o777)
                }
            }
            if index < parts.count - 1 { folder += "/" + part }
        }
    }
}
