package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/visitrelay/visitrelay/appliance"
	"github.com/visitrelay/visitrelay/gateway"
	"github.com/visitrelay/visitrelay/internal/natsembed"
	"github.com/visitrelay/visitrelay/internal/relaytest"
	"github.com/visitrelay/visitrelay/internal/testpki"
)

// sitePassword is the password of the password-site variant.
const sitePassword = "leaf password for tests"

// newSiteKey writes a new nkey user seed into dir and returns the seed
// file and the public key.
func newSiteKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatalf("create nkey: %v", err)
	}
	seed, _ := kp.Seed()
	public, _ := kp.PublicKey()
	path := filepath.Join(dir, name+".nk")
	if err := os.WriteFile(path, seed, 0o600); err != nil {
		t.Fatalf("write seed: %v", err)
	}
	return path, public
}

// secureLink restarts both sides with TLS on the leafnode link and the
// site's credentials: an nkey seed, or a password when seedFile is empty.
func secureLink(t *testing.T, e *relaytest.Env, pki testpki.PKI, seedFile, public string) {
	t.Helper()
	secureLinkOver(t, e, pki, seedFile, public, false)
}

// secureLinkOver is secureLink, over websocket (wss) when websocket is set.
func secureLinkOver(t *testing.T, e *relaytest.Env, pki testpki.PKI, seedFile, public string, websocket bool) {
	t.Helper()
	e.StopAppliance()
	e.StopGateway()

	gc := e.GatewayConfig()
	gc.NATS.LeafTLS = gateway.LeafTLSConfig{Mode: gateway.LeafTLSFiles, CertFile: pki.CertFile, KeyFile: pki.KeyFile}
	site := gateway.SiteConfig{Domain: e.ApplianceConfig().NATS.Domain, Nkey: public}
	ac := e.ApplianceConfig()
	ac.NATS.LeafCAFile = pki.CAFile
	ac.NATS.LeafSeedFile = seedFile
	if seedFile == "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(sitePassword), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("hash password: %v", err)
		}
		site = gateway.SiteConfig{Domain: ac.NATS.Domain, PasswordHash: string(hash)}
		passwordFile := filepath.Join(t.TempDir(), "leaf.password")
		if err := os.WriteFile(passwordFile, []byte(sitePassword+"\n"), 0o600); err != nil {
			t.Fatalf("write password file: %v", err)
		}
		ac.NATS.LeafPasswordFile = passwordFile
	}
	gc.NATS.Sites = []gateway.SiteConfig{site}
	websocketPort := 0
	if websocket {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		websocketPort = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		gc.NATS.LeafWebsocketListen = "127.0.0.1:" + strconv.Itoa(websocketPort)
	}
	if err := gc.Validate(); err != nil {
		t.Fatalf("gateway config: %v", err)
	}
	e.StartGateway()

	ac.NATS.GatewayURLs = []string{"tls://127.0.0.1:" + strconv.Itoa(e.Gateway.LeafPort())}
	if websocket {
		ac.NATS.GatewayURLs = []string{"wss://127.0.0.1:" + strconv.Itoa(websocketPort)}
	}
	if err := ac.Validate(); err != nil {
		t.Fatalf("appliance config: %v", err)
	}
	e.StartAppliance()
	e.WaitFor("the secured leafnode link is up", 30*time.Second, e.Appliance.LeafConnected)
}

