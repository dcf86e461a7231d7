package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// errPortInUse means postgres exited because another process holds its port.
var errPortInUse = errors.New("port already in use")

const (
	// readyPollInterval is the pause between connection attempts while
	// postgres starts.
	readyPollInterval = 50 * time.Millisecond
	// connectAttemptTimeout bounds one connection attempt while postgres
	// starts, because a process that took the port may accept the TCP
	// connection and never respond.
	connectAttemptTimeout = 2 * time.Second
	// killTimeout bounds the wait after an immediate shutdown before Stop
	// kills the postmaster.
	killTimeout = 5 * time.Second
	// logTailBytes is how much of postgres.log a start error quotes.
	logTailBytes = 2048
)

// server is a running postgres process.
type server struct {
	process *os.Process
	// exited is closed once the process has exited and err is set.
	exited chan struct{}
	err    error
}

// launch starts postgres and waits until it accepts connections. When it
// does not, launch stops it and returns an error that quotes postgres.log.
func (c *Cluster) launch(ctx context.Context) (*server, error) {
	logFile, err := os.OpenFile(c.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open postgres log %q: %w", c.logPath(), err)
	}
	defer logFile.Close()
	logStart, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("seek postgres log %q: %w", c.logPath(), err)
	}

	srv, err := startProcess(c.postgresCommand(logFile))
	if err != nil {
		return nil, fmt.Errorf("start postgres from %q: %w", c.binDir, err)
	}

	if err := c.waitReady(ctx, srv); err != nil {
		if shutdownErr := srv.shutdown(ctx); shutdownErr != nil {
			c.logger.Warn("postgres did not stop after a failed start", "port", c.port, "error", shutdownErr)
		}
		logTail := c.logSince(logStart)
		if portTaken(logTail) {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return nil, fmt.Errorf("start postgres on port %d: %w; %s", c.port, err, logTail)
	}
	return srv, nil
}

// postgresCommand returns the postgres command line. Settings go on the
// command line, not into postgresql.conf, so that a reused data directory
// gets this run's port and socket directory.
func (c *Cluster) postgresCommand(logFile *os.File) *exec.Cmd {
	fsync := "off"
	if c.fsync {
		fsync = "on"
	}
	cmd := exec.Command(filepath.Join(c.binDir, "postgres"),
		"-D", c.dataDir(),
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+c.socketDir(),
		"-c", "fsync="+fsync,
	)
	cmd.Dir = c.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: c.owner,
		// An immediate shutdown when this process dies, so that a test
		// binary that crashes or times out leaves no server behind.
		Pdeathsig: syscall.SIGQUIT,
	}
	return cmd
}

// startProcess starts cmd and reaps it when it exits.
func startProcess(cmd *exec.Cmd) (*server, error) {
	srv := &server{exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Linux sends Pdeathsig when the thread that started the child
		// exits, not the process. Locking this goroutine to its thread
		// keeps that thread alive until postgres exits.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		srv.process = cmd.Process
		started <- nil

		srv.err = cmd.Wait()
		close(srv.exited)
	}()

	if err := <-started; err != nil {
		return nil, err
	}
	return srv, nil
}

// waitReady connects until postgres accepts a connection, postgres exits,
// or ctx ends.
func (c *Cluster) waitReady(ctx context.Context, srv *server) error {
	ticker := time.NewTicker(readyPollInterval)
	defer ticker.Stop()
	for {
		err := tryConnect(ctx, c.AdminDSN())
		if err == nil {
			return nil
		}

		select {
		case <-srv.exited:
			return fmt.Errorf("postgres exited before accepting connections: %w", srv.err)
		case <-ctx.Done():
			return fmt.Errorf("wait for connections: %w", errors.Join(ctx.Err(), err))
		case <-ticker.C:
		}
	}
}

// tryConnect opens and closes one connection.
func tryConnect(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, connectAttemptTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// logSince returns the end of what postgres wrote to its log from offset
// on, for an error message.
func (c *Cluster) logSince(offset int64) string {
	content, err := os.ReadFile(c.logPath())
	if err != nil {
		return fmt.Sprintf("read postgres log %q: %v", c.logPath(), err)
	}
	if offset > int64(len(content)) {
		offset = 0
	}
	written := content[offset:]
	if len(written) > logTailBytes {
		written = written[len(written)-logTailBytes:]
	}
	return fmt.Sprintf("postgres log %q ends with:\n%s", c.logPath(), bytes.TrimSpace(written))
}

// shutdown sends SIGINT (fast shutdown) and waits for the exit. When ctx
// ends first it sends SIGQUIT (immediate shutdown), and when the postmaster
// still runs after killTimeout it kills it.
func (s *server) shutdown(ctx context.Context) error {
	if err := s.process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send %s: %w", syscall.SIGINT, err)
	}
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
	}

	_ = s.process.Signal(syscall.SIGQUIT)
	select {
	case <-s.exited:
	case <-time.After(killTimeout):
		_ = s.process.Kill()
		<-s.exited
	}
	return fmt.Errorf("wait for fast shutdown: %w", ctx.Err())
}

// portTaken reports whether postgres wrote that it could not bind its port.
func portTaken(logText string) bool {
	return strings.Contains(logText, "could not bind") ||
		strings.Contains(logText, "Address already in use")
}
