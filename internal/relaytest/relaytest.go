// Package relaytest starts a real gateway and a real appliance in-process,
// linked over a loopback leafnode, against a real PostgreSQL database, for
// end-to-end tests.
package relaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/appliance"
	"github.com/visitrelay/visitrelay/gateway"
	"github.com/visitrelay/visitrelay/internal/pgtest"
)

// Password is the password of every fixture user.
const Password = "correct horse battery"

// Users are the fixture salesmen: username to user id.
var Users = map[string]string{"anna.berger": "23", "luca.rossi": "7", "eva.novak": "12"}

// Env is a running gateway and appliance.
type Env struct {
	t         testing.TB
	DSN       string
	Pool      *pgxpool.Pool
	Gateway   *gateway.Gateway
	Appliance *appliance.Appliance
	URL       string // the gateway's base URL

	gatewayCfg   gateway.Config
	applianceCfg appliance.Config
	logger       *slog.Logger
}

// Start creates a database with the fixture directory and starts both sides.
// Everything is stopped in t.Cleanup.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartWithDSN(t, pgtest.NewDatabase(t))
}

// StartWithDSN is Start against a given database.
func StartWithDSN(t testing.TB, dsn string) *Env {
	t.Helper()
	ctx := context.Background()
	e := &Env{t: t, DSN: dsn, logger: testLogger()}

	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	t.Cleanup(pool.Close)
	e.Pool = pool
	if err := appliance.Migrate(ctx, pool, e.logger); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	seedDirectory(t, pool)

	dir := t.TempDir()
	e.gatewayCfg = gateway.DefaultConfig()
	e.gatewayCfg.Listen = "127.0.0.1:0"
	e.gatewayCfg.StateDir = filepath.Join(dir, "gateway")
	e.gatewayCfg.NATS.LeafListen = "127.0.0.1:0"
	e.StartGateway()

	e.applianceCfg = appliance.DefaultConfig()
	e.applianceCfg.StateDir = filepath.Join(dir, "appliance")
	e.applianceCfg.Database.URL = dsn
	e.applianceCfg.NATS.GatewayURLs = []string{"nats-leaf://127.0.0.1:" + strconv.Itoa(e.Gateway.LeafPort())}
	e.applianceCfg.Committer.AckWait = 10 * time.Second
	e.applianceCfg.Status.Listen = "127.0.0.1:0" // tests run side by side; port 8090 may be taken
	e.StartAppliance()

	e.WaitFor("directory reaches the gateway", 30*time.Second, func() bool {
		_, ok := e.Gateway.Directory().User("anna.berger")
		return ok && e.Gateway.Directory().HasClient("110") && e.Gateway.Directory().HasDevice(10)
	})
	return e
}

// GatewayConfig lets a test change the gateway's config before a restart.
func (e *Env) GatewayConfig() *gateway.Config { return &e.gatewayCfg }

// StartGateway starts the gateway, on the same ports as before if it ran.
func (e *Env) StartGateway() {
	e.t.Helper()
	g := gateway.New(e.gatewayCfg, e.logger.With("side", "gateway"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		e.t.Fatalf("start gateway: %v", err)
	}
	e.Gateway = g
	e.URL = "http://" + g.HTTPAddr()
	// Restarts must keep the addresses: phones and the appliance know them.
	e.gatewayCfg.Listen = g.HTTPAddr()
	e.gatewayCfg.NATS.LeafListen = "127.0.0.1:" + strconv.Itoa(g.LeafPort())
	e.t.Cleanup(func() { e.StopGateway() })
}

// StopGateway shuts the gateway down; it is a no-op when it is not running.
func (e *Env) StopGateway() {
	if e.Gateway == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Gateway.Shutdown(ctx); err != nil {
		e.t.Errorf("stop gateway: %v", err)
	}
	e.Gateway = nil
}

// StartAppliance starts the appliance with its existing state.
func (e *Env) StartAppliance() {
	e.t.Helper()
	a := appliance.New(e.applianceCfg, e.logger.With("side", "appliance"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		e.t.Fatalf("start appliance: %v", err)
	}
	e.Appliance = a
	e.t.Cleanup(func() { e.StopAppliance() })
}

// StopAppliance shuts the appliance down; it is a no-op when it is not running.
func (e *Env) StopAppliance() {
	if e.Appliance == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Appliance.Shutdown(ctx); err != nil {
		e.t.Errorf("stop appliance: %v", err)
	}
	e.Appliance = nil
}

// WaitFor polls cond until it holds, failing the test after timeout.
func (e *Env) WaitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CountVisits returns the number of rows in the visits table.
func (e *Env) CountVisits() int {
	e.t.Helper()
	var n int
	if err := e.Pool.QueryRow(context.Background(), "SELECT count(*) FROM visits").Scan(&n); err != nil {
		e.t.Fatalf("count visits: %v", err)
	}
	return n
}

// WaitVisits waits until the visits table has exactly n rows.
func (e *Env) WaitVisits(n int, timeout time.Duration) {
	e.t.Helper()
	e.WaitFor(fmt.Sprintf("the database has %d visits", n), timeout, func() bool {
		return e.CountVisits() >= n
	})
	if got := e.CountVisits(); got != n {
		e.t.Fatalf("visits table has %d rows, want %d", got, n)
	}
}

// Login returns a bearer token for a fixture user.
func (e *Env) Login(username string) string {
	e.t.Helper()
	resp := e.Do(http.MethodPost, "/api/v1/login", "", map[string]string{"username": username, "password": Password})
	if resp.Status != http.StatusOK {
		e.t.Fatalf("login %s: status %d: %s", username, resp.Status, resp.Body)
	}
	var body struct{ Token string }
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		e.t.Fatalf("decode login response: %v", err)
	}
	return body.Token
}

// Response is an HTTP response read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a JSON request to the gateway. body may be a []byte sent as is.
func (e *Env) Do(method, path, token string, body any) Response {
	e.t.Helper()
	resp, err := Send(e.URL, method, path, token, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// Send is Do without a test, for use from goroutines.
func Send(baseURL, method, path, token string, body any) (Response, error) {
	var reader io.Reader
	if body != nil {
		data, ok := body.([]byte)
		if !ok {
			data, _ = json.Marshal(body)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, baseURL+path, reader)
	if err != nil {
		return Response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, err
}

// testLogger writes warnings and errors to stderr; VISITRELAY_TEST_LOG=debug
// shows everything.
func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("VISITRELAY_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
