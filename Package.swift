// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "stockwatch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "stockwatch", targets: ["stockwatch"]),
        .library(name: "StockwatchCore", targets: ["StockwatchCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(
            name: "StockwatchCore",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "stockwatch",
            dependencies: [
                "StockwatchCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "StockwatchCoreTests",
            dependencies: ["StockwatchCore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "StockwatchEndToEndTests",
            dependencies: [
                "StockwatchCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
