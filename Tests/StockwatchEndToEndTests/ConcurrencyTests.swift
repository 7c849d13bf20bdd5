import Foundation
import Testing

@Suite struct ConcurrencyTests {
    /// Two processes adding alerts at the same moment, on a database neither has created yet.
    @Test func twoProcessesAddingAtOnceBothSucceed() throws {
        let sandbox = try Sandbox()
        let perProcess = 15
        // Each process adds many alerts back to back, so their transactions overlap.
        let runners = try (0..<2).map { worker in
            try sandbox.start(["alert", "import", "-"], stdin: (1...perProcess).map {
                #"{"symbol":"AAPL","condition":{"kind":"above","value":\#(worker * 100 + $0)}}"#
            }.joined(separator: "\n"))
        }
        var adders: [Sandbox.Running] = []
        for index in 0..<8 { adders.append(try sandbox.start(["alert", "add", "MSFT", "--above", "\(index + 1)"])) }
        for running in runners + adders {
            let result = try running.finish()
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(!result.stderr.contains("locked"))
        }
        #expect(try sandbox.count("alerts") == 2 * perProcess + 8)
        #expect(try sandbox.count("users") == 1)
    }
}
