import StockwatchModel

/// Runs a core call whose errors name JSON fields, renaming them to this command's flags.
func flagNames<T>(_ flags: [String: String], _ body: () throws(StockwatchError) -> T) throws(StockwatchError) -> T {
    do { return try body() } catch { throw error.renamingField(flags) }
}
