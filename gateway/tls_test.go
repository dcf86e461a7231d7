package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/visitrelay/visitrelay/internal/testpki"
)

// acmeName is the DNS name the ACME tests ask Pebble for. The tests' own
// DNS server resolves every name to 127.0.0.1.
const acmeName = "gateway.visitrelay.test"

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startTLSGateway starts a gateway with only its own side (no site) and
// the given TLS settings, on 127.0.0.1:httpsPort.
func startTLSGateway(t *testing.T, tlsCfg TLSConfig, httpsPort int, renewal *renewalTiming) *Gateway {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:" + strconv.Itoa(httpsPort)
	cfg.StateDir = t.TempDir()
	cfg.NATS.LeafListen = "127.0.0.1:0"
	cfg.Archive.Enabled = false
	cfg.TLS = tlsCfg
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g := New(cfg, logger)
	g.renewal = renewal
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("stop gateway: %v", err)
		}
	})
	return g
}

// servedCertificate returns the leaf certificate that addr serves for
// serverName, verified against roots.
func servedCertificate(addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: serverName, RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// getHealthz sends GET /healthz over HTTPS to addr as serverName.
func getHealthz(t *testing.T, addr, serverName string, roots *x509.CertPool) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: serverName, RootCAs: roots},
	}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over https: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz over https: status %d, want 200", resp.StatusCode)
	}
}

// checkRedirect checks that plain HTTP on httpAddr redirects to HTTPS on
// httpsPort with the same path.
func checkRedirect(t *testing.T, httpAddr string, httpsPort int) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Get("http://" + httpAddr + "/api/v1/lookups?x=1")
	if err != nil {
		t.Fatalf("GET over plain http: %v", err)
	}
	resp.Body.Close()
	want := fmt.Sprintf("https://127.0.0.1:%d/api/v1/lookups?x=1", httpsPort)
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain http: status %d location %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

func TestTLSSelfSignedKeepsCertificate(t *testing.T) {
	httpsPort, httpPort := freePort(t), freePort(t)
	tlsCfg := defaultTLSConfig()
	tlsCfg.Mode = TLSSelfSigned
	tlsCfg.HTTPListen = "127.0.0.1:" + strconv.Itoa(httpPort)
	g := startTLSGateway(t, tlsCfg, httpsPort, nil)

	certPEM, err := os.ReadFile(filepath.Join(g.cfg.StateDir, "tls", "self-signed.crt"))
	if err != nil {
		t.Fatalf("read self-signed certificate: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(certPEM) {
		t.Fatal("self-signed certificate is not PEM")
	}
	getHealthz(t, g.HTTPAddr(), "127.0.0.1", roots)
	checkRedirect(t, tlsCfg.HTTPListen, httpsPort)
	if !strings.HasPrefix(g.URL(), "https://") {
		t.Errorf("URL %q, want https", g.URL())
	}

	// A restart serves the same certificate, so a pinned copy stays valid.
	block, _ := pem.Decode(certPEM)
	first := sha256.Sum256(block.Bytes)
	again, err := newTLSService(tlsCfg, g.cfg.StateDir, g.cfg.Listen, g.logger, nil)
	if err != nil {
		t.Fatalf("load self-signed certificate again: %v", err)
	}
	if second := sha256.Sum256(again.config.Certificates[0].Certificate[0]); second != first {
		t.Error("self-signed certificate changed on reload")
	}
}

func TestTLSFilesServesCertificate(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	httpsPort := freePort(t)
	tlsCfg := defaultTLSConfig()
	tlsCfg.Mode = TLSFiles
	tlsCfg.CertFile, tlsCfg.KeyFile = pki.CertFile, pki.KeyFile
	tlsCfg.HTTPListen = ""
	g := startTLSGateway(t, tlsCfg, httpsPort, nil)

	getHealthz(t, g.HTTPAddr(), "127.0.0.1", pki.Roots)
	if _, err := servedCertificate(g.HTTPAddr(), "127.0.0.1", x509.NewCertPool()); err == nil {
		t.Error("a client without the CA accepted the certificate")
	}
}

func TestTLSConfigProblems(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"unknown mode", func(c *Config) { c.TLS.Mode = "on" }, "tls.mode: on: must be one of off, acme, files, self-signed"},
		{"acme without names", func(c *Config) { c.TLS.Mode = TLSACME }, "tls.names: []: must list"},
		{"files without files", func(c *Config) { c.TLS.Mode = TLSFiles }, "tls.certFile"},
		{"bad proxy", func(c *Config) { c.TLS.TrustedProxies = []string{"proxy.example.com"} }, "tls.trustedProxies: proxy.example.com"},
		{"leaf TLS from http without tls", func(c *Config) { c.NATS.LeafTLS.Mode = LeafTLSHTTP }, "nats.leafTLS.mode: http: needs tls.mode"},
		{"site without credentials", func(c *Config) { c.NATS.Sites = []SiteConfig{{Domain: "onprem"}} }, "nats.sites[0]: onprem: must set nkey or passwordHash"},
		{"site with bad nkey", func(c *Config) { c.NATS.Sites = []SiteConfig{{Domain: "onprem", Nkey: "SUAB"}} }, "nats.sites[0].nkey: SUAB: must be a public user nkey"},
		{"password site without TLS", func(c *Config) {
			c.NATS.Sites = []SiteConfig{{Domain: "onprem", PasswordHash: "$2a$10$abcdefghijklmnopqrstuv"}}
		}, "needs nats.leafTLS.mode http or files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want a problem containing %q", err, tt.want)
			}
		})
	}
}

