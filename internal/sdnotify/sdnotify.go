// Package sdnotify reports to systemd a service's state over the socket in
// $NOTIFY_SOCKET, as sd_notify(3) describes: READY=1 once the service
// serves, WATCHDOG=1 while it is healthy, STOPPING=1 when it shuts down.
// Outside systemd, or in a unit without Type=notify, every call does
// nothing.
package sdnotify

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// States that a service sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// Status returns a STATUS= line, which systemctl status shows.
func Status(text string) string { return "STATUS=" + text }

// Notify sends state to systemd. It returns false, with no error, when
// $NOTIFY_SOCKET is not set.
func Notify(state string) (bool, error) {
	socket := os.Getenv("NOTIFY_SOCKET")
	if socket == "" {
		return false, nil
	}
	// A leading @ names a socket in the abstract namespace.
	if socket[0] == '@' {
		socket = "\x00" + socket[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("connect to NOTIFY_SOCKET: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("send %q to NOTIFY_SOCKET: %w", state, err)
	}
	return true, nil
}

// WatchdogInterval returns the watchdog timeout that systemd set for this
// process (WatchdogSec= in the unit), or 0 when there is none.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond
}

// RunWatchdog sends WATCHDOG=1 at half the watchdog timeout while healthy
// returns nil, until ctx ends. A check that fails withholds the ping, so
// systemd restarts a process that is stuck. It returns at once when the
// unit has no watchdog.
func RunWatchdog(ctx context.Context, logger *slog.Logger, healthy func() error) {
	timeout := WatchdogInterval()
	if timeout == 0 {
		return
	}
	ticker := time.NewTicker(timeout / 2)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := healthy(); err != nil {
			logger.Error("health check failed; withholding the systemd watchdog ping", "error", err)
			continue
		}
		if _, err := Notify(Watchdog); err != nil {
			logger.Warn("systemd watchdog ping failed", "error", err)
		}
	}
}
