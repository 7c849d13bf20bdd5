import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

/// Commands that take `PATH|-`: the bytes, and the name errors should use.
enum InputFile {
    static func read(_ path: String) throws(StockwatchError) -> (data: Data, source: String) {
        if path == "-" { return (FileHandle.standardInput.readDataToEndOfFile(), "stdin") }
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw .invalidInput(source: path, position: nil, reason: "cannot read file")
        }
        return (contents, path)
    }

    /// A small input (a token): more than `limit` bytes is refused without reading it all.
    static func read(_ path: String, limit: Int) throws(StockwatchError) -> (data: Data, source: String) {
        let source = path == "-" ? "stdin" : path
        guard let handle = path == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: path),
            let contents = try? handle.read(upToCount: limit + 1) ?? Data()
        else { throw .invalidInput(source: source, position: nil, reason: "cannot read file") }
        guard contents.count <= limit else { throw .invalidInput(source: source, position: nil, reason: "longer than \(limit) bytes") }
        return (contents, source)
    }
}
