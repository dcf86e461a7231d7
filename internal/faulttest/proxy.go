package faulttest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy on 127.0.0.1 that a test places between two of its
// own processes, such as the appliance and the gateway's leafnode port, to
// break the link between them on purpose.
type Proxy struct {
	listener net.Listener
	target   string

	mu    sync.Mutex
	cond  *sync.Cond // signalled when hung changes or a connection closes
	conns map[*proxyConn]struct{}
	cut   bool // close every connection and every new one at once
	hung  bool // keep connections open but forward nothing
	done  bool
	wg    sync.WaitGroup
}

// proxyConn is one client connection and its connection to the target.
type proxyConn struct {
	client, server net.Conn
	closed         bool
	hung           bool // this connection forwards nothing until Restore
}

// NewProxy listens on a free port of 127.0.0.1 and forwards every
// connection to target, which must be a loopback address. It closes when
// t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	if err := checkLoopback(target); err != nil {
		t.Fatal(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for proxy to %s: %v", target, err)
	}
	p := &Proxy{listener: listener, target: target, conns: map[*proxyConn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// checkLoopback returns an error unless address is host:port with a
// loopback IP, so that a test can only break links on this machine.
func checkLoopback(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("proxy target %q: %w", address, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("proxy target %q: must be a loopback IP such as 127.0.0.1 or ::1", address)
	}
	return nil
}

// Addr returns the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.listener.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		reject := p.cut || p.done
		p.mu.Unlock()
		if reject {
			client.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

// serve connects to the target and copies bytes both ways until either
// side closes or the proxy cuts the connection.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	c := &proxyConn{client: client, server: server}
	p.mu.Lock()
	if p.cut || p.done {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()

	var copies sync.WaitGroup
	copies.Go(func() { p.copy(c, server, client) })
	copies.Go(func() { p.copy(c, client, server) })
	copies.Wait()

	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// copy forwards from src to dst. Each chunk waits while the proxy hangs, so
// a hung link keeps its connections open but delivers nothing.
func (p *Proxy) copy(c *proxyConn, dst, src net.Conn) {
	defer p.closeConn(c)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitForwarding(c) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitForwarding blocks while the proxy hangs and reports whether the
// connection is still open.
func (p *Proxy) waitForwarding(c *proxyConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for (p.hung || c.hung) && !c.closed {
		p.cond.Wait()
	}
	return !c.closed
}

func (p *Proxy) closeConn(c *proxyConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeConnLocked(c)
}

func (p *Proxy) closeConnLocked(c *proxyConn) {
	if c.closed {
		return
	}
	c.closed = true
	c.client.Close()
	c.server.Close()
	p.cond.Broadcast()
}

// Cut closes every open connection and closes each new one as soon as it
// is accepted, until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		p.closeConnLocked(c)
	}
}

// Restore accepts and forwards connections again after Cut or Hang.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.hung = false
	for c := range p.conns {
		c.hung = false
	}
	p.cond.Broadcast()
}

// Hang stops forwarding without closing anything, as a network that drops
// every packet does: open connections stay open and new ones are accepted,
// but no byte reaches the other side until Restore.
func (p *Proxy) Hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hung = true
}

// HangOpen stops forwarding on the connections open now, without closing
// them, as a firewall that forgot a connection's state does. New
// connections are forwarded as usual. Restore forwards on the old ones
// again.
func (p *Proxy) HangOpen() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.hung = true
	}
}

// Connections returns the number of open connections through the proxy.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Flap cuts and restores the link every period until total has passed or
// ctx ends, and returns with the link restored. It returns the number of
// cuts.
func (p *Proxy) Flap(ctx context.Context, period, total time.Duration) int {
	ctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	defer p.Restore()
	cuts := 0
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		p.Cut()
		cuts++
		select {
		case <-ctx.Done():
			return cuts
		case <-ticker.C:
		}
		p.Restore()
		select {
		case <-ctx.Done():
			return cuts
		case <-ticker.C:
		}
	}
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	for c := range p.conns {
		p.closeConnLocked(c)
	}
	p.mu.Unlock()
	_ = p.listener.Close()
	p.wg.Wait()
}
