package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/health"
	"github.com/visitrelay/visitrelay/internal/streams"
)

// GatewayCluster is three gateway nodes in one NATS cluster, whose cloud
// VISITS stream has three replicas, and one appliance whose leafnode remote
// lists every node, all running as subprocesses.
type GatewayCluster struct {
	*clusterBase

	// Nodes are the gateway nodes.
	Nodes []*GatewayNode
	// Appliance is the appliance process.
	Appliance *Process

	applianceConfig string
	statusAddress   string // the appliance's status listener
}

// GatewayNode is one node of a GatewayCluster.
type GatewayNode struct {
	// Name is the node's NATS server name, such as gateway-0.
	Name string
	// Process is the node's visitrelay-gateway process.
	Process *Process
	// URL is the node's HTTP base URL.
	URL string
	// NATSURL is the node's loopback NATS client URL.
	NATSURL string

	configPath string
}

// StartGatewayCluster writes the configs, migrates the database, imports
// the fixtures, starts the three gateway nodes together and then the
// appliance, and waits until the directory has reached every node.
// Everything stops when t ends.
func StartGatewayCluster(t testing.TB, bins Binaries, o ClusterOptions) *GatewayCluster {
	t.Helper()
	c := &GatewayCluster{clusterBase: newClusterBase(t, bins, o.DatabaseURL)}
	c.writeConfigs(o)
	c.prepareDatabase(c.applianceConfig)

	for _, node := range c.Nodes {
		if err := node.Process.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range c.Nodes {
		c.waitGatewayReady(i)
	}
	c.startAppliance()
	want := fmt.Sprintf("directory has %d users, %d clinics, %d devices", len(Users), len(Clinics), len(Devices))
	c.WaitFor("the directory reaches every gateway node", readyTimeout, func() bool {
		for _, node := range c.Nodes {
			body, err := getText(node.URL + "/readyz")
			if err != nil || !strings.Contains(body, want) {
				return false
			}
		}
		return true
	})
	return c
}

// writeConfigs picks the ports and writes the appliance's config and every
// node's. The gateway nodes share one token key, so that a token from a
// login on one node is valid on every node.
func (c *GatewayCluster) writeConfigs(o ClusterOptions) {
	c.t.Helper()
	routes := make([]string, clusterNodes)
	for i := range routes {
		routes[i] = freeAddress(c.t)
	}
	httpAddresses, leafAddresses, natsAddresses := make([]string, clusterNodes), make([]string, clusterNodes), make([]string, clusterNodes)
	leafURLs := make([]string, clusterNodes)
	for i := range clusterNodes {
		httpAddresses[i], leafAddresses[i], natsAddresses[i] = freeAddress(c.t), freeAddress(c.t), freeAddress(c.t)
		leafURLs[i] = "nats-leaf://" + leafAddresses[i]
	}

	c.applianceConfig = filepath.Join(c.dir, "appliance.yaml")
	c.statusAddress = freeAddress(c.t)
	writeConfig(c.t, c.applianceConfig, fmt.Sprintf(`version: 1
stateDir: %q
database:
  url: %q
nats:
  gatewayURLs: [%s]
status:
  listen: %q
`, filepath.Join(c.dir, "appliance"), o.DatabaseURL, quoteList(leafURLs), c.statusAddress)+committerYAML)
	// Added first, the appliance stops first at the end of the test, so
	// that it does not log the gateway nodes going away.
	c.Appliance = c.addProcess("visitrelay-appliance", c.bins.Appliance, "appliance", c.applianceConfig)

	keyFile := filepath.Join(c.dir, "token.key")
	for i := range clusterNodes {
		node := &GatewayNode{
			Name:       fmt.Sprintf("gateway-%d", i),
			URL:        "http://" + httpAddresses[i],
			NATSURL:    "nats://" + natsAddresses[i],
			configPath: filepath.Join(c.dir, fmt.Sprintf("gateway-%d.yaml", i)),
		}
		config := fmt.Sprintf(`version: 1
listen: %q
stateDir: %q
nats:
  name: %s
  clientPort: %s
  leafListen: %q
auth:
  keyFile: %q
`, httpAddresses[i], filepath.Join(c.dir, node.Name), node.Name, port(natsAddresses[i]), leafAddresses[i], keyFile)
		config += clusterYAML("cloud", routes[i], routeURLs(routes))
		writeConfig(c.t, node.configPath, config)
		node.Process = c.addProcess("visitrelay-gateway", c.bins.Gateway, node.Name, node.configPath)
		c.Nodes = append(c.Nodes, node)
	}
}

// waitGatewayReady waits until node i's /readyz returns 200.
func (c *GatewayCluster) waitGatewayReady(i int) {
	c.t.Helper()
	c.WaitFor(c.Nodes[i].Name+" is ready", readyTimeout, func() bool {
		_, err := getText(c.Nodes[i].URL + "/readyz")
		return err == nil
	})
}

// startAppliance starts the appliance and waits until its status listener
// reports it ready, which it opens once the committer runs.
func (c *GatewayCluster) startAppliance() {
	c.t.Helper()
	if err := c.Appliance.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.WaitFor("the appliance is ready", readyTimeout, func() bool {
		_, err := getText("http://" + c.statusAddress + "/readyz")
		return err == nil
	})
}

// StartNode starts gateway node i again with its store and waits until it
// is ready.
func (c *GatewayCluster) StartNode(i int) {
	c.t.Helper()
	if err := c.Nodes[i].Process.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.waitGatewayReady(i)
}

// KillNode kills gateway node i with SIGKILL.
func (c *GatewayCluster) KillNode(i int) {
	c.t.Helper()
	if err := c.Nodes[i].Process.Kill(); err != nil {
		c.t.Fatal(err)
	}
}

// ApplianceStatus reads the appliance's /status.json.
func (c *GatewayCluster) ApplianceStatus() (ApplianceStatus, error) {
	return readApplianceStatus(c.statusAddress)
}

// LeafnodeNode waits until the appliance reports its leafnode link up on a
// node other than except (-1 for any), and returns that node's index.
func (c *GatewayCluster) LeafnodeNode(except int, timeout time.Duration) int {
	c.t.Helper()
	found := -1
	c.WaitFor("the appliance's leafnode link is up", timeout, func() bool {
		st, err := c.ApplianceStatus()
		if err != nil {
			return false
		}
		for i, node := range c.Nodes {
			if i != except && node.Name == st.LeafnodeServer() {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

// VisitsReplicas returns the replicas of the cloud VISITS stream, read
// through node i.
func (c *GatewayCluster) VisitsReplicas(i int) (Replicas, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cloudTimeout)
	defer cancel()
	return readReplicas(ctx, c.Nodes[i].NATSURL, streams.Visits, "")
}

// NewPoster logs every fixture user in, each on another node in turn, and
// returns a poster with workers concurrent clients that spreads its posts
// over every node.
func (c *GatewayCluster) NewPoster(workers int) *ClusterPoster {
	c.t.Helper()
	urls := make([]string, len(c.Nodes))
	for i, node := range c.Nodes {
		urls[i] = node.URL
	}
	return newClusterPoster(c.t, urls, workers)
}

// Check compares the database with the ledger as System.Check does, and
// reads the cloud stream through node i, which must be running.
func (c *GatewayCluster) Check(ledger *Ledger, i int) Result {
	c.t.Helper()
	return c.checker(c.Nodes[i].NATSURL).Check(ledger)
}

// CheckNoDeadLetters fails the test unless the appliance reports no dead
// letter.
func (c *GatewayCluster) CheckNoDeadLetters() {
	c.t.Helper()
	c.checkNoDeadLetters(c.applianceConfig)
}

// GatewayNodeStatus is the part of a gateway node's /status.json that the
// cluster tests read.
type GatewayNodeStatus struct {
	Verdict    health.Verdict `json:"verdict"`
	SiteLinked bool           `json:"siteLinked"`
	Stream     struct {
		Replicas        int      `json:"replicas"`
		ReplicasCurrent int      `json:"replicasCurrent"`
		ReplicasLost    []string `json:"replicasLost"`
	} `json:"stream"`
}

// HasWarning reports whether the verdict carries a warning with code.
func (s GatewayNodeStatus) HasWarning(code string) bool {
	return slices.ContainsFunc(s.Verdict.Warnings, func(w health.Warning) bool { return w.Code == code })
}

// NodeStatus reads node i's /status.json with the admin token that the
// node wrote to its state directory.
func (c *GatewayCluster) NodeStatus(i int) (GatewayNodeStatus, error) {
	token, err := os.ReadFile(filepath.Join(c.dir, c.Nodes[i].Name, "admin.token"))
	if err != nil {
		return GatewayNodeStatus{}, fmt.Errorf("read %s's admin token: %w", c.Nodes[i].Name, err)
	}
	req, err := http.NewRequest(http.MethodGet, c.Nodes[i].URL+"/status.json", nil)
	if err != nil {
		return GatewayNodeStatus{}, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return GatewayNodeStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return GatewayNodeStatus{}, fmt.Errorf("GET %s/status.json: status %d", c.Nodes[i].URL, resp.StatusCode)
	}
	var st GatewayNodeStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return GatewayNodeStatus{}, fmt.Errorf("decode %s's /status.json: %w", c.Nodes[i].Name, err)
	}
	return st, nil
}
