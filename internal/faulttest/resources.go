package faulttest

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// readyPollInterval is the pause between two /readyz requests while
// StartTimed waits, and so the resolution of the start-up time it returns.
const readyPollInterval = 5 * time.Millisecond

// Memory is a process's resident set size as Linux reports it in
// /proc/PID/status.
type Memory struct {
	// RSS is the resident set size now (VmRSS), in bytes.
	RSS int64
	// PeakRSS is the highest resident set size since the process started or
	// since the last ResetPeakRSS (VmHWM), in bytes.
	PeakRSS int64
}

// PID returns the process id of the running process, or 0 when it is not
// running.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil {
		return 0
	}
	return p.run.process.Pid
}

// Memory reads the process's current and peak resident set size.
func (p *Process) Memory() (Memory, error) {
	pid := p.PID()
	if pid == 0 {
		return Memory{}, fmt.Errorf("read memory of %s: not running", p.name)
	}
	path := fmt.Sprintf("/proc/%d/status", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of %s: %w", p.name, err)
	}

	var m Memory
	found := 0
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		key, value, ok := strings.Cut(scanner.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		size, err := parseKilobytes(value)
		if err != nil {
			return Memory{}, fmt.Errorf("read %s of %s in %s: %w", key, p.name, path, err)
		}
		if key == "VmRSS" {
			m.RSS = size
		} else {
			m.PeakRSS = size
		}
		found++
	}
	if found != 2 {
		return Memory{}, fmt.Errorf("read memory of %s: %s lacks VmRSS or VmHWM", p.name, path)
	}
	return m, nil
}

// parseKilobytes parses a /proc/PID/status value such as "  51234 kB" into
// bytes.
func parseKilobytes(value string) (int64, error) {
	number, ok := strings.CutSuffix(strings.TrimSpace(value), " kB")
	if !ok {
		return 0, fmt.Errorf("invalid value %q: expected a number of kB", value)
	}
	kilobytes, err := strconv.ParseInt(strings.TrimSpace(number), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid value %q: %w", value, err)
	}
	return kilobytes * 1024, nil
}

// ResetPeakRSS sets the process's peak resident set size (VmHWM) to its
// current one by writing 5 to /proc/PID/clear_refs (Linux 4.0 and later), so
// that a later Memory returns the peak of what ran in between.
func (p *Process) ResetPeakRSS() error {
	pid := p.PID()
	if pid == 0 {
		return fmt.Errorf("reset peak memory of %s: not running", p.name)
	}
	path := fmt.Sprintf("/proc/%d/clear_refs", pid)
	if err := os.WriteFile(path, []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak memory of %s: %w", p.name, err)
	}
	return nil
}

// ApplianceStatusURL returns the base URL of the appliance's status
// listener, which serves /readyz.
func (s *System) ApplianceStatusURL() string { return "http://" + s.statusAddress }

// StartGatewayTimed starts the gateway and returns the time from starting
// the process until its /readyz first returned 200.
func (s *System) StartGatewayTimed() time.Duration {
	s.t.Helper()
	s.writeConfigs()
	return s.startTimed(s.Gateway, s.URL+"/readyz")
}

// StartApplianceTimed starts the appliance and returns the time from
// starting the process until its status listener's /readyz first returned
// 200: JetStream healthy, the store writable and the database reachable.
func (s *System) StartApplianceTimed() time.Duration {
	s.t.Helper()
	s.writeConfigs()
	return s.startTimed(s.Appliance, s.ApplianceStatusURL()+"/readyz")
}

// startTimed starts p and polls readyURL every readyPollInterval until it
// returns 200, for at most readyTimeout.
func (s *System) startTimed(p *Process, readyURL string) time.Duration {
	s.t.Helper()
	client := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := p.Start(); err != nil {
		s.t.Fatal(err)
	}
	for {
		resp, err := client.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		if crashes := p.Crashes(); len(crashes) > 0 {
			s.t.Fatalf("waiting until %s is ready: %s; see %s", p.Name(), crashes[0], p.LogPath())
		}
		if time.Since(start) > readyTimeout {
			s.t.Fatalf("timed out after %s waiting until %s returns 200", readyTimeout, readyURL)
		}
		time.Sleep(readyPollInterval)
	}
}
