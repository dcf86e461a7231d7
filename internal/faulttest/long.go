package faulttest

import "os"

// LongEnv is the environment variable that selects the long variants of the
// fault scenarios: longer outages and bigger backlogs, as `make test-faults`
// runs them.
const LongEnv = "VISITRELAY_FAULT_LONG"

// LogDirEnv is the environment variable that names a directory to keep the
// gateway's and the appliance's logs in, one subdirectory per test. Without
// it the logs go to the test's temporary directory, and a failed test
// prints their last lines.
const LogDirEnv = "VISITRELAY_FAULT_LOG_DIR"

// Long reports whether LongEnv is set to 1.
func Long() bool { return os.Getenv(LongEnv) == "1" }

// Pick returns short, or long when Long reports true.
func Pick[T any](short, long T) T {
	if Long() {
		return long
	}
	return short
}
