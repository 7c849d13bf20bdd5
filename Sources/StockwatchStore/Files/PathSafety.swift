import Foundation
import StockwatchModel

/// Refuses a path another user could swap: the database, the config, secret files and exec
/// programs are trusted only when every folder on the way to them, through any link, is
/// this user's or root's and closed to others' writes, as sshd's StrictModes does. A
/// folder others may write is allowed only when it is sticky (as /tmp), and then only for
/// an entry in it that this user or root owns.
public enum PathSafety {
    public static func check(_ path: String) throws(StockwatchError) {
        var queue = components(absolute(path))
        var current = ""  // the resolved folder walked so far, free of links; "" is /
        var links = 0
        while !queue.isEmpty {
            let part = queue.removeFirst()
            if part == "." { continue }
            if part == ".." {
                current = parent(ofAbsolute: current)
                continue
            }
            let entry = current + "/" + part
            try checkFolder(current.isEmpty ? "/" : current, entry: entry, path: path)
            var info = stat()
            guard lstat(entry, &info) == 0 else { return }  // created later, by us, mode 0700/0600
            if info.st_mode & S_IFMT == S_IFLNK {
                links += 1
                guard links <= 40, let target = linkTarget(entry) else {
                    throw .unavailable("\(path): too many levels of symbolic links")
                }
                queue = components(target) + queue
                if target.hasPrefix("/") { current = "" }
                continue
            }
            current = entry
        }
    }

    /// The final target of `path` through any chain of symbolic links (a dangling link
    /// gives the file it would create).
    public static func resolved(_ path: String) -> String {
        var current = absolute(path)
        for _ in 0..<40 {
            guard let target = linkTarget(current) else { return current }
            if target.hasPrefix("/") {
                current = target
            } else {
                current = parent(ofAbsolute: current) + "/" + target
            }
        }
        return current
    }

    /// The folder that holds `path`, absolute ("/" for a file at the root). Not Foundation's
    /// URL, whose first use costs a cold reading command about 0.7M instructions.
    public static func folder(of path: String) -> String {
        let parent = parent(ofAbsolute: absolute(path))
        return parent.isEmpty ? "/" : parent
    }

    /// An absolute path without its last component, "" for one at the root: the form that
    /// `+ "/" + name` extends. Not NSString.deletingLastPathComponent, which traps on a
    /// one-character path.
    static func parent(ofAbsolute path: String) -> String {
        path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
    }

    private static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    private static func components(_ path: String) -> [String] {
        path.split(separator: "/").map(String.init)
    }

    private static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func checkFolder(_ folder: String, entry: String, path: String) throws(StockwatchError) {
        var info = stat()
        guard stat(folder, &info) == 0 else { return }
        let me = geteuid()
        guard info.st_uid == me || info.st_uid == 0 else {
            throw .insecureFolder(path: path, folder: folder, reason: "which user \(info.st_uid) owns (only this user or root may own the folders on the way)")
        }
        let mode = Int(info.st_mode) & 0o7777
        guard mode & 0o022 != 0 else { return }
        guard mode & Int(S_ISVTX) != 0 else {
            throw .insecureFolder(path: path, folder: folder, reason: "which other users may write (mode \(String(mode & 0o777, radix: 8))); run 'chmod go-w \(folder)' or move it")
        }
        var child = stat()
        if lstat(entry, &child) == 0, child.st_uid != me, child.st_uid != 0 {
            throw .insecureFolder(path: path, folder: folder, reason: "where \(entry) belongs to user \(child.st_uid) and others may write")
        }
    }
}
