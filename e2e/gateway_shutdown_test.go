package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// shutdownGrace is how long a gateway with no request in flight may take to
// shut down.
const shutdownGrace = 5 * time.Second

// A browser opens connections ahead of its requests, and Go's HTTP client
// keeps spare connections that it dialed for requests that other
// connections served. Such a connection carries no request, so shutting
// down must not wait for it.
func TestGatewayShutdownSkipsUnusedConnection(t *testing.T) {
	e := relaytest.Start(t)
	conn, err := net.Dial("tcp", e.Gateway.HTTPAddr())
	if err != nil {
		t.Fatalf("connect to the gateway: %v", err)
	}
	defer conn.Close()
	// Let the gateway accept the connection before it stops listening.
	time.Sleep(200 * time.Millisecond)

	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(stopped)
		e.StopGateway()
	}()
	select {
	case <-stopped:
		t.Logf("gateway stopped after %s", time.Since(start).Round(time.Millisecond))
	case <-time.After(shutdownGrace):
		t.Errorf("gateway shutdown still waits after %s for a connection that sent no request", shutdownGrace)
		// Closing the connection from the client side lets the shutdown end.
		conn.Close()
		<-stopped
	}
}
