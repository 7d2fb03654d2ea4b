// The `portsentry-controller` binary: everything is in the Controller module.
import Controller

await ControllerCommand.main()
