import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct DeviceAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Register a device's FCM token (a known token is refreshed); prints its id.")

    @Option(help: ArgumentHelp("The owner (default: the user named default).", valueName: "name")) var user: String?
    @Option(help: ArgumentHelp("The app's Firebase Cloud Messaging registration token (other users can see it in ps; see --fcm-token-file).", valueName: "token"))
    var fcmToken: String?
    @Option(help: ArgumentHelp("Read the token from this file, or from stdin with -.", valueName: "path"))
    var fcmTokenFile: String?
    @Option(help: ArgumentHelp("A name to recognise the device by.", valueName: "text")) var label: String?
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let token = try Self.token(fcmToken, file: fcmTokenFile)
        let (database, _) = try global.open()
        let device = try flagNames(["fcm_token": "--fcm-token", "label": "--label"]) { () throws(StockwatchError) in
            try DeviceService(database: database).add(user: user, fcmToken: token, label: label)
        }
        if global.json { Output.json(device) } else { print(device.id) }
    }

    /// Exactly one of the two. A file must hold one token (whitespace around it is
    /// dropped); its errors name the file, never its contents.
    static func token(_ inline: String?, file: String?) throws(StockwatchError) -> String {
        switch (inline, file) {
        case let (token?, nil): return token.trimmingCharacters(in: .whitespacesAndNewlines)
        case let (nil, path?):
            let (data, source) = try InputFile.read(path, limit: 8192)
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard DeviceService.isFCMToken(token) else {
                throw .invalidInput(source: source, position: nil, reason: "does not hold one FCM token (one word of at most 4096 printable ASCII characters)")
            }
            return token
        case (nil, nil): throw .usage("give the token with --fcm-token-file PATH (or - for stdin) or --fcm-token TOKEN")
        case (_?, _?): throw .usage("give either --fcm-token or --fcm-token-file, not both")
        }
    }
}
