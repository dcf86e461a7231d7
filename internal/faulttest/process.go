package faulttest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopTimeout bounds a graceful stop. The binaries give themselves 30
// seconds to shut down, so this leaves room for that and a little more.
const stopTimeout = 45 * time.Second

// Process is one long-running binary that a test starts, stops and kills
// again and again. Its output from every run is appended to one log file.
// Methods are safe for concurrent use.
type Process struct {
	name    string
	path    string
	args    []string
	logPath string

	mu      sync.Mutex
	run     *processRun // nil while stopped
	starts  int
	crashes []string // exits that no Stop or Kill asked for
}

// processRun is one start of the process.
type processRun struct {
	process  *os.Process
	exited   chan struct{}
	err      error // the Wait error, set before exited is closed
	expected bool  // a Stop or Kill ended this run; guarded by Process.mu
}

func newProcess(name, path, logPath string, args ...string) *Process {
	return &Process{name: name, path: path, args: args, logPath: logPath}
}

// childEnv returns this process's environment without the VISITRELAY_
// variables, because those override the config files that the tests write,
// such as VISITRELAY_DATABASE_URL, which could point at a real database.
func childEnv() []string {
	var env []string
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "VISITRELAY_") {
			env = append(env, v)
		}
	}
	return env
}

// Name returns the binary's name, such as visitrelay-gateway.
func (p *Process) Name() string { return p.name }

// LogPath returns the file that collects the output of every run.
func (p *Process) LogPath() string { return p.logPath }

// Start starts the binary unless it is running. The child gets SIGKILL when
// the test binary dies, so a crashed or timed-out test leaves none behind.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil {
		return nil
	}

	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", p.name, err)
	}
	p.starts++
	fmt.Fprintf(logFile, "=== faulttest: start %d of %s at %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))

	cmd := exec.Command(p.path, p.args...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	run := &processRun{exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Linux sends Pdeathsig when the thread that started the child
		// exits. Locking this goroutine to its thread until the child exits
		// keeps that thread alive for as long as the child runs.
		runtime.LockOSThread()
		defer logFile.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		run.process = cmd.Process
		started <- nil
		run.err = cmd.Wait()
		p.recordExit(run)
		close(run.exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.run = run
	return nil
}

// recordExit clears the run and records an exit that no Stop or Kill
// requested.
func (p *Process) recordExit(run *processRun) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == run {
		p.run = nil
	}
	if !run.expected {
		p.crashes = append(p.crashes, fmt.Sprintf("%s exited on its own at %s: %v", p.name, time.Now().Format(time.TimeOnly), run.err))
	}
}

// Stop sends SIGTERM and waits for the exit. It sends SIGKILL when the
// process is still running after stopTimeout, and then returns an error.
// An exit status other than 0 is an error too. Stop does nothing when the
// process is not running.
func (p *Process) Stop() error {
	run := p.claim()
	if run == nil {
		return nil
	}
	if err := run.process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send SIGTERM to %s: %w", p.name, err)
	}
	select {
	case <-run.exited:
	case <-time.After(stopTimeout):
		_ = run.process.Kill()
		<-run.exited
		return fmt.Errorf("stop %s: still running %s after SIGTERM, so it was killed; see %s", p.name, stopTimeout, p.logPath)
	}
	if run.err != nil {
		return fmt.Errorf("stop %s: %w; see %s", p.name, run.err, p.logPath)
	}
	return nil
}

// Kill sends SIGKILL, as kill -9 does, and waits for the exit. It does
// nothing when the process is not running.
func (p *Process) Kill() error {
	run := p.claim()
	if run == nil {
		return nil
	}
	if err := run.process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send SIGKILL to %s: %w", p.name, err)
	}
	<-run.exited
	return nil
}

// claim marks the current run as ended on request and returns it, or nil
// when the process is not running.
func (p *Process) claim() *processRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil {
		return nil
	}
	p.run.expected = true
	return p.run
}

// Running reports whether the process runs.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run != nil
}

// Crashes returns a description of every exit that no Stop or Kill asked
// for.
func (p *Process) Crashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.crashes...)
}
