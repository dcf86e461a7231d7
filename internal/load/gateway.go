package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Paths of the gateway's HTTP API v1.
const (
	loginPath   = "/api/v1/login"
	lookupsPath = "/api/v1/lookups"
	visitsPath  = "/api/v1/visits"
)

// maxResponseBytes bounds a response body read into memory. A full visit
// list of 1,000 entries is about 250 KiB.
const maxResponseBytes = 4 << 20

// gateway sends single requests to the gateway's API. It does not retry:
// retrier does.
type gateway struct {
	base    *url.URL
	client  *http.Client
	fresh   *http.Client
	timeout time.Duration
}

// apiCall is one request to the API.
type apiCall struct {
	method string
	path   string
	query  url.Values
	token  string
	body   []byte
	// fresh sends the request over a new connection, the way a phone that
	// lost the response resends from another network.
	fresh bool
}

// response is a status, header and body read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func newGateway(base *url.URL, client *http.Client, timeout time.Duration) *gateway {
	return &gateway{base: base, client: client, fresh: newFreshConnectionClient(client), timeout: timeout}
}

// do sends one request, bounded by the request timeout, and reads the whole
// response. An error means no response arrived.
func (g *gateway) do(ctx context.Context, call apiCall) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()

	endpoint := g.base.JoinPath(call.path)
	endpoint.RawQuery = call.query.Encode()
	var body io.Reader = http.NoBody
	if call.body != nil {
		body = bytes.NewReader(call.body)
	}
	req, err := http.NewRequestWithContext(ctx, call.method, endpoint.String(), body)
	if err != nil {
		return response{}, fmt.Errorf("build request %s %s: %w", call.method, call.path, err)
	}
	req.Header.Set("Accept", "application/json")
	if call.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if call.token != "" {
		req.Header.Set("Authorization", "Bearer "+call.token)
	}

	client := g.client
	if call.fresh {
		client = g.fresh
		req.Close = true
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("send %s %s: %w", call.method, call.path, err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return response{}, fmt.Errorf("read response of %s %s: %w", call.method, call.path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// newHTTPClient builds a client that keeps one idle connection per salesman,
// so a steady run does not open a connection per visit.
func newHTTPClient(connections int, insecure bool) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = connections
	transport.MaxIdleConns = max(transport.MaxIdleConns, connections)
	if insecure {
		// The operator asked for this with -insecure, for a lab gateway
		// whose certificate is self-signed.
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // #nosec G402
	}
	return &http.Client{Transport: transport}
}

// newFreshConnectionClient returns a copy of client whose transport never
// reuses a connection. A client with a custom RoundTripper is returned as it
// is, so a resend through it may go over a pooled connection.
func newFreshConnectionClient(client *http.Client) *http.Client {
	roundTripper := client.Transport
	if roundTripper == nil {
		roundTripper = http.DefaultTransport
	}
	transport, ok := roundTripper.(*http.Transport)
	if !ok {
		return client
	}

	clone := transport.Clone()
	clone.DisableKeepAlives = true
	copied := *client
	copied.Transport = clone
	return &copied
}
