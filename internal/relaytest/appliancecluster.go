package relaytest

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/appliance"
)

// ApplianceCluster is one gateway and several appliance nodes in one NATS
// cluster, the on-prem streams replicated on each and the committer a
// durable consumer that every node pulls from.
type ApplianceCluster struct {
	*Env
	Nodes   []*appliance.Appliance // nil while a node is stopped
	configs []appliance.Config
}

// StartApplianceCluster starts a gateway and an appliance cluster of n
// nodes on one database.
func StartApplianceCluster(t testing.TB, n int) *ApplianceCluster {
	t.Helper()
	e := Start(t)
	// The single appliance that Start runs gives way to the cluster; its
	// store goes with it.
	e.StopAppliance()

	c := &ApplianceCluster{Env: e, Nodes: make([]*appliance.Appliance, n)}
	dir := t.TempDir()
	routePorts := freePorts(t, n)
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[i])
	}
	for i := range n {
		cfg := e.applianceCfg
		cfg.StateDir = filepath.Join(dir, fmt.Sprintf("appliance-%d", i))
		cfg.NATS.Name = fmt.Sprintf("appliance-%d", i)
		cfg.NATS.Domain = "onprem-ha"
		cfg.Cluster.Name = "onprem"
		cfg.Cluster.Listen = "127.0.0.1:" + strconv.Itoa(routePorts[i])
		cfg.Cluster.Routes = routes
		c.configs = append(c.configs, cfg)
	}
	// The gateway sources receipts and the directory from the site's
	// domain, which the cluster serves under its own name.
	e.StopGateway()
	e.gatewayCfg.NATS.SiteDomain = "onprem-ha"
	e.gatewayCfg.StateDir = filepath.Join(dir, "gateway")
	e.StartGateway()

	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.StartNode(i)
		}()
	}
	wg.Wait()
	e.WaitFor("the cluster's directory reaches the gateway", time.Minute, func() bool {
		_, ok := e.Gateway.Directory().User("anna.berger")
		return ok
	})
	return c
}

// StartNode starts appliance node i with its config and state.
func (c *ApplianceCluster) StartNode(i int) {
	a := appliance.New(c.configs[i], testLogger().With("side", c.configs[i].NATS.Name))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		c.t.Errorf("start appliance node %d: %v", i, err)
		return
	}
	c.Nodes[i] = a
	c.t.Cleanup(func() { c.StopNode(i) })
}

// StopNode shuts appliance node i down; it is a no-op when it is stopped.
func (c *ApplianceCluster) StopNode(i int) {
	a := c.Nodes[i]
	if a == nil {
		return
	}
	c.Nodes[i] = nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		c.t.Errorf("stop appliance node %d: %v", i, err)
	}
}
