// Package faulttest runs the real visitrelay-gateway and visitrelay-appliance
// binaries as subprocesses, with config files in a temporary directory.
// End-to-end tests use it to kill, stop and restart them, to cut the
// leafnode link with a TCP proxy, and to post visits through the HTTP API
// meanwhile. Every process and proxy listens on 127.0.0.1 only.
package faulttest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildTimeout bounds the go build of both binaries. A cold build cache
// compiles nats-server, which takes about a minute on 2 cores.
const buildTimeout = 5 * time.Minute

// Binaries are the paths of the built gateway and appliance binaries.
type Binaries struct {
	Gateway   string
	Appliance string
}

// Build compiles visitrelay-gateway and visitrelay-appliance from the module
// that contains the working directory into t.TempDir(). Call it once from a
// parent test and share the result with its subtests, because the files are
// removed when t ends.
func Build(t testing.TB) Binaries {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()

	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := time.Now()
	// NOTE: the binaries are built without the race detector even when this
	// test binary has it. With it they run the scenarios about twice as slow
	// on 2 cores, and the in-process end-to-end tests run the same code with
	// it already. Without it, a cold build cache compiles the dependencies a
	// second time, which took 76 s on 2 cores.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"./cmd/visitrelay-gateway", "./cmd/visitrelay-appliance")
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the gateway and appliance binaries in %s: %v\n%s", root, err, output)
	}
	t.Logf("built visitrelay-gateway and visitrelay-appliance in %s", time.Since(start).Round(time.Millisecond))
	return Binaries{
		Gateway:   filepath.Join(dir, "visitrelay-gateway"),
		Appliance: filepath.Join(dir, "visitrelay-appliance"),
	}
}

// moduleRoot returns the directory of the go.mod that governs the working
// directory, as `go env GOMOD` reports it.
func moduleRoot(ctx context.Context) (string, error) {
	output, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root with go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(output))
	if gomod == "" || gomod == "/dev/null" {
		return "", fmt.Errorf("find the module root: the working directory is outside a module (go env GOMOD printed %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}
