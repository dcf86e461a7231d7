// Package version reports the version of the visitrelay binaries, for the
// status pages, the heartbeat and the build-info metric.
package version

import (
	"runtime/debug"
	"sync"
)

// Version is the release version. A release build sets it with
// -ldflags "-X github.com/visitrelay/visitrelay/internal/version.Version=1.2.3".
// When it is empty, String reports the module version that the Go toolchain
// recorded, which is "(devel)" for a build from a work tree.
var Version = ""

var fromBuild = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return v + " " + s.Value[:12]
		}
	}
	return v
})

// String returns Version, or the module version of the build without one.
func String() string {
	if Version != "" {
		return Version
	}
	return fromBuild()
}
