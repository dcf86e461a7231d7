package gateway

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connTracker remembers every HTTP connection and whether it has carried
// any request bytes. fasthttp v1.51.0 shuts down by closing idle keep-alive
// connections only, and marks a new connection active before reading from
// it, so a browser's pre-opened connection would hold a shutdown for the
// whole read timeout.
type connTracker struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newConnTracker() *connTracker {
	return &connTracker{conns: map[*trackedConn]struct{}{}}
}

// wrap returns a listener whose connections the tracker follows. It wraps
// the outermost listener, after TLS, so that only request bytes count.
func (t *connTracker) wrap(ln net.Listener) net.Listener {
	return &trackedListener{Listener: ln, tracker: t}
}

type trackedListener struct {
	net.Listener
	tracker *connTracker
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, tracker: l.tracker}
	l.tracker.mu.Lock()
	l.tracker.conns[tc] = struct{}{}
	l.tracker.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	tracker *connTracker
	read    atomic.Int64
	once    sync.Once
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.tracker.mu.Lock()
		delete(c.tracker.conns, c)
		c.tracker.mu.Unlock()
	})
	return c.Conn.Close()
}

// closeUnused closes the connections that never received a request byte.
// No request is lost: the client sent nothing on them.
func (t *connTracker) closeUnused() {
	t.mu.Lock()
	var unused []*trackedConn
	for c := range t.conns {
		if c.read.Load() == 0 {
			unused = append(unused, c)
		}
	}
	t.mu.Unlock()
	for _, c := range unused {
		_ = c.Close()
	}
}

// closeUnusedUntil keeps closing unused connections every 100 ms until done
// is closed, to catch connections accepted just before the listener closed.
func (t *connTracker) closeUnusedUntil(done <-chan struct{}) {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		t.closeUnused()
		select {
		case <-done:
			return
		case <-ticker.C:
		}
	}
}
