package faulttest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/streams"
)

// ApplianceCluster is one gateway and three appliance nodes in one NATS
// cluster, all running as subprocesses. The on-prem streams have three
// replicas, every node has its own leafnode link to the gateway, and the
// committer is one durable consumer that every node pulls from.
type ApplianceCluster struct {
	*clusterBase

	// Gateway is the gateway process.
	Gateway *Process
	// URL is the gateway's HTTP base URL.
	URL string
	// GatewayNATSURL is the gateway's loopback NATS client URL.
	GatewayNATSURL string
	// Nodes are the appliance nodes.
	Nodes []*ApplianceNode
}

// ApplianceNode is one node of an ApplianceCluster.
type ApplianceNode struct {
	// Name is the node's NATS server name, such as appliance-0.
	Name string
	// Process is the node's visitrelay-appliance process.
	Process *Process

	configPath    string
	stateDir      string
	statusAddress string
}

// StartApplianceCluster writes the configs, migrates the database,
// imports the fixtures, starts the three appliance nodes together and then
// the gateway, and waits until the directory has reached the gateway.
// Everything stops when t ends.
//
// The nodes start first, so that the site's directory bucket exists when
// the gateway creates its mirror of it. Before the gateway waited for the
// site's streams to respond, the mirror's first request could go without a
// response in about half of the runs on 2 cores, and nats-server v2.15.3
// sent the next one 30 s later. The nodes' source of the cloud VISITS
// stream, created while the gateway was down, also started late: the
// first visits were stored about 25 s after the gateway was ready. Nodes
// restarted later source at once.
func StartApplianceCluster(t testing.TB, bins Binaries, o ClusterOptions) *ApplianceCluster {
	t.Helper()
	c := &ApplianceCluster{clusterBase: newClusterBase(t, bins, o.DatabaseURL)}
	c.writeConfigs(o)
	c.prepareDatabase(c.Nodes[0].configPath)

	c.StartNodes(0, 1, 2)
	if err := c.Gateway.Start(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("directory has %d users, %d clinics, %d devices", len(Users), len(Clinics), len(Devices))
	took := c.WaitFor("the directory reaches the gateway", readyTimeout, func() bool {
		body, err := getText(c.URL + "/readyz")
		return err == nil && strings.Contains(body, want)
	})
	t.Logf("the directory reached the gateway %s after it started", took.Round(time.Millisecond))
	return c
}

// writeConfigs picks the ports and writes every node's config and the
// gateway's.
func (c *ApplianceCluster) writeConfigs(o ClusterOptions) {
	c.t.Helper()
	httpAddress, leafAddress, natsAddress := freeAddress(c.t), freeAddress(c.t), freeAddress(c.t)
	c.URL = "http://" + httpAddress
	c.GatewayNATSURL = "nats://" + natsAddress

	routes := make([]string, clusterNodes)
	for i := range routes {
		routes[i] = freeAddress(c.t)
	}
	for i := range clusterNodes {
		node := &ApplianceNode{
			Name:          fmt.Sprintf("appliance-%d", i),
			configPath:    filepath.Join(c.dir, fmt.Sprintf("appliance-%d.yaml", i)),
			stateDir:      filepath.Join(c.dir, fmt.Sprintf("appliance-%d", i)),
			statusAddress: freeAddress(c.t),
		}
		config := fmt.Sprintf(`version: 1
stateDir: %q
database:
  url: %q
nats:
  name: %s
  gatewayURLs: [%q]
status:
  listen: %q
`, node.stateDir, o.DatabaseURL, node.Name, "nats-leaf://"+leafAddress, node.statusAddress)
		config += committerYAML
		config += clusterYAML("onprem", routes[i], routeURLs(routes))
		writeConfig(c.t, node.configPath, config)
		// Added first, the appliance nodes stop first at the end of the
		// test, so that they do not log the gateway going away.
		node.Process = c.addProcess("visitrelay-appliance", c.bins.Appliance, node.Name, node.configPath)
		c.Nodes = append(c.Nodes, node)
	}

	gatewayConfig := filepath.Join(c.dir, "gateway.yaml")
	writeConfig(c.t, gatewayConfig, fmt.Sprintf(`version: 1
listen: %q
stateDir: %q
nats:
  clientPort: %s
  leafListen: %q
`, httpAddress, filepath.Join(c.dir, "gateway"), port(natsAddress), leafAddress))
	c.Gateway = c.addProcess("visitrelay-gateway", c.bins.Gateway, "gateway", gatewayConfig)
}

// StartNodes starts the given appliance nodes at once and waits until each
// is ready. A clustered node finishes starting only once a majority of the
// nodes runs, so nodes that all stopped must start together.
func (c *ApplianceCluster) StartNodes(nodes ...int) {
	c.t.Helper()
	for _, i := range nodes {
		// The URL of the previous run must not be mistaken for this one's.
		urlFile := filepath.Join(c.Nodes[i].stateDir, "nats.url")
		if err := os.Remove(urlFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.t.Fatalf("remove the previous run's %s: %v", urlFile, err)
		}
		if err := c.Nodes[i].Process.Start(); err != nil {
			c.t.Fatal(err)
		}
	}
	for _, i := range nodes {
		// The status listener opens once the committer runs, and /readyz
		// returns 200 once JetStream is healthy and the database responds.
		c.WaitFor(c.Nodes[i].Name+" is ready", readyTimeout, func() bool {
			_, err := getText("http://" + c.Nodes[i].statusAddress + "/readyz")
			return err == nil
		})
	}
}

// StopNodes stops the given appliance nodes with SIGTERM, one after the
// other, and fails the test unless each exits cleanly.
func (c *ApplianceCluster) StopNodes(nodes ...int) {
	c.t.Helper()
	for _, i := range nodes {
		if err := c.Nodes[i].Process.Stop(); err != nil {
			c.t.Error(err)
		}
	}
}

// KillNode kills appliance node i with SIGKILL.
func (c *ApplianceCluster) KillNode(i int) {
	c.t.Helper()
	if err := c.Nodes[i].Process.Kill(); err != nil {
		c.t.Fatal(err)
	}
}

// NodeStatus reads /status.json of appliance node i.
func (c *ApplianceCluster) NodeStatus(i int) (ApplianceStatus, error) {
	return readApplianceStatus(c.Nodes[i].statusAddress)
}

// NodeIndex returns the index of the node with the given server name, or
// -1.
func (c *ApplianceCluster) NodeIndex(name string) int {
	for i, node := range c.Nodes {
		if node.Name == name {
			return i
		}
	}
	return -1
}

// CommitterReplicas returns the replicas of the on-prem VISITS stream and
// of its committer consumer, read through node i.
func (c *ApplianceCluster) CommitterReplicas(i int) (stream, consumer Replicas, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), siteTimeout)
	defer cancel()
	url, err := readNATSURL(c.Nodes[i].stateDir)
	if err != nil {
		return Replicas{}, Replicas{}, err
	}
	if stream, err = readReplicas(ctx, url, streams.Visits, ""); err != nil {
		return Replicas{}, Replicas{}, err
	}
	if consumer, err = readReplicas(ctx, url, streams.Visits, streams.Committer); err != nil {
		return Replicas{}, Replicas{}, err
	}
	return stream, consumer, nil
}

// NewPoster logs in every fixture user and returns a poster with workers
// concurrent clients for the gateway.
func (c *ApplianceCluster) NewPoster(workers int) *Poster {
	c.t.Helper()
	return c.system().NewPoster(workers)
}

// system returns a System that has what System.NewPoster and System.Check
// read: the test, the gateway's URLs and the database pool.
func (c *ApplianceCluster) system() *System {
	s := c.checker(c.GatewayNATSURL)
	s.URL = c.URL
	return s
}

// Check compares the database with the ledger as System.Check does.
func (c *ApplianceCluster) Check(ledger *Ledger) Result {
	c.t.Helper()
	return c.system().Check(ledger)
}

// CheckNoDeadLetters fails the test unless running node i reports no dead
// letter.
func (c *ApplianceCluster) CheckNoDeadLetters(i int) {
	c.t.Helper()
	c.checkNoDeadLetters(c.Nodes[i].configPath)
}
