import Foundation
import StockwatchCore

/// Commands that take `PATH|-`: the bytes, and the name errors should use.
enum InputFile {
    static func read(_ path: String) throws(StockwatchError) -> (data: Data, source: String) {
        if path == "-" { return (FileHandle.standardInput.readDataToEndOfFile(), "stdin") }
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw .invalidInput(source: path, position: nil, reason: "cannot read file")
        }
        return (contents, path)
    }
}
