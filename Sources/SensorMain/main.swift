// The `portsentry` binary: everything is in the Sensor module (testable and fuzzable as a library).
import Sensor

SensorCommand.main()
