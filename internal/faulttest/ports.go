package faulttest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports for the processes' listeners come from below the ephemeral port
// range. A process binds its port again after each restart, and in the
// meantime a port from the ephemeral range may become the source port of an
// outgoing connection, which makes the bind fail.
const (
	lowestPort       = 10000
	defaultEphemeral = 32768 // Linux's default start of ip_local_port_range
	portAttempts     = 100
)

// handedOut holds the ports freeAddress has returned, so that concurrent
// tests of one binary never get the same one.
var handedOut struct {
	mu    sync.Mutex
	ports map[int]bool
}

// freeAddress returns 127.0.0.1:PORT with a port below the ephemeral range
// that was free a moment ago and that no other test of this binary got.
func freeAddress(t testing.TB) string {
	t.Helper()
	handedOut.mu.Lock()
	defer handedOut.mu.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}

	highest := ephemeralStart() - 1
	for range portAttempts {
		port := lowestPort + rand.IntN(highest-lowestPort+1)
		if handedOut.ports[port] {
			continue
		}
		address := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		listener, err := net.Listen("tcp", address)
		if err != nil {
			continue
		}
		listener.Close()
		handedOut.ports[port] = true
		return address
	}
	t.Fatalf("find a free port from %d to %d: %d random ports were taken", lowestPort, highest, portAttempts)
	return ""
}

// ephemeralStart returns the first port of Linux's ephemeral range, or its
// default where the range cannot be read or leaves too few ports below it.
func ephemeralStart() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultEphemeral
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return defaultEphemeral
	}
	start, err := strconv.Atoi(fields[0])
	if err != nil || start < lowestPort+1000 {
		return defaultEphemeral
	}
	return start
}
