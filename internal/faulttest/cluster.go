package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterNodes is the size of every cluster the harness starts: the
// smallest with a majority left when one node is killed.
const clusterNodes = 3

// ClusterOptions configure a GatewayCluster or an ApplianceCluster.
type ClusterOptions struct {
	// DatabaseURL is the database the appliances commit to. Required.
	DatabaseURL string
}

// committerYAML is the committer section of every appliance config. The
// ack wait is 10 s rather than the default minute, so that a batch lost
// with a killed node is redelivered soon.
const committerYAML = "committer:\n  ackWait: 10s\n"

// clusterBase is the state that a gateway cluster and an appliance cluster
// share: the directory, the database, and every process, for crash checks
// and the shutdown at the end of the test.
type clusterBase struct {
	t    testing.TB
	bins Binaries

	// dir contains the configs, the fixture CSV files and the state
	// directories. logDir contains the logs.
	dir    string
	logDir string
	// Pool connects to the database for checks.
	Pool *pgxpool.Pool
	// processes are stopped in this order when the test ends, so the
	// appliances come first.
	processes []*Process
}

// newClusterBase connects to the check database and writes the fixture
// CSV files. The processes are added by the caller.
func newClusterBase(t testing.TB, bins Binaries, databaseURL string) *clusterBase {
	t.Helper()
	if databaseURL == "" {
		t.Fatal("start cluster: a database URL is required")
	}
	dir := t.TempDir()
	c := &clusterBase{t: t, bins: bins, dir: dir, logDir: logDirectory(t, dir)}
	pool, err := pgxpool.New(context.Background(), databaseURL)
	if err != nil {
		t.Fatalf("connect to the check database: %v", err)
	}
	t.Cleanup(pool.Close)
	c.Pool = pool
	if err := writeFixtures(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.shutdown)
	return c
}

// addProcess prepares a process whose output goes to NAME.log.
func (c *clusterBase) addProcess(binaryName, path, logName, configPath string) *Process {
	p := newProcess(binaryName, path, filepath.Join(c.logDir, logName+".log"), "run", "-config", configPath)
	c.processes = append(c.processes, p)
	return p
}

// prepareDatabase migrates the database and imports the fixture users,
// clinics and devices with the admin commands of the appliance whose config
// is at configPath.
func (c *clusterBase) prepareDatabase(configPath string) {
	c.t.Helper()
	c.mustAdmin(configPath, "db migrate")
	for _, kind := range []string{"users", "clients", "devices"} {
		c.mustAdmin(configPath, "import "+kind, filepath.Join(c.dir, kind+".csv"))
	}
}

// admin runs an appliance admin command with the config at configPath, as
// System.Admin does, and returns its combined output.
func (c *clusterBase) admin(configPath, command string, args ...string) (string, error) {
	argv := append(strings.Fields(command), "-config", configPath)
	argv = append(argv, args...)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bins.Appliance, argv...)
	cmd.Env = childEnv()
	output, err := cmd.CombinedOutput()
	if err != nil {
		return string(output), fmt.Errorf("visitrelay-appliance %s: %w: %s", strings.Join(argv, " "), err, output)
	}
	return string(output), nil
}

func (c *clusterBase) mustAdmin(configPath, command string, args ...string) string {
	c.t.Helper()
	output, err := c.admin(configPath, command, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return output
}

// checkNoDeadLetters runs `deadletters list` against the running appliance
// node whose config is at configPath, and fails the test unless it reports
// none.
func (c *clusterBase) checkNoDeadLetters(configPath string) {
	c.t.Helper()
	output, err := c.admin(configPath, "deadletters list")
	if err != nil {
		c.t.Errorf("list dead letters: %v", err)
		return
	}
	if strings.TrimSpace(output) != "no dead letters" {
		c.t.Errorf("deadletters list printed:\n%s\nwant no dead letters", output)
	}
}

// WaitFor polls cond every 100 ms until it holds, and fails the test after
// timeout, or at once when a process of the cluster exits without a Stop
// or Kill. It returns how long the wait took.
func (c *clusterBase) WaitFor(what string, timeout time.Duration, cond func() bool) time.Duration {
	c.t.Helper()
	return WaitFor(c.t, what, timeout, func() bool {
		for _, p := range c.processes {
			if crashes := p.Crashes(); len(crashes) > 0 {
				c.t.Fatalf("waiting until %s: %s; see %s", what, crashes[0], p.LogPath())
			}
		}
		return cond()
	})
}

// checker returns a System that has only what System.Check and
// System.countStored read: the test, the database pool, and the loopback
// NATS URL of a gateway node for the cloud stream.
func (c *clusterBase) checker(gatewayNATSURL string) *System {
	return &System{t: c.t, Pool: c.Pool, GatewayNATSURL: gatewayNATSURL}
}

// WaitStored waits until every visit the ledger holds as acknowledged has a
// row, and returns how long that took.
func (c *clusterBase) WaitStored(ledger *Ledger, timeout time.Duration) time.Duration {
	c.t.Helper()
	_, acks := ledger.snapshot()
	ids := make([]string, 0, len(acks))
	for id := range acks {
		ids = append(ids, id)
	}
	view := c.checker("")
	return c.WaitFor(fmt.Sprintf("all %d acknowledged visits are stored", len(ids)), timeout, func() bool {
		n, err := view.countStored(ids)
		return err == nil && n == len(ids)
	})
}

// CountRows returns the number of rows in the visits table, or -1 when the
// database is unreachable.
func (c *clusterBase) CountRows() int {
	return c.checker("").CountRows()
}

// shutdown stops every process in order, reports every exit that no test
// step asked for, and prints the end of each log when the test failed.
func (c *clusterBase) shutdown() {
	for _, p := range c.processes {
		if err := p.Stop(); err != nil {
			c.t.Errorf("stop at the end of the test: %v", err)
		}
	}
	for _, p := range c.processes {
		for _, crash := range p.Crashes() {
			c.t.Errorf("%s; see %s", crash, p.LogPath())
		}
	}
	if !c.t.Failed() {
		return
	}
	for _, p := range c.processes {
		c.t.Logf("last %d lines of %s:\n%s", logTailLines, p.LogPath(), tail(p.LogPath(), logTailLines))
	}
}

func writeConfig(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("write config: %v", err)
	}
}

