package faulttest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Timeouts of the harness's own steps.
const (
	// readyTimeout bounds the wait for a started process to serve. A
	// gateway that recovers a large store after kill -9 takes a while.
	readyTimeout = 2 * time.Minute
	// adminTimeout bounds one admin command such as db migrate.
	adminTimeout = time.Minute
	// logTailLines is how much of each log a failed test prints.
	logTailLines = 60
)

// Options configure a System. A change takes effect at the next start of
// the process it concerns, because each start rewrites the config files.
type Options struct {
	// DatabaseURL is the database the appliance commits to. Required.
	DatabaseURL string
	// CheckDatabaseURL is the database the checks read, when it differs
	// from DatabaseURL, such as when the appliance reaches it through a
	// proxy. Default DatabaseURL.
	CheckDatabaseURL string
	// VisitsMaxBytes is the gateway's visits.maxBytes. 0 keeps the default.
	VisitsMaxBytes int64
	// ApplianceMaxStore is the appliance's nats.maxStore in bytes. 0 means
	// no cap.
	ApplianceMaxStore int64
	// AckWait is the appliance's committer.ackWait. Default 10s, so that a
	// batch lost with a killed appliance is redelivered soon.
	AckWait time.Duration
}

// System is a gateway and an appliance running as subprocesses, linked
// through Link, against a PostgreSQL database.
type System struct {
	t    testing.TB
	bins Binaries

	// Options are read again at every process start.
	Options Options
	// Dir holds the configs, the fixture CSV files, the state directories
	// and the logs.
	Dir string
	// Gateway and Appliance are the two processes.
	Gateway   *Process
	Appliance *Process
	// Link is the proxy between the appliance and the gateway's leafnode
	// port.
	Link *Proxy
	// URL is the gateway's HTTP base URL.
	URL string
	// GatewayNATSURL is the gateway's loopback NATS client URL.
	GatewayNATSURL string
	// Pool connects to the database for checks.
	Pool *pgxpool.Pool

	httpAddress   string
	leafAddress   string
	natsAddress   string
	statusAddress string // the appliance's status page
}

// Start writes the fixture directory and the configs, migrates the
// database, imports the fixture users, clinics and devices with the
// appliance's admin commands, starts the gateway and the appliance, and
// waits until the directory has reached the gateway. Everything stops when
// t ends.
func Start(t testing.TB, bins Binaries, o Options) *System {
	t.Helper()
	if o.DatabaseURL == "" {
		t.Fatal("start system: Options.DatabaseURL is required")
	}
	if o.CheckDatabaseURL == "" {
		o.CheckDatabaseURL = o.DatabaseURL
	}
	if o.AckWait == 0 {
		o.AckWait = 10 * time.Second
	}

	s := newSystem(t, bins, o)
	pool, err := pgxpool.New(context.Background(), o.CheckDatabaseURL)
	if err != nil {
		t.Fatalf("connect to the check database: %v", err)
	}
	t.Cleanup(pool.Close)
	s.Pool = pool

	if err := writeFixtures(s.Dir); err != nil {
		t.Fatal(err)
	}
	s.writeConfigs()
	s.MustAdmin("db migrate")
	for _, kind := range []string{"users", "clients", "devices"} {
		s.MustAdmin("import "+kind, filepath.Join(s.Dir, kind+".csv"))
	}

	s.StartGateway()
	s.StartAppliance()
	want := fmt.Sprintf("directory has %d users, %d clinics, %d devices", len(Users), len(Clinics), len(Devices))
	s.WaitFor("the directory reaches the gateway", readyTimeout, func() bool {
		body, err := s.readyz()
		return err == nil && strings.Contains(body, want)
	})
	return s
}

// newSystem picks the ports, starts the link proxy and prepares the two
// processes without starting them. Their shutdown is registered with t.
func newSystem(t testing.TB, bins Binaries, o Options) *System {
	t.Helper()
	dir := t.TempDir()
	s := &System{t: t, bins: bins, Options: o, Dir: dir}
	s.httpAddress, s.leafAddress, s.natsAddress = freeAddress(t), freeAddress(t), freeAddress(t)
	s.statusAddress = freeAddress(t)
	s.URL = "http://" + s.httpAddress
	s.GatewayNATSURL = "nats://" + s.natsAddress
	s.Link = NewProxy(t, s.leafAddress)

	logDir := logDirectory(t, dir)
	s.Gateway = newProcess("visitrelay-gateway", bins.Gateway, filepath.Join(logDir, "gateway.log"),
		"run", "-config", s.gatewayConfigPath())
	s.Appliance = newProcess("visitrelay-appliance", bins.Appliance, filepath.Join(logDir, "appliance.log"),
		"run", "-config", s.applianceConfigPath())
	t.Cleanup(s.shutdown)
	return s
}

// logDirectory returns where the process logs go: a directory named after
// the test under LogDirEnv when that is set, so that they outlive the test,
// or else dir.
func logDirectory(t testing.TB, dir string) string {
	t.Helper()
	root := os.Getenv(LogDirEnv)
	if root == "" {
		return dir
	}
	logDir := filepath.Join(root, strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatalf("create log directory: %v", err)
	}
	return logDir
}

func (s *System) gatewayConfigPath() string   { return filepath.Join(s.Dir, "gateway.yaml") }
func (s *System) applianceConfigPath() string { return filepath.Join(s.Dir, "appliance.yaml") }

// ApplianceStateDir returns the appliance's stateDir.
func (s *System) ApplianceStateDir() string { return filepath.Join(s.Dir, "appliance") }

