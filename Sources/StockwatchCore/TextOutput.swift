import Foundation

extension FileHandle {
    /// Writes `text` as UTF-8. `Data(text.utf8)` asks the runtime whether the view is
    /// `ContiguousBytes`, and the first such question of a process scans all ~12,000
    /// conformance records of the static binary (0.46M instructions, about 1% of a cold
    /// `alert list --json`).
    public func write(utf8 text: String) {
        var text = text
        text.withUTF8 { write(Data(buffer: $0)) }
    }
}
