package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/visitrelay/visitrelay/appliance"
)

// The appliance's check-config opens a link to every gateway URL, so that a
// wrong failover address fails the check before a failover needs it.
func TestCheckConfigProbesEveryGatewayURL(t *testing.T) {
	e := startEnv(t)
	good := e.ApplianceConfig().NATS.GatewayURLs[0]
	dead := "nats-leaf://" + checkConfigTestClosedAddress(t)

	configFile := filepath.Join(t.TempDir(), "appliance.yaml")
	config := "version: 1\n" +
		"stateDir: " + t.TempDir() + "\n" +
		"database:\n  url: \"" + e.DSN + "\"\n" +
		"nats:\n  gatewayURLs: [\"" + good + "\", \"" + dead + "\"]\n"
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := appliance.Run(context.Background(), []string{"check-config", "-config", configFile},
		appliance.IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	if err == nil {
		t.Errorf("check-config passed with %s among the gateway URLs\n%s", dead, stdout.String())
	}
	if want := "ok   leafnode link to " + good + " opens"; !strings.Contains(stdout.String(), want) {
		t.Errorf("check-config output lacks %q:\n%s", want, stdout.String())
	}
	if want := "FAIL leafnode link to " + dead + " opens"; !strings.Contains(stdout.String(), want) {
		t.Errorf("check-config output lacks %q:\n%s", want, stdout.String())
	}
}

// checkConfigTestClosedAddress returns a loopback address that nothing
// listens on: a port the kernel handed out and that was closed again.
func checkConfigTestClosedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
