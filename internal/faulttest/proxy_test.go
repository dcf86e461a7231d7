package faulttest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// shortWait is how long a test waits for an echo that must not come.
const shortWait = 300 * time.Millisecond

// startEcho runs a TCP server on 127.0.0.1 that sends every line back.
func startEcho(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { listener.Close() })
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	return listener.Addr().String()
}

// dial opens a connection through the proxy.
func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// echo sends a line and returns what comes back within wait.
func echo(conn net.Conn, line string, wait time.Duration) (string, error) {
	if _, err := conn.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func TestProxyForwardsUntilCut(t *testing.T) {
	p := NewProxy(t, startEcho(t))
	conn := dial(t, p)
	if got, err := echo(conn, "before", time.Second); err != nil || got != "before" {
		t.Fatalf("echo before the cut: %q, %v", got, err)
	}

	p.Cut()
	if _, err := echo(conn, "during", time.Second); err == nil {
		t.Error("an open connection still echoes after Cut")
	}
	if _, err := echo(dial(t, p), "new", time.Second); err == nil {
		t.Error("a new connection echoes while the proxy is cut")
	}

	p.Restore()
	if got, err := echo(dial(t, p), "after", time.Second); err != nil || got != "after" {
		t.Errorf("echo after Restore: %q, %v", got, err)
	}
}

func TestProxyHangs(t *testing.T) {
	tests := []struct {
		name    string
		hang    func(*Proxy)
		newEcho bool // whether a connection opened during the hang echoes
	}{
		{"hang everything", (*Proxy).Hang, false},
		{"hang open connections", (*Proxy).HangOpen, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProxy(t, startEcho(t))
			old := dial(t, p)
			if got, err := echo(old, "before", time.Second); err != nil || got != "before" {
				t.Fatalf("echo before the hang: %q, %v", got, err)
			}

			tt.hang(p)
			if _, err := echo(old, "delayed", shortWait); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("open connection during the hang: error %v, want a timeout with the connection still open", err)
			}
			got, err := echo(dial(t, p), "new", shortWait)
			if tt.newEcho && (err != nil || got != "new") {
				t.Errorf("new connection during the hang: %q, %v, want the echo", got, err)
			}
			if !tt.newEcho && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("new connection during the hang: %q, %v, want a timeout", got, err)
			}

			p.Restore()
			if err := old.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			delayed, err := bufio.NewReader(old).ReadString('\n')
			if err != nil || delayed != "delayed\n" {
				t.Errorf("open connection after Restore: %q, %v, want the line sent during the hang", delayed, err)
			}
		})
	}
}

func TestProxyFlapEndsRestored(t *testing.T) {
	p := NewProxy(t, startEcho(t))
	cuts := p.Flap(context.Background(), 50*time.Millisecond, 300*time.Millisecond)
	if cuts < 2 {
		t.Errorf("Flap cut the link %d times in 300ms at a 50ms period, want at least 2", cuts)
	}
	if got, err := echo(dial(t, p), "after", time.Second); err != nil || got != "after" {
		t.Errorf("echo after Flap: %q, %v", got, err)
	}
}

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		address string
		valid   bool
	}{
		{"127.0.0.1:5432", true},
		{"127.8.9.10:7422", true},
		{"[::1]:7422", true},
		{"10.0.0.5:5432", false},
		{"localhost:5432", false},
		{"db.example.com:5432", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			err := checkLoopback(tt.address)
			if (err == nil) != tt.valid {
				t.Errorf("checkLoopback(%q) = %v, want valid %t", tt.address, err, tt.valid)
			}
		})
	}
}