// startDNS resolves every A query to 127.0.0.1, over UDP and TCP on one
// port, so that Pebble's validation of acmeName reaches the gateway on
// loopback. Pebble's resolver queries over TCP.
func startDNS(t *testing.T) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for dns over tcp: %v", err)
	}
	conn, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatalf("listen for dns over udp: %v", err)
	}
	for _, server := range []*dns.Server{{Listener: ln, Handler: handler}, {PacketConn: conn, Handler: handler}} {
		go func() { _ = server.ActivateAndServe() }()
		t.Cleanup(func() { _ = server.Shutdown() })
	}
	return ln.Addr().String()
}

// pebble is a running Pebble ACME test server.
type pebble struct {
	directory string         // ACME directory URL
	caFile    string         // CA of Pebble's own HTTPS listener
	roots     *x509.CertPool // Pebble's issuing root, read from its management API
}

// startPebble builds and starts Pebble on loopback. Certificates it issues
// are valid for validity; challenges are checked on httpPort (HTTP-01) and
// tlsPort (TLS-ALPN-01) of 127.0.0.1.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) pebble {
	t.Helper()
	dir := t.TempDir()
	binary := filepath.Join(dir, "pebble")
	build := exec.Command("go", "build", "-o", binary, "github.com/letsencrypt/pebble/v2/cmd/pebble")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pebble (a go tool of this module): %v\n%s", err, out)
	}

	pki := testpki.New(t, dir)
	listen, management := freePort(t), freePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           "127.0.0.1:" + strconv.Itoa(listen),
		"managementListenAddress": "127.0.0.1:" + strconv.Itoa(management),
		"certificate":             pki.CertFile,
		"privateKey":              pki.KeyFile,
		"httpPort":                httpPort,
		"tlsPort":                 tlsPort,
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":            "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "short-lived, so that the test sees a renewal", "validityPeriod": int(validity.Seconds()),
		}},
	}}
	cfgFile := filepath.Join(dir, "pebble.json")
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(binary, "-config", cfgFile, "-dnsserver", startDNS(t))
	// No random validation delays and no injected bad nonces: the test
	// checks the gateway, not certmagic's retries.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	logFile, err := os.Create(filepath.Join(dir, "pebble.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			t.Logf("pebble log:\n%s", out)
		}
	})

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Roots}}}
	var rootPEM []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", management))
		if err == nil {
			rootPEM, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble management API not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root is not PEM: %s", rootPEM)
	}
	return pebble{
		directory: fmt.Sprintf("https://127.0.0.1:%d/dir", listen),
		caFile:    pki.CAFile,
		roots:     roots,
	}
}

func TestTLSACMEObtainsAndRenews(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs Pebble; skipped with -short")
	}
	tests := []struct {
		name     string
		redirect bool // open the HTTP listener, which enables HTTP-01
		httpOnly bool // turn off TLS-ALPN-01
	}{
		{name: "http-01 only", redirect: true, httpOnly: true},
		{name: "tls-alpn-01 only", redirect: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			httpsPort, httpPort := freePort(t), freePort(t)
			ca := startPebble(t, httpPort, httpsPort, 40*time.Second)

			tlsCfg := defaultTLSConfig()
			tlsCfg.Mode = TLSACME
			tlsCfg.Names = []string{acmeName}
			tlsCfg.ACMEDirectory = ca.directory
			tlsCfg.ACMERootFile = ca.caFile
			tlsCfg.HTTPListen = ""
			if tt.redirect {
				tlsCfg.HTTPListen = "127.0.0.1:" + strconv.Itoa(httpPort)
			}
			// Renew with half the lifetime left, checked every second.
			g := startTLSGateway(t, tlsCfg, httpsPort, &renewalTiming{checkInterval: time.Second, windowRatio: 0.5, httpChallengeOnly: tt.httpOnly})

			first := waitCertificate(t, g.HTTPAddr(), ca.roots, nil, 60*time.Second)
			if first.Subject.CommonName != acmeName && (len(first.DNSNames) == 0 || first.DNSNames[0] != acmeName) {
				t.Errorf("certificate names %v, want %s", first.DNSNames, acmeName)
			}
			getHealthzFrom(t, g.HTTPAddr(), ca.roots)
			if tt.redirect {
				checkRedirect(t, tlsCfg.HTTPListen, httpsPort)
			}

			renewed := waitCertificate(t, g.HTTPAddr(), ca.roots, first, 60*time.Second)
			if !renewed.NotAfter.After(first.NotAfter) {
				t.Errorf("renewed certificate expires %s, not after the first's %s", renewed.NotAfter, first.NotAfter)
			}
			if _, err := os.Stat(filepath.Join(g.cfg.StateDir, "certmagic")); err != nil {
				t.Errorf("certificate storage under the state directory: %v", err)
			}
		})
	}
}

// waitCertificate waits until the gateway serves a certificate for
// acmeName that roots trust and that differs from previous.
func waitCertificate(t *testing.T, addr string, roots *x509.CertPool, previous *x509.Certificate, timeout time.Duration) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		cert, err := servedCertificate(addr, acmeName, roots)
		if err == nil && (previous == nil || cert.SerialNumber.Cmp(previous.SerialNumber) != 0) {
			return cert
		}
		lastErr = err
		time.Sleep(500 * time.Millisecond)
	}
	what := "a certificate"
	if previous != nil {
		what = "a renewed certificate"
	}
	t.Fatalf("no %s served after %s; last error: %v", what, timeout, lastErr)
	return nil
}

func getHealthzFrom(t *testing.T, addr string, roots *x509.CertPool) {
	t.Helper()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: acmeName, RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	resp, err := client.Get("https://" + acmeName + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz as %s: %v", acmeName, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz as %s: status %d, want 200", acmeName, resp.StatusCode)
	}
}
