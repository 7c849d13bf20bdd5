// swift-tools-version:6.1
import Foundation
import PackageDescription

/// SQLite, zlib and the C++ runtime linked into the executable from their static archives
/// (Debian's libsqlite3-dev, zlib1g-dev and libstdc++-N-dev), when all three are here: the
/// binary then needs only glibc, and a cold start no longer loads and binds four shared
/// libraries, 1.7 ms of its 9.5 (issue 19, docs/benchmarks.md). The archives go in as
/// inputs, ahead of the -lsqlite3, -lz and -lstdc++ that GRDB and the toolchain add;
/// Link/as-needed.cfg then drops those shared libraries. Without the archives (another
/// distribution), the link is the usual dynamic one.
let staticLibraryFlags: [String] = {
    #if os(Linux) && (arch(x86_64) || arch(arm64))
    #if arch(x86_64)
    let multiarch = "x86_64-linux-gnu"
    #else
    let multiarch = "aarch64-linux-gnu"
    #endif
    let files = FileManager.default
    // The newest GCC's libstdc++, as clang picks the newest GCC installation.
    let gcc = "/usr/lib/gcc/\(multiarch)"
    let gccVersions = ((try? files.contentsOfDirectory(atPath: gcc)) ?? []).compactMap(Int.init).sorted(by: >)
    let archives = [
        "/usr/lib/\(multiarch)/libsqlite3.a",
        "/usr/lib/\(multiarch)/libz.a",
        gccVersions.map { "\(gcc)/\($0)/libstdc++.a" }.first(where: files.fileExists) ?? "",
    ]
    guard archives.allSatisfy(files.fileExists) else { return [] }
    let root = String(#filePath.dropLast("/Package.swift".count))
    return ["-Xclang-linker", "--config=\(root)/Sources/stockwatch/Link/as-needed.cfg"] + archives
    #else
    return []
    #endif
}()

let package = Package(
    name: "stockwatch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "stockwatch", targets: ["stockwatch"]),
        .library(name: "StockwatchCore", targets: ["StockwatchModel", "StockwatchStore", "StockwatchCore", "StockwatchServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.25.0"),
        // Already in the graph through AsyncHTTPClient; named for HTTP/2 to FCM.
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        // The PostgreSQL backend (no ORM): PostgresClient, prepared statements.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // FilePath, which Subprocess takes on Linux.
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
        // Tests only: reads openapi.yaml to check the API's answers against it.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    // Layers, each a target so that the compiler refuses an arrow upward:
    // StockwatchModel <- StockwatchStore <- StockwatchCore <- StockwatchServer, stockwatch.
    targets: [
        // Pure values: symbols, conditions, errors and exit statuses, times, notifications.
        .target(name: "StockwatchModel"),
        // sqlite3_config, which is variadic, for the store (a C header Swift can call).
        .target(name: "CSQLiteSettings"),
        // Storage: the protocols the services use (Protocols), their SQLite implementation
        // with the schema, migrations, records and every SQL statement (SQLite), the
        // PostgreSQL backend (PostgreSQL: connections, its own migrations), and where the
        // data lives and the file-system checks of what it opens (Files).
        .target(
            name: "StockwatchStore",
            dependencies: [
                "StockwatchModel",
                "CSQLiteSettings",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The C API, for evaluate's hot loops (see RawStatement).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // serve's pool, with connections of our own (TCP keepalives): PostgresClient's pool.
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                // TLS settings for sslmode (verify-full, sslrootcert).
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The services: config, fetch and the providers, rules and evaluate, delivery and
        // the channels, accounts, history, status, tick, demo.
        .target(
            name: "StockwatchCore",
            dependencies: [
                "StockwatchModel",
                // Through its protocols only: no GRDB here, so no SQL either.
                "StockwatchStore",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Crypto", package: "swift-crypto"),
                // RSA (RS256) for Firebase's OAuth service-account JWT.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // A channel's ca_file as its HTTPS trust roots.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // The channels' POSTs on kept connections (HTTP/KeptConnections.swift).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // The exec channel: reads the program's stderr while it runs, tears it down on timeout.
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // serve: the HTTP API and the WebSocket stream, on Hummingbird.
        .target(
            name: "StockwatchServer",
            dependencies: [
                "StockwatchModel",
                "StockwatchStore",
                "StockwatchCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                // Close codes of the stream (WebSocketErrorCode).
                .product(name: "NIOWebSocket", package: "swift-nio"),
                // A trial bind before serving (see APIServer.checkAddress).
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "stockwatch",
            dependencies: [
                "StockwatchModel",
                "StockwatchStore",
                "StockwatchCore",
                "StockwatchServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            exclude: ["Link"],
            linkerSettings: [
                // Nothing loads this program as a library, yet the Swift driver exports every
                // symbol of an executable (about 56,000 here), which the loader then resolves
                // against and dladdr walks at each start: 2 ms of an 11 ms cold start (issue 19).
                // It stays position-independent (ASLR); docs/benchmarks.md has the figures.
                .unsafeFlags(["-Xlinker", "--no-export-dynamic"] + staticLibraryFlags, .when(platforms: [.linux])),
            ]
        ),
        // Fakes of the outside world (providers, later FCM and webhooks) shared by the test targets.
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // HTTPS fakes with TestCertificate, for a channel's ca_file.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/TestSupport"
        ),
        // Fake FCM + webhook receiver as a process, for shell benchmarks and reliability tests.
        .executableTarget(
            name: "stockwatch-fakes",
            dependencies: [
                "TestSupport", .product(name: "Crypto", package: "swift-crypto"),
                // The self-test's client (URLSession would need libcurl in a static build).
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // --post-floor runs its tasks on NIO's event loops, as stockwatch does.
                .product(name: "NIOPosix", package: "swift-nio"),
                // --post-lean: kept HTTP/1.1 connections over TLS, without AsyncHTTPClient.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // --post-lean-h2: the same over HTTP/2 (swift-nio-http2, already AsyncHTTPClient's).
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            path: "Tests/FakeServices"
        ),
        // Many WebSocket clients in one process, for Benchmarks/serve.
        .executableTarget(
            name: "stockwatch-wsbench",
            dependencies: [
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/ServeBenchmark"
        ),
        .testTarget(
            name: "StockwatchCoreTests",
            dependencies: [
                "StockwatchModel", "StockwatchStore", "StockwatchCore", "StockwatchServer", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                // Creates a database per test for the PostgreSQL backend.
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // KeptConnectionTests' scripted server.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // A KeptConnection on an EmbeddedChannel, its events in a chosen order.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "StockwatchEndToEndTests",
            dependencies: [
                "StockwatchModel",
                "StockwatchCore",
                "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // A real WebSocket client and HTTP client for serve's tests.
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
