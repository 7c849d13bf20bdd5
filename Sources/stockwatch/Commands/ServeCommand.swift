import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchStore
import StockwatchServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the mobile app's JSON API and WebSocket stream until SIGTERM or SIGINT.",
        discussion: "Prints 'listening on HOST:PORT' (with --json: {\"listening\":\"HOST:PORT\"}) once the port is bound. Every route but GET /healthz needs 'Authorization: Bearer TOKEN' with a token from 'stockwatch user add'. See openapi.yaml and stockwatch(1).")

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Address to listen on (default: [serve] listen, else 127.0.0.1:8080; port 0 picks a free one).", valueName: "host:port"))
    var listen: String?

    @Option(name: .customLong("allowed-origin"), help: ArgumentHelp("A browser origin allowed to call the API and open the stream (repeatable; replaces [serve] allowed_origins).", valueName: "origin"))
    var allowedOrigins: [String] = []

    func run() async throws {
        // Flags are checked before the database is opened (or created).
        var config = try global.loadConfig()
        if !allowedOrigins.isEmpty { try config.serve.allowOrigins(allowedOrigins, option: "--allowed-origin") }
        let address = try listen.map { (text) throws(StockwatchError) in try ListenAddress.parse(text, option: "--listen") } ?? config.serve.listen
        let database = try openDataStore(at: global.location(config: config), concurrent: true)
        let json = global.json
        try await APIServer(database: database, config: config, verbose: global.verbose).run(listen: address) { bound in
            // Written at once (not buffered): scripts and tests wait for this line.
            let line = (json ? JSONOutput.encode(["listening": bound.description]) : "listening on \(bound)") + "\n"
            FileHandle.standardOutput.write(utf8: line)
        }
    }
}