// routeURLs returns the nats-route URLs of the route listeners at addresses.
func routeURLs(addresses []string) []string {
	urls := make([]string, len(addresses))
	for i, address := range addresses {
		urls[i] = "nats-route://" + address
	}
	return urls
}

// clusterYAML returns a config's cluster section for a node whose route
// listener is at listen.
func clusterYAML(name, listen string, routes []string) string {
	return fmt.Sprintf(`cluster:
  name: %s
  listen: %q
  routes: [%s]
`, name, listen, quoteList(routes))
}

// quoteList returns the items as a YAML flow sequence's content.
func quoteList(items []string) string {
	quoted := make([]string, len(items))
	for i, item := range items {
		quoted[i] = fmt.Sprintf("%q", item)
	}
	return strings.Join(quoted, ", ")
}

// Replicas is the leader and the peers of a replicated stream or consumer,
// as the leader reports them.
type Replicas struct {
	// Leader is the server name of the leader, "" during an election.
	Leader string
	// Peers are the other members of the group.
	Peers []jetstream.PeerInfo
}

// Current reports whether server is the leader, or a peer that is online,
// current and without lag.
func (r Replicas) Current(server string) bool {
	if r.Leader == server {
		return true
	}
	return slices.ContainsFunc(r.Peers, func(p jetstream.PeerInfo) bool {
		return p.Name == server && p.Current && !p.Offline && p.Lag == 0
	})
}

// String lists the leader and each peer's state, for logs and failures.
func (r Replicas) String() string {
	peers := make([]string, len(r.Peers))
	for i, p := range r.Peers {
		peers[i] = fmt.Sprintf("%s current=%t offline=%t lag=%d", p.Name, p.Current, p.Offline, p.Lag)
	}
	return fmt.Sprintf("leader %q, peers [%s]", r.Leader, strings.Join(peers, "; "))
}

func replicasOf(info *jetstream.ClusterInfo) Replicas {
	if info == nil {
		return Replicas{}
	}
	r := Replicas{Leader: info.Leader}
	for _, p := range info.Replicas {
		r.Peers = append(r.Peers, *p)
	}
	return r
}

// readReplicas connects to a node's loopback NATS client URL and returns
// the replicas of the stream, or of its consumer when consumer is not "".
func readReplicas(ctx context.Context, natsURL, stream, consumer string) (Replicas, error) {
	nc, err := nats.Connect(natsURL, nats.Name("faulttest"))
	if err != nil {
		return Replicas{}, fmt.Errorf("connect to %s: %w", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return Replicas{}, fmt.Errorf("open JetStream context: %w", err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return Replicas{}, fmt.Errorf("read stream %s: %w", stream, err)
	}
	if consumer == "" {
		return replicasOf(s.CachedInfo().Cluster), nil
	}
	cons, err := s.Consumer(ctx, consumer)
	if err != nil {
		return Replicas{}, fmt.Errorf("read consumer %s of stream %s: %w", consumer, stream, err)
	}
	return replicasOf(cons.CachedInfo().Cluster), nil
}

// getText returns the body of a GET, or an error unless the status is 200.
func getText(url string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	return string(body), nil
}

// ApplianceStatus is the part of an appliance's /status.json that the
// cluster tests read.
type ApplianceStatus struct {
	Leafnode struct {
		Connected bool `json:"connected"`
		// Remote is "NAME at IP:PORT" of the gateway node the link is on.
		Remote string `json:"remote"`
	} `json:"leafnode"`
	Commits struct {
		// Committed counts the visits this process inserted and acked
		// since it started.
		Committed int64 `json:"committed"`
		// Duplicates counts the visits this process found stored already
		// and acked, such as a redelivery of a visit whose row another
		// delivery inserted.
		Duplicates int64 `json:"duplicates"`
	} `json:"commits"`
}

// Finished returns the visits this process acked after their row was in the
// database, whether it inserted the row or found it stored.
func (s ApplianceStatus) Finished() int64 {
	return s.Commits.Committed + s.Commits.Duplicates
}

// LeafnodeServer returns the server name of the gateway node that the
// appliance's leafnode link is on, or "" while the link is down.
func (s ApplianceStatus) LeafnodeServer() string {
	if !s.Leafnode.Connected {
		return ""
	}
	name, _, _ := strings.Cut(s.Leafnode.Remote, " at ")
	return name
}

// readApplianceStatus reads /status.json from an appliance's status
// listener at address. The page refreshes its figures every 2 seconds.
func readApplianceStatus(address string) (ApplianceStatus, error) {
	body, err := getText("http://" + address + "/status.json")
	if err != nil {
		return ApplianceStatus{}, err
	}
	var st ApplianceStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return ApplianceStatus{}, fmt.Errorf("decode the appliance's status.json: %w", err)
	}
	return st, nil
}

// readNATSURL returns the loopback NATS client URL that a running
// appliance wrote into its state directory.
func readNATSURL(stateDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, "nats.url"))
	if err != nil {
		return "", fmt.Errorf("read the appliance's NATS URL: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
