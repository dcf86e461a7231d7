package faulttest

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ClusterPoster posts visits to a gateway cluster as phones do when one DNS
// name has an address per node. Each new visit goes to the next node in
// turn, and each retry of a visit, with the same visitId, goes to the node
// after the one that failed. A network error, a 5xx or a 429 is retried
// until the visit is acknowledged or GiveUp passes.
type ClusterPoster struct {
	urls   []string
	tokens map[string]string // by user id
	next   atomic.Uint64     // the node of the next new visit

	// Workers is the number of concurrent clients.
	Workers int
	// Rate limits new visits to this many per second across all workers.
	// Retries are not paced. 0 posts as fast as the workers can.
	Rate float64
	// GiveUp bounds how long one visit is retried. Default 3 minutes.
	GiveUp time.Duration
	// MaxPause caps the pause between two attempts. Default 2 s.
	MaxPause time.Duration
	// Ledger records every post.
	Ledger *Ledger

	mu        sync.Mutex
	failures  []NodeFailures // by node
	firstNode map[string]int // the node each visit was first posted to
}

// NodeFailures counts one node's failed attempts.
type NodeFailures struct {
	// Network counts requests that failed without an HTTP response: the
	// connection was refused or reset.
	Network int
	// Status counts 5xx and 429 responses.
	Status int
}

// newClusterPoster logs every fixture user in, user i on node i modulo the
// node count, so that logins on every node are tested.
func newClusterPoster(t testing.TB, urls []string, workers int) *ClusterPoster {
	t.Helper()
	p := &ClusterPoster{urls: urls, tokens: map[string]string{}, Workers: workers,
		GiveUp: defaultGiveUp, MaxPause: defaultMaxPause, Ledger: NewLedger(),
		failures: make([]NodeFailures, len(urls)), firstNode: map[string]int{}}
	for i, u := range Users {
		token, err := p.Login(urls[i%len(urls)], u)
		if err != nil {
			t.Fatal(err)
		}
		p.tokens[u.ID] = token
	}
	return p
}

// Login logs u in at the node with base URL baseURL and returns the bearer
// token, retrying while the node is unreachable or responds with a 5xx.
func (p *ClusterPoster) Login(baseURL string, u User) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	return login(ctx, &http.Client{Timeout: requestTimeout}, baseURL, u)
}

// UseToken makes later posts of u's visits carry token.
func (p *ClusterPoster) UseToken(u User, token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens[u.ID] = token
}

func (p *ClusterPoster) token(userID string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens[userID]
}

// Failures returns the failed attempts of node i.
func (p *ClusterPoster) Failures(i int) NodeFailures {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failures[i]
}

// FirstPostedTo returns how many visits were first posted to each node.
func (p *ClusterPoster) FirstPostedTo() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	counts := make([]int, len(p.urls))
	for _, node := range p.firstNode {
		counts[node]++
	}
	return counts
}

func (p *ClusterPoster) recordFailure(node int, networkError bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if networkError {
		p.failures[node].Network++
		return
	}
	p.failures[node].Status++
}

// Start posts visits from Workers concurrent clients in the background.
func (p *ClusterPoster) Start(ctx context.Context, visits []Visit) *Burst {
	return startBurst(ctx, visits, p.Workers, p.Rate, p.NewClient, p.Post)
}

// NewClient returns an HTTP client that keeps one connection per node.
func (p *ClusterPoster) NewClient() *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 1
	return &http.Client{Transport: transport, Timeout: requestTimeout}
}

// Post posts v to the next node in turn, and after a failure to the node
// after that one, until a node acknowledges or rejects it, GiveUp passes
// or ctx ends. Every response goes into the ledger.
func (p *ClusterPoster) Post(ctx context.Context, client *http.Client, v Visit) (Ack, error) {
	first := int(p.next.Add(1)-1) % len(p.urls)
	p.mu.Lock()
	p.firstNode[v.VisitID] = first
	p.mu.Unlock()

	node := func(attempt int) int { return (first + attempt) % len(p.urls) }
	return postWithRetries(ctx, client, v, retryPolicy{ledger: p.Ledger, giveUp: p.GiveUp, maxPause: p.MaxPause},
		p.token(v.UserID),
		func(attempt int) string { return p.urls[node(attempt)] },
		func(attempt int, networkError bool) { p.recordFailure(node(attempt), networkError) })
}

// PostOnceTo sends v once to node i, without retries, records the
// response in the ledger, and returns the status and body. A network
// error, a 5xx or a 429 counts as retried, not as rejected.
func (p *ClusterPoster) PostOnceTo(ctx context.Context, client *http.Client, i int, v Visit) (int, []byte, error) {
	p.Ledger.sent(v)
	resp, err := send(ctx, client, http.MethodPost, p.urls[i]+visitsPath, p.token(v.UserID), v.JSON())
	switch {
	case err != nil || resp.status >= 500 || resp.status == http.StatusTooManyRequests:
		p.recordFailure(i, err != nil)
		p.Ledger.failed()
	case resp.status == http.StatusCreated || resp.status == http.StatusOK:
		ack, decodeErr := decodeAck(v.VisitID, resp)
		if decodeErr != nil {
			return resp.status, resp.body, decodeErr
		}
		p.Ledger.acknowledge(v.VisitID, ack)
	default:
		p.Ledger.reject(v.VisitID, resp.status, resp.body)
	}
	return resp.status, resp.body, err
}
