package sdnotify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen opens a notify socket like systemd's and points NOTIFY_SOCKET at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on notify socket: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func read(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 256)
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

func TestNotifySendsState(t *testing.T) {
	conn := listen(t)
	sent, err := Notify(Ready)
	if err != nil || !sent {
		t.Fatalf("Notify(READY=1) = %v, %v; want true, nil", sent, err)
	}
	if got := read(t, conn); got != Ready {
		t.Errorf("socket received %q, want %q", got, Ready)
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	sent, err := Notify(Ready)
	if sent || err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET = %v, %v; want false, nil", sent, err)
	}
}

func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", strconv.Itoa(int((200 * time.Millisecond).Microseconds())))
	t.Setenv("WATCHDOG_PID", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	healthy := make(chan error, 1)
	healthy <- nil
	check := func() error {
		select {
		case err := <-healthy:
			healthy <- err
			return err
		default:
			return nil
		}
	}
	go RunWatchdog(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), check)

	if got := read(t, conn); got != Watchdog {
		t.Fatalf("socket received %q, want %q", got, Watchdog)
	}
	<-healthy
	healthy <- errors.New("nats server stopped")
	// Drain a ping that may have been sent before the check turned bad.
	_ = conn.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	_, _ = conn.Read(make([]byte, 64))
	_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 64)); err == nil {
		t.Errorf("watchdog pinged (%d bytes) while the health check failed", n)
	}
}

func TestWatchdogIntervalForOtherProcess(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("WATCHDOG_PID", "1")
	if got := WatchdogInterval(); got != 0 {
		t.Errorf("WatchdogInterval for another pid = %s, want 0", got)
	}
}