func TestLeafLinkSecuredDeliversVisits(t *testing.T) {
	for _, credential := range []string{"nkey", "password", "nkey over wss"} {
		t.Run(credential, func(t *testing.T) {
			e := relaytest.Start(t)
			dir := t.TempDir()
			pki := testpki.New(t, dir)
			seedFile, public := "", ""
			if credential != "password" {
				seedFile, public = newSiteKey(t, dir, "site")
			}
			secureLinkOver(t, e, pki, seedFile, public, credential == "nkey over wss")

			token := e.Login("anna.berger")
			var ids []string
			for i := range 5 {
				id := uuid.NewString()
				ids = append(ids, id)
				resp := e.Do(http.MethodPost, "/api/v1/visits", token, map[string]any{
					"visitId": id, "clientId": "101", "userId": "23", "proposedDevices": []int{1, 2},
					"soldDevices": []int{1}, "dateTime": time.Now().Add(-time.Duration(i) * time.Minute).Format(time.RFC3339),
				})
				if resp.Status != http.StatusCreated {
					t.Fatalf("post visit %d: status %d: %s", i, resp.Status, resp.Body)
				}
			}
			e.WaitVisits(len(ids), 60*time.Second)

			// Receipts flow back over the same link, so the gateway lists
			// each visit as stored.
			e.WaitFor("the gateway lists every visit as stored", 60*time.Second, func() bool {
				resp := e.Do(http.MethodGet, "/api/v1/visits", token, nil)
				return resp.Status == http.StatusOK && countStored(resp.Body) == len(ids)
			})

			// The site's permissions still let the appliance read the
			// cloud's side of a visit for its trace.
			code, body := opsGet(t, applianceURL(e, "/trace.json?visit="+ids[0]), "")
			var tr appliance.Trace
			if code != http.StatusOK || json.Unmarshal(body, &tr) != nil {
				t.Fatalf("/trace.json: status %d: %s", code, body)
			}
			for _, step := range tr.Steps {
				if (step.Name == "accepted" || step.Name == "receipt") && step.State != appliance.StepDone {
					t.Errorf("trace step %s is %q over the secured link, want %q: %s", step.Name, step.State, appliance.StepDone, step.Detail)
				}
			}
		})
	}
}

// countStored counts the visits that a GET /api/v1/visits response lists
// as stored.
func countStored(body []byte) int {
	n := 0
	for i := 0; i+len(`"stored"`) <= len(body); i++ {
		if string(body[i:i+len(`"stored"`)]) == `"stored"` {
			n++
		}
	}
	return n
}