// writeConfigs writes both config files from s.Options, in the format an
// admin writes them.
func (s *System) writeConfigs() {
	s.t.Helper()
	gateway := fmt.Sprintf(`version: 1
listen: %q
stateDir: %q
nats:
  clientPort: %s
  leafListen: %q
`, s.httpAddress, filepath.Join(s.Dir, "gateway"), port(s.natsAddress), s.leafAddress)
	if s.Options.VisitsMaxBytes != 0 {
		gateway += fmt.Sprintf("visits:\n  maxBytes: %d\n", s.Options.VisitsMaxBytes)
	}

	appliance := fmt.Sprintf(`version: 1
stateDir: %q
database:
  url: %q
nats:
  gatewayURLs: [%q]
  maxStore: %d
committer:
  ackWait: %s
status:
  listen: %q
`, s.ApplianceStateDir(), s.Options.DatabaseURL, "nats-leaf://"+s.Link.Addr(),
		s.Options.ApplianceMaxStore, s.Options.AckWait, s.statusAddress)

	for path, content := range map[string]string{s.gatewayConfigPath(): gateway, s.applianceConfigPath(): appliance} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			s.t.Fatalf("write config: %v", err)
		}
	}
}

func port(address string) string {
	_, p, _ := net.SplitHostPort(address)
	return p
}

// StartGateway starts the gateway and waits until /readyz returns 200.
func (s *System) StartGateway() {
	s.t.Helper()
	s.writeConfigs()
	if err := s.Gateway.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.WaitFor("the gateway is ready", readyTimeout, func() bool {
		_, err := s.readyz()
		return err == nil
	})
}

// StartAppliance starts the appliance and waits until its NATS server
// accepts admin connections.
func (s *System) StartAppliance() {
	s.t.Helper()
	s.writeConfigs()
	urlFile := filepath.Join(s.ApplianceStateDir(), "nats.url")
	if err := os.Remove(urlFile); err != nil && !os.IsNotExist(err) {
		s.t.Fatalf("remove the previous run's %s: %v", urlFile, err)
	}
	if err := s.Appliance.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.WaitFor("the appliance's NATS server is up", readyTimeout, func() bool {
		_, err := os.Stat(urlFile)
		return err == nil
	})
}

// StopGateway stops the gateway with SIGTERM and fails the test unless it
// exits cleanly.
func (s *System) StopGateway() {
	s.t.Helper()
	if err := s.Gateway.Stop(); err != nil {
		s.t.Error(err)
	}
}

// StopAppliance stops the appliance with SIGTERM and fails the test unless
// it exits cleanly.
func (s *System) StopAppliance() {
	s.t.Helper()
	if err := s.Appliance.Stop(); err != nil {
		s.t.Error(err)
	}
}

// KillGateway kills the gateway with SIGKILL.
func (s *System) KillGateway() {
	s.t.Helper()
	if err := s.Gateway.Kill(); err != nil {
		s.t.Fatal(err)
	}
}

// KillAppliance kills the appliance with SIGKILL.
func (s *System) KillAppliance() {
	s.t.Helper()
	if err := s.Appliance.Kill(); err != nil {
		s.t.Fatal(err)
	}
}

// readyz returns the body of the gateway's /readyz, or an error unless the
// status is 200.
func (s *System) readyz() (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(s.URL + "/readyz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("readyz: status %d: %s", resp.StatusCode, body)
	}
	return string(body), err
}

// Admin runs the appliance admin command, such as "deadletters list" or
// "import users", with -config between the command words and args, as the
// flag package expects, and returns its combined output.
func (s *System) Admin(command string, args ...string) (string, error) {
	argv := append(strings.Fields(command), "-config", s.applianceConfigPath())
	argv = append(argv, args...)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bins.Appliance, argv...)
	cmd.Env = childEnv()
	output, err := cmd.CombinedOutput()
	if err != nil {
		return string(output), fmt.Errorf("visitrelay-appliance %s: %w: %s", strings.Join(argv, " "), err, output)
	}
	return string(output), nil
}

// MustAdmin is Admin that fails the test on an error.
func (s *System) MustAdmin(command string, args ...string) string {
	s.t.Helper()
	output, err := s.Admin(command, args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return output
}

// WaitFor polls cond every 100 ms until it holds, and fails the test after
// timeout, or at once when the gateway or the appliance exits without a
// Stop or Kill. It returns how long the wait took.
func (s *System) WaitFor(what string, timeout time.Duration, cond func() bool) time.Duration {
	s.t.Helper()
	return WaitFor(s.t, what, timeout, func() bool {
		for _, p := range []*Process{s.Gateway, s.Appliance} {
			if crashes := p.Crashes(); len(crashes) > 0 {
				s.t.Fatalf("waiting until %s: %s; see %s", what, crashes[0], p.LogPath())
			}
		}
		return cond()
	})
}

// WaitFor polls cond every 100 ms until it holds, and fails the test after
// timeout. It returns how long the wait took.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// shutdown stops the appliance and then the gateway, reports every exit
// that no test step asked for, and prints the end of each log when the
// test failed.
func (s *System) shutdown() {
	if err := s.Appliance.Stop(); err != nil {
		s.t.Errorf("stop at the end of the test: %v", err)
	}
	if err := s.Gateway.Stop(); err != nil {
		s.t.Errorf("stop at the end of the test: %v", err)
	}
	for _, p := range []*Process{s.Gateway, s.Appliance} {
		for _, crash := range p.Crashes() {
			s.t.Errorf("%s; see %s", crash, p.LogPath())
		}
	}
	if !s.t.Failed() {
		return
	}
	for _, p := range []*Process{s.Gateway, s.Appliance} {
		s.t.Logf("last %d lines of %s:\n%s", logTailLines, p.LogPath(), tail(p.LogPath(), logTailLines))
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("read %s: %v", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
