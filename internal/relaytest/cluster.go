package relaytest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/appliance"
	"github.com/visitrelay/visitrelay/gateway"
	"github.com/visitrelay/visitrelay/internal/pgtest"
)

// Cluster is several gateway nodes in one NATS cluster, with the cloud
// streams replicated on each, and one appliance whose leafnode remote lists
// every node.
type Cluster struct {
	t         testing.TB
	Pool      *pgxpool.Pool
	Gateways  []*gateway.Gateway // nil while a node is stopped
	Appliance *appliance.Appliance

	configs      []gateway.Config
	applianceCfg appliance.Config
}

// StartCluster starts a gateway cluster of n nodes and an appliance.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := appliance.Migrate(ctx, pool, testLogger()); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	seedDirectory(t, pool)

	c := &Cluster{t: t, Pool: pool, Gateways: make([]*gateway.Gateway, n)}
	dir := t.TempDir()
	routes, leafURLs := make([]string, n), make([]string, n)
	routePorts, leafPorts, httpPorts := freePorts(t, n), freePorts(t, n), freePorts(t, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[i])
		leafURLs[i] = fmt.Sprintf("nats-leaf://127.0.0.1:%d", leafPorts[i])
	}
	for i := range n {
		cfg := gateway.DefaultConfig()
		cfg.Listen = "127.0.0.1:" + strconv.Itoa(httpPorts[i])
		cfg.StateDir = filepath.Join(dir, fmt.Sprintf("gateway-%d", i))
		cfg.Auth.KeyFile = filepath.Join(dir, "token.key") // shared, so a token works on every node
		cfg.NATS.Name = fmt.Sprintf("gateway-%d", i)
		cfg.NATS.LeafListen = "127.0.0.1:" + strconv.Itoa(leafPorts[i])
		cfg.Cluster.Name = "cloud"
		cfg.Cluster.Listen = "127.0.0.1:" + strconv.Itoa(routePorts[i])
		cfg.Cluster.Routes = routes
		c.configs = append(c.configs, cfg)
	}

	// Each node waits for a majority before it creates its streams, so
	// they start together.
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.StartGateway(i)
		}()
	}
	wg.Wait()

	c.applianceCfg = appliance.DefaultConfig()
	c.applianceCfg.StateDir = filepath.Join(dir, "appliance")
	c.applianceCfg.Database.URL = dsn
	c.applianceCfg.NATS.GatewayURLs = leafURLs
	c.applianceCfg.Committer.AckWait = 10 * time.Second
	c.applianceCfg.Status.Listen = "127.0.0.1:0"
	c.startAppliance()

	c.waitFor("the directory reaches every gateway node", time.Minute, func() bool {
		for _, g := range c.Gateways {
			if _, ok := g.Directory().User("anna.berger"); !ok {
				return false
			}
		}
		return true
	})
	return c
}

// URL returns the base URL of node i.
func (c *Cluster) URL(i int) string { return "http://" + c.configs[i].Listen }

// StartGateway starts node i with its config and state.
func (c *Cluster) StartGateway(i int) {
	g := gateway.New(c.configs[i], testLogger().With("side", c.configs[i].NATS.Name))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		c.t.Errorf("start gateway node %d: %v", i, err)
		return
	}
	c.Gateways[i] = g
	c.t.Cleanup(func() { c.StopGateway(i) })
}

// StopGateway shuts node i down; it is a no-op when it is stopped.
func (c *Cluster) StopGateway(i int) {
	g := c.Gateways[i]
	if g == nil {
		return
	}
	c.Gateways[i] = nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		c.t.Errorf("stop gateway node %d: %v", i, err)
	}
}

func (c *Cluster) startAppliance() {
	a := appliance.New(c.applianceCfg, testLogger().With("side", "appliance"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		c.t.Fatalf("start appliance: %v", err)
	}
	c.Appliance = a
	c.t.Cleanup(func() {
		stopCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
		defer stop()
		_ = a.Shutdown(stopCtx)
	})
}

func (c *Cluster) waitFor(what string, timeout time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	var listeners []net.Listener
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		listeners = append(listeners, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	for _, ln := range listeners {
		ln.Close()
	}
	return ports
}
