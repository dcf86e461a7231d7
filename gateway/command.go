package gateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/visitrelay/visitrelay/internal/config"
)

// DefaultConfigPath is the config file path of the packaged gateway.
const DefaultConfigPath = "/etc/visitrelay/gateway.yaml"

const usage = `usage: visitrelay-gateway [COMMAND] [-config FILE]

commands:
  run              serve visits, the page and the leafnode listener (the default)
  check-config     validate the config file, test the certificates, state directory and listen addresses
  hash-password    print the bcrypt hash of a site password read from stdin, for nats.sites
  help             print this help

flags:
  -config FILE     the YAML config file (default ` + DefaultConfigPath + `)`

// Run is the visitrelay-gateway command line: "run" (the default) serves
// until ctx ends; "check-config" validates the config file, tests the
// certificates, state directory and listen addresses, and exits;
// "hash-password" prints the bcrypt hash of a site password read from stdin.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	command := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		command, args = args[0], args[1:]
	}
	switch command {
	case "help":
		fmt.Fprintln(stdout, usage)
		return nil
	case "run", "check-config", "hash-password":
	default:
		return fmt.Errorf("unknown command %q; use run, check-config, hash-password or help", command)
	}

	fs := flag.NewFlagSet("visitrelay-gateway "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage) }
	configPath := fs.String("config", DefaultConfigPath, "path of the YAML config file")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the usage is printed; asking for it is no failure
	}
	if err != nil {
		return err
	}
	// hash-password needs no config: the hash goes into it (systemd.go).
	if command == "hash-password" {
		return hashPassword(os.Stdin, stdout)
	}

	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if command == "check-config" {
		return checkConfig(cfg, *configPath, stdout) // checkconfig.go
	}
	return serve(ctx, cfg, stderr)
}

// LoadConfig reads and validates a gateway config file. VISITRELAY_STATE_DIR
// and VISITRELAY_LISTEN override the file, for tests and the demo.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if err := config.Load(path, &cfg); err != nil {
		return cfg, err
	}
	if v := os.Getenv("VISITRELAY_STATE_DIR"); v != "" {
		cfg.StateDir = v
	}
	if v := os.Getenv("VISITRELAY_LISTEN"); v != "" {
		cfg.Listen = v
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func serve(ctx context.Context, cfg Config, logOutput io.Writer) error {
	logger := cfg.Log.NewLogger(logOutput)
	g := New(cfg, logger)
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := g.Start(startCtx); err != nil {
		return fmt.Errorf("start gateway: %w", err)
	}
	// READY=1 and watchdog pings for a Type=notify unit (systemd.go).
	g.notifySystemd(ctx)

	var served error
	select {
	case <-ctx.Done():
	case served = <-g.Done():
	}
	g.notifyStopping()
	stopCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	return errors.Join(served, g.Shutdown(stopCtx))
}