// probeLeaf starts a bare leaf server that dials the gateway with the given
// link settings and reports whether its link came up within wait.
func probeLeaf(t *testing.T, gatewayURL *url.URL, link natsembed.LinkOptions, wait time.Duration) bool {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{
		Name:        "probe",
		Domain:      "probe",
		StoreDir:    t.TempDir(),
		LeafRemotes: []*url.URL{gatewayURL},
		Link:        link,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start probe leaf: %v", err)
	}
	defer ns.Shutdown(context.Background())
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if ns.LeafConnected() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func TestLeafLinkRejectsBadCredentials(t *testing.T) {
	e := relaytest.Start(t)
	dir := t.TempDir()
	pki := testpki.New(t, dir)
	seedFile, public := newSiteKey(t, dir, "site")
	secureLink(t, e, pki, seedFile, public)

	seed, err := os.ReadFile(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPublic := newSiteKey(t, dir, "other")
	otherSeed, err := os.ReadFile(filepath.Join(dir, "other.nk"))
	if err != nil {
		t.Fatal(err)
	}
	otherPKI := testpki.New(t, t.TempDir())
	trusted := &tls.Config{RootCAs: pki.Roots}
	untrusted := &tls.Config{RootCAs: otherPKI.Roots}
	port := strconv.Itoa(e.Gateway.LeafPort())
	tlsURL := &url.URL{Scheme: "tls", Host: "127.0.0.1:" + port}
	plainURL := &url.URL{Scheme: "nats-leaf", Host: "127.0.0.1:" + port}
	passwordURL := &url.URL{Scheme: "tls", Host: "127.0.0.1:" + port, User: url.UserPassword("onprem", "guess")}
	if otherPublic == public {
		t.Fatal("two generated nkeys are equal")
	}

	tests := []struct {
		name    string
		url     *url.URL
		link    natsembed.LinkOptions
		connect bool
	}{
		{"right seed and CA", tlsURL, natsembed.LinkOptions{RemoteTLS: trusted, RemoteSeed: string(seed)}, true},
		{"missing credentials", tlsURL, natsembed.LinkOptions{RemoteTLS: trusted}, false},
		{"unknown seed", tlsURL, natsembed.LinkOptions{RemoteTLS: trusted, RemoteSeed: string(otherSeed)}, false},
		{"wrong password", passwordURL, natsembed.LinkOptions{RemoteTLS: trusted}, false},
		{"gateway certificate not trusted", tlsURL, natsembed.LinkOptions{RemoteTLS: untrusted, RemoteSeed: string(seed)}, false},
		{"no TLS", plainURL, natsembed.LinkOptions{RemoteSeed: string(seed)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait := 4 * time.Second
			if tt.connect {
				wait = 20 * time.Second
			}
			if got := probeLeaf(t, tt.url, tt.link, wait); got != tt.connect {
				t.Errorf("leaf connected = %v, want %v", got, tt.connect)
			}
		})
	}
}

func TestLeafLinkSiteBoundToOwnSubjects(t *testing.T) {
	e := relaytest.Start(t)
	dir := t.TempDir()
	pki := testpki.New(t, dir)
	seedFile, public := newSiteKey(t, dir, "site")
	secureLink(t, e, pki, seedFile, public)

	token := e.Login("anna.berger")
	resp := e.Do(http.MethodPost, "/api/v1/visits", token, map[string]any{
		"visitId": uuid.NewString(), "clientId": "101", "userId": "23", "proposedDevices": []int{1},
		"soldDevices": []int{}, "dateTime": time.Now().Format(time.RFC3339),
	})
	if resp.Status != http.StatusCreated {
		t.Fatalf("post visit: status %d: %s", resp.Status, resp.Body)
	}
	e.WaitVisits(1, 60*time.Second)
	cloudBefore := e.CloudStreamMessages()

	nc, err := appliance.ConnectRunning(e.ApplianceConfig().StateDir)
	if err != nil {
		t.Fatalf("connect to the appliance's NATS server: %v", err)
	}
	defer nc.Close()

	// The site may read its own source's stream info, so the link itself works.
	if _, err := nc.Request("$JS.cloud.API.STREAM.INFO.VISITS", nil, 5*time.Second); err != nil {
		t.Errorf("stream info of the cloud's VISITS from the site: %v, want an answer", err)
	}
	denied := []string{
		"$JS.cloud.API.STREAM.DELETE.VISITS",
		"$JS.cloud.API.STREAM.PURGE.VISITS",
		"$JS.cloud.API.STREAM.INFO.KV_directory",
		"$JS.cloud.API.STREAM.LIST",
		"$JS.cloud.API.CONSUMER.CREATE.RECEIPTS",
	}
	for _, subject := range denied {
		_, err := nc.Request(subject, []byte("{}"), 2*time.Second)
		if err == nil {
			t.Errorf("request %s from the site got an answer, want it blocked", subject)
			continue
		}
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
			t.Errorf("request %s from the site: %v, want no responders or a timeout", subject, err)
		}
	}

	// A visit published on the site's side never reaches the cloud stream:
	// the site cannot bypass the gateway's validation.
	if err := nc.Publish("visits.23."+uuid.NewString(), []byte(`{}`)); err != nil {
		t.Fatalf("publish from the site: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	time.Sleep(time.Second)
	if got := e.CloudStreamMessages(); got != cloudBefore {
		t.Errorf("cloud VISITS has %d messages after a publish from the site, want %d", got, cloudBefore)
	}
}

func TestCheckConfigTestsDatabaseAndLink(t *testing.T) {
	e := relaytest.Start(t)
	dir := t.TempDir()
	pki := testpki.New(t, dir)
	seedFile, public := newSiteKey(t, dir, "site")
	secureLink(t, e, pki, seedFile, public)
	otherSeed, _ := newSiteKey(t, dir, "other")

	tests := []struct {
		name     string
		seedFile string
		wantOK   bool
		want     string
	}{
		{"right seed", seedFile, true, "ok   leafnode link to tls://127.0.0.1:"},
		{"unknown seed", otherSeed, false, "FAIL leafnode link to tls://127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			configFile := filepath.Join(t.TempDir(), "appliance.yaml")
			config := "version: 1\n" +
				"stateDir: " + t.TempDir() + "\n" +
				"database:\n  url: \"" + e.DSN + "\"\n" +
				"nats:\n  gatewayURLs: [\"" + e.ApplianceConfig().NATS.GatewayURLs[0] + "\"]\n" +
				"  leafCAFile: " + pki.CAFile + "\n" +
				"  leafSeedFile: " + tt.seedFile + "\n"
			if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			err := appliance.Run(context.Background(), []string{"check-config", "-config", configFile},
				appliance.IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
			if tt.wantOK && err != nil {
				t.Errorf("check-config: %v\n%s", err, stdout.String())
			}
			if !tt.wantOK && err == nil {
				t.Errorf("check-config passed with an unknown seed\n%s", stdout.String())
			}
			if !strings.Contains(stdout.String(), "ok   database") {
				t.Errorf("check-config did not report the database as ok:\n%s", stdout.String())
			}
			if !strings.Contains(stdout.String(), tt.want) {
				t.Errorf("check-config output lacks %q:\n%s", tt.want, stdout.String())
			}
		})
	}
}
