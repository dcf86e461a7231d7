package gateway

import (
	"net"
	"os"
	"strings"

	"github.com/visitrelay/visitrelay/internal/config"
)

// TLS modes of the gateway's HTTP listener.
const (
	TLSOff        = "off"
	TLSACME       = "acme"
	TLSFiles      = "files"
	TLSSelfSigned = "self-signed"
)

// TLSConfig sets up HTTPS for the API and the page. Every field is
// documented in configs/gateway.yaml.
type TLSConfig struct {
	// Mode is off (plain HTTP, behind a TLS-terminating proxy), acme
	// (certificates from an ACME CA such as Let's Encrypt), files (an
	// admin-provided certificate and key) or self-signed (lab use; the
	// certificate's SHA-256 fingerprint is logged). Default off.
	Mode string `yaml:"mode"`
	// Names are the DNS names the certificate covers. Required in acme
	// mode; in self-signed mode the default is localhost, 127.0.0.1 and
	// the machine's host name.
	Names []string `yaml:"names"`
	// Email is the ACME account's contact address, for expiry notices.
	// Optional.
	Email string `yaml:"email"`
	// ACMEDirectory is the ACME CA's directory URL. Default Let's Encrypt
	// production.
	ACMEDirectory string `yaml:"acmeDirectory"`
	// ACMERootFile is a PEM file of CA certificates that the ACME
	// directory's own HTTPS certificate chains to, for a private ACME CA.
	// Default empty: the system's roots.
	ACMERootFile string `yaml:"acmeRootFile"`
	// HTTPListen is a plain HTTP listener (HOST:PORT) that serves ACME
	// HTTP-01 challenges and redirects everything else to HTTPS. Used in
	// the acme, files and self-signed modes; empty opens none, which
	// leaves acme mode with the TLS-ALPN-01 challenge only. Default :80.
	HTTPListen string `yaml:"httpListen"`
	// CertFile and KeyFile are PEM files, read in files mode. A renewed
	// pair is picked up without a restart.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// TrustedProxies are the addresses or CIDR ranges of proxies whose
	// ProxyHeader and X-Forwarded-Proto the gateway believes, in off mode.
	// Default empty: forwarded headers are ignored.
	TrustedProxies []string `yaml:"trustedProxies"`
	// ProxyHeader carries the client's address when the request comes
	// from a trusted proxy. Default X-Forwarded-For.
	ProxyHeader string `yaml:"proxyHeader"`
}

// defaultTLSConfig returns the TLS defaults, part of DefaultConfig.
func defaultTLSConfig() TLSConfig {
	return TLSConfig{
		Mode:          TLSOff,
		ACMEDirectory: "https://acme-v02.api.letsencrypt.org/directory",
		HTTPListen:    ":80",
		ProxyHeader:   "X-Forwarded-For",
	}
}

// validate adds the TLS section's problems to p.
func (t TLSConfig) validate(p *config.Problems) {
	switch t.Mode {
	case TLSOff, TLSSelfSigned:
	case TLSACME:
		if len(t.Names) == 0 {
			p.Add("tls.names", "[]", "must list the gateway's DNS names in acme mode, such as visits.example.com")
		}
		if !strings.HasPrefix(t.ACMEDirectory, "https://") {
			p.Add("tls.acmeDirectory", t.ACMEDirectory, "must be an https:// ACME directory URL")
		}
		checkReadable(p, "tls.acmeRootFile", t.ACMERootFile, false)
	case TLSFiles:
		checkReadable(p, "tls.certFile", t.CertFile, true)
		checkReadable(p, "tls.keyFile", t.KeyFile, true)
	default:
		p.Add("tls.mode", t.Mode, "must be one of off, acme, files, self-signed")
	}
	if t.Mode != TLSOff && t.HTTPListen != "" {
		checkAddress(p, "tls.httpListen", t.HTTPListen)
	}
	for _, name := range t.Names {
		if name == "" || strings.ContainsAny(name, " /:") && net.ParseIP(name) == nil {
			p.Add("tls.names", name, "must be a DNS name or an IP address")
		}
	}
	for _, proxy := range t.TrustedProxies {
		if net.ParseIP(proxy) == nil {
			if _, _, err := net.ParseCIDR(proxy); err != nil {
				p.Add("tls.trustedProxies", proxy, "must be an IP address or a CIDR range such as 10.0.0.0/8")
			}
		}
	}
	if len(t.TrustedProxies) > 0 && t.ProxyHeader == "" {
		p.Add("tls.proxyHeader", `""`, "must name a header such as X-Forwarded-For when tls.trustedProxies is set")
	}
}

// checkReadable reports a file that is missing or unreadable. An empty
// path is a problem only when required.
func checkReadable(p *config.Problems, key, path string, required bool) {
	if path == "" {
		if required {
			p.Add(key, `""`, "must name a PEM file")
		}
		return
	}
	f, err := os.Open(path)
	if err != nil {
		p.Add(key, path, "must be a readable file: "+err.Error())
		return
	}
	f.Close()
}
