// swift-tools-version:6.2
import PackageDescription

// The folder tree is the architecture:
//   Sources/SensorCore  parse → detect: pure, no I/O (what replay, the tests and the fuzzer drive)
//   Sources/Sensor      binary `portsentry`: capture → (core) → respond → report, the daemon, the CLI
//   Sources/ControllerCore  ingest checks → correlate → decide, models, the store contract: pure
//   Sources/Controller  binary `portsentry-controller`: api, the stores, distribute, the CLI
//   Sources/Shared      the wire contract both sides read (no pcap, no HTTP server)
//   Sources/C*          thin system-library shims; each binary links only what it uses.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// `PORTSENTRY_FUZZ=1 swift build` (scripts/fuzz.sh) instruments the project's own modules for
// libFuzzer and AddressSanitizer and adds the fuzz harness; dependencies stay as they are.
// `PORTSENTRY_ASAN=1 swift test` runs the tests with the project's modules under
// AddressSanitizer (scripts/test.sh does it for the parser and detector tests).
let fuzzing = Context.environment["PORTSENTRY_FUZZ"] == "1"
let asan = Context.environment["PORTSENTRY_ASAN"] == "1"
// `-enable-testing` lets the harness reach internal decoders in a release (-O) build too:
// `scripts/fuzz.sh` long runs use `-c release` for speed (traps and bounds checks stay).
let instrumented: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address", "-enable-testing"])]
    : asan ? [.unsafeFlags(["-sanitize=address"])] : []
let asanLink: [LinkerSetting] = asan ? [.unsafeFlags(["-sanitize=address"])] : []

let package = Package(
    name: "portsentry",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "portsentry", targets: ["SensorMain"]),
        .executable(name: "portsentry-controller", targets: ["ControllerMain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "CNftables", pkgConfig: "libnftables", providers: [.apt(["libnftables-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(
            name: "PortsentryShared",
            dependencies: ["COpenSSL"],
            path: "Sources/Shared",
            swiftSettings: strict + instrumented
        ),
        // Parse and detect: pure functions over raw bytes, what live capture, replay, the tests and
        // the fuzzer all drive. No I/O (scripts/check-layers.sh keeps it so).
        .target(
            name: "SensorCore",
            dependencies: ["PortsentryShared"],
            swiftSettings: strict + instrumented
        ),
        .target(
            name: "Sensor",
            dependencies: [
                "SensorCore", "PortsentryShared", "CPcap", "CLinux", "CNftables", "CCurl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Sensor",
            swiftSettings: strict + instrumented
        ),
        .executableTarget(name: "SensorMain", dependencies: ["Sensor"], path: "Sources/SensorMain", swiftSettings: strict,
                          linkerSettings: asanLink),
        // Correlate and decide, the stored models and the store contract: pure policy, no HTTP
        // server and no database driver (scripts/check-layers.sh keeps it so).
        .target(
            name: "ControllerCore",
            dependencies: ["PortsentryShared", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict + instrumented
        ),
        .target(
            name: "Controller",
            dependencies: [
                "ControllerCore", "PortsentryShared",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Controller",
            swiftSettings: strict + instrumented
        ),
        .executableTarget(name: "ControllerMain", dependencies: ["Controller"], path: "Sources/ControllerMain", swiftSettings: strict,
                          linkerSettings: asanLink),
        .testTarget(
            name: "SharedTests",
            dependencies: ["PortsentryShared"],
            swiftSettings: strict,
            linkerSettings: asanLink
        ),
        .testTarget(
            name: "SensorTests",
            dependencies: ["Sensor", "SensorCore", "PortsentryShared"],
            exclude: ["Fixtures"],
            swiftSettings: strict + instrumented,
            linkerSettings: asanLink
        ),
        .testTarget(
            name: "ControllerTests",
            dependencies: [
                "Controller", "ControllerCore", "PortsentryShared",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strict,
            linkerSettings: asanLink
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["PortsentryShared"],
            swiftSettings: strict,
            linkerSettings: asanLink
        ),
    ] + (fuzzing ? [
        .executableTarget(
            name: "portsentry-fuzz",
            dependencies: ["Sensor", "SensorCore", "Controller", "ControllerCore", "PortsentryShared", .product(name: "Logging", package: "swift-log")],
            path: "Sources/Fuzz",
            swiftSettings: strict + instrumented + [.unsafeFlags(["-parse-as-library"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]
        ),
    ] : []),
    swiftLanguageModes: [.v6]
)
