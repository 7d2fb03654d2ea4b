import ArgumentParser

/// The fleet controller. The HTTPS service, enrollment, ingest, correlation and block-list
/// distribution are built in the controller issues; this binary exists so the package
/// layout and the build are in place.
@main
struct PortsentryController: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portsentry-controller",
        abstract: "Portsentry fleet controller (not yet implemented: the sensor runs standalone).",
        version: "3.0.0-dev"
    )

    func run() throws {
        throw ValidationError("the controller is not implemented yet; run `portsentry` standalone on each host")
    }
}
