package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// system is the running gateway and appliance processes.
type system struct {
	dir           string
	dsn           string
	gatewayURL    string
	statusURL     string // the appliance's status page
	applianceArgs []string
	procs         []*exec.Cmd
	exited        chan error
}

func startSystem(ctx context.Context, o Options, dir, dsn string, logger *slog.Logger) (*system, error) {
	listen, err := freeAddress(firstNonEmpty(o.Listen, "127.0.0.1:8080"))
	if err != nil {
		return nil, err
	}
	leaf, err := freeAddress("127.0.0.1:7422")
	if err != nil {
		return nil, err
	}
	status, err := freeAddress("127.0.0.1:8090")
	if err != nil {
		return nil, err
	}
	s := &system{dir: dir, dsn: dsn, gatewayURL: "http://" + listen, statusURL: "http://" + status, exited: make(chan error, 2)}
	gatewayConfig := filepath.Join(dir, "gateway.yaml")
	applianceConfig := filepath.Join(dir, "appliance.yaml")
	if err := writeConfigs(dir, listen, leaf, status, dsn); err != nil {
		return nil, err
	}
	s.applianceArgs = []string{"-config", applianceConfig}

	if err := s.admin(ctx, o, []string{"db", "migrate"}); err != nil {
		return nil, err
	}
	for _, kind := range []string{"users", "clients", "devices"} {
		if err := s.admin(ctx, o, []string{"import", kind}, filepath.Join(o.DataDir, kind+".csv")); err != nil {
			return nil, err
		}
	}

	if err := s.spawn(o, "visitrelay-gateway", "run", "-config", gatewayConfig); err != nil {
		return nil, err
	}
	// The appliance starts once the gateway listens, so that its first
	// leafnode dial succeeds and the streams start syncing at once.
	err = waitUntil(ctx, time.Minute, func() error { return ready(s.gatewayURL) })
	if err != nil {
		s.stop(logger)
		return nil, fmt.Errorf("wait for gateway at %s: %w; see %s", s.gatewayURL, err, filepath.Join(dir, "gateway.log"))
	}
	if err := s.spawn(o, "visitrelay-appliance", "run", "-config", applianceConfig); err != nil {
		s.stop(logger)
		return nil, err
	}
	logger.Info("gateway and appliance running", "gateway", s.gatewayURL, "logs", dir)
	return s, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func ready(url string) error {
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: status %d", resp.StatusCode)
	}
	return nil
}

// admin runs an appliance admin command and waits for it. Flags go between
// the command words and the arguments, as the flag package expects.
func (s *system) admin(ctx context.Context, o Options, command []string, rest ...string) error {
	args := append(append(append([]string{}, command...), s.applianceArgs...), rest...)
	cmd := exec.CommandContext(ctx, filepath.Join(o.BinDir, "visitrelay-appliance"), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("visitrelay-appliance %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// spawn starts a long-running binary with its output in DIR/NAME.log.
func (s *system) spawn(o Options, name string, args ...string) error {
	logFile, err := os.Create(filepath.Join(s.dir, strings.TrimPrefix(name, "visitrelay-")+".log"))
	if err != nil {
		return fmt.Errorf("create log of %s: %w", name, err)
	}
	cmd := exec.Command(filepath.Join(o.BinDir, name), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w; run make build first", name, err)
	}
	s.procs = append(s.procs, cmd)
	go func() {
		err := cmd.Wait()
		logFile.Close()
		s.exited <- fmt.Errorf("%s exited: %v; see %s", name, err, logFile.Name())
	}()
	return nil
}

// stop sends SIGTERM to every process, newest first, and waits for each.
func (s *system) stop(logger *slog.Logger) {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		if p.Process == nil || p.ProcessState != nil {
			continue
		}
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(40 * time.Second)
	for range s.procs {
		select {
		case <-s.exited:
		case <-deadline:
			logger.Warn("processes did not stop in time; killing them")
			for _, p := range s.procs {
				_ = p.Process.Kill()
			}
			return
		}
	}
}

func writeConfigs(dir, listen, leaf, status, dsn string) error {
	gateway := fmt.Sprintf(`version: 1
listen: %q
stateDir: %q
nats:
  leafListen: %q
`, listen, filepath.Join(dir, "gateway"), leaf)
	appliance := fmt.Sprintf(`version: 1
stateDir: %q
database:
  url: %q
nats:
  gatewayURLs: [%q]
status:
  listen: %q
`, filepath.Join(dir, "appliance"), dsn, "nats-leaf://"+leaf, status)
	if err := os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte(gateway), 0o600); err != nil {
		return fmt.Errorf("write gateway config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "appliance.yaml"), []byte(appliance), 0o600); err != nil {
		return fmt.Errorf("write appliance config: %w", err)
	}
	return nil
}
