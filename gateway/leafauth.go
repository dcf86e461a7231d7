package gateway

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/visitrelay/visitrelay/internal/config"
	"github.com/visitrelay/visitrelay/internal/heartbeat"
	"github.com/visitrelay/visitrelay/internal/natsembed"
	"github.com/visitrelay/visitrelay/internal/streams"
	"github.com/visitrelay/visitrelay/internal/visit"
)

// Leafnode TLS modes.
const (
	LeafTLSOff   = "off"
	LeafTLSHTTP  = "http"
	LeafTLSFiles = "files"
)

// LeafTLSConfig sets up TLS on the leafnode listeners.
type LeafTLSConfig struct {
	// Mode is off, http (the certificate of the HTTPS listener, so
	// tls.mode must not be off) or files. Default off.
	Mode string `yaml:"mode"`
	// CertFile and KeyFile are PEM files, read in files mode.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// SiteConfig is one site that may open a leafnode link.
type SiteConfig struct {
	// Domain is the site's JetStream domain: nats.domain in its
	// appliance's config. It is also the user name of a password site.
	Domain string `yaml:"domain"`
	// Nkey is the site's public user nkey (starting with U), printed by
	// visitrelay-appliance leaf-keygen. Either nkey or passwordHash.
	Nkey string `yaml:"nkey"`
	// PasswordHash is the bcrypt hash of the site's password, printed by
	// visitrelay-gateway hash-password. Needs nats.leafTLS, because the
	// password crosses the link.
	PasswordHash string `yaml:"passwordHash"`
}

// validateLeaf adds the problems of the leafnode link settings to p.
func (c Config) validateLeaf(p *config.Problems) {
	switch c.NATS.LeafTLS.Mode {
	case LeafTLSOff:
	case LeafTLSHTTP:
		if c.TLS.Mode == TLSOff {
			p.Add("nats.leafTLS.mode", LeafTLSHTTP, "needs tls.mode acme, files or self-signed; or use files with nats.leafTLS.certFile and keyFile")
		}
	case LeafTLSFiles:
		checkReadable(p, "nats.leafTLS.certFile", c.NATS.LeafTLS.CertFile, true)
		checkReadable(p, "nats.leafTLS.keyFile", c.NATS.LeafTLS.KeyFile, true)
	default:
		p.Add("nats.leafTLS.mode", c.NATS.LeafTLS.Mode, "must be one of off, http, files")
	}
	if c.NATS.LeafWebsocketListen != "" {
		checkAddress(p, "nats.leafWebsocketListen", c.NATS.LeafWebsocketListen)
	}

	seen := map[string]bool{}
	for i, site := range c.NATS.Sites {
		key := fmt.Sprintf("nats.sites[%d]", i)
		if !visit.IsToken(site.Domain) || site.Domain == streams.CloudDomain {
			p.Add(key+".domain", site.Domain, "must be the site's nats.domain: letters, digits, '-' and '_', other than cloud")
		}
		if seen[site.Domain] {
			p.Add(key+".domain", site.Domain, "must be listed once")
		}
		seen[site.Domain] = true
		switch {
		case site.Nkey != "" && site.PasswordHash != "":
			p.Add(key, site.Domain, "must set nkey or passwordHash, not both")
		case site.Nkey != "":
			if !nkeys.IsValidPublicUserKey(site.Nkey) {
				p.Add(key+".nkey", site.Nkey, "must be a public user nkey starting with U, as printed by visitrelay-appliance leaf-keygen")
			}
		case site.PasswordHash != "":
			if !strings.HasPrefix(site.PasswordHash, "$2") {
				p.Add(key+".passwordHash", "(hidden)", "must be a bcrypt hash, as printed by visitrelay-gateway hash-password")
			}
			if c.NATS.LeafTLS.Mode == LeafTLSOff {
				p.Add(key+".passwordHash", "(hidden)", "needs nats.leafTLS.mode http or files, so that the password does not cross the link in clear text")
			}
		default:
			p.Add(key, site.Domain, "must set nkey or passwordHash")
		}
	}
	if len(c.NATS.Sites) > 0 && !seen[c.NATS.SiteDomain] {
		p.Add("nats.sites", c.NATS.SiteDomain, "must list the site of nats.siteDomain")
	}
}

// linkOptions builds the hub side of the leafnode link. httpsTLS is the
// HTTPS listener's certificate source, or nil in tls.mode off.
func (c Config) linkOptions(httpsTLS *tls.Config) (natsembed.LinkOptions, error) {
	var link natsembed.LinkOptions
	switch c.NATS.LeafTLS.Mode {
	case LeafTLSHTTP:
		if httpsTLS == nil {
			return link, fmt.Errorf("nats.leafTLS.mode http needs tls.mode acme, files or self-signed")
		}
		leafTLS := httpsTLS.Clone()
		leafTLS.NextProtos = nil
		link.ListenTLS = leafTLS
	case LeafTLSFiles:
		source := &fileCertificate{certFile: c.NATS.LeafTLS.CertFile, keyFile: c.NATS.LeafTLS.KeyFile}
		if _, err := source.load(); err != nil {
			return link, fmt.Errorf("load nats.leafTLS: %w", err)
		}
		link.ListenTLS = &tls.Config{GetCertificate: source.getCertificate, MinVersion: tls.VersionTLS12}
	}
	if c.NATS.LeafWebsocketListen != "" {
		host, port, err := splitHostPort(c.NATS.LeafWebsocketListen)
		if err != nil {
			return link, fmt.Errorf("parse nats.leafWebsocketListen: %w", err)
		}
		link.WebsocketHost, link.WebsocketPort = host, port
	}
	for _, site := range c.NATS.Sites {
		link.Sites = append(link.Sites, natsembed.Site{
			Nkey:         site.Nkey,
			Username:     site.Domain,
			PasswordHash: site.PasswordHash,
			Permissions:  sitePermissions(site.Domain),
		})
	}
	return link, nil
}

// sitePermissions binds a site to its own subjects. Seen from the site, it
// may publish only what sourcing the cloud's VISITS stream needs (consumer
// requests on that stream and flow-control replies), replies to JetStream
// API requests for its own domain, deliveries of the cloud's sources of its
// streams, and its own heartbeat. It receives only JetStream API requests
// for its own domain, replies about VISITS, deliveries and flow control of
// its own streams, and inbox replies. So it cannot publish visits, delete
// or change cloud streams, read other cloud streams, or serve another
// site's domain. Scoped answer subjects ($JSC.R.<domain>...) need the
// js_api_reply_v2 server flag, which natsembed turns on.
//
// NOTE: delivery subjects ($JS.S, $JS.M) and _INBOX replies are random, not
// tied to a site: with several sites on one hub, a site that learned
// another's delivery subject could publish into it.
func sitePermissions(domain string) *server.Permissions {
	cloudAPI := "$JS." + streams.CloudDomain + ".API."
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			cloudAPI + "CONSUMER.CREATE." + streams.Visits,
			cloudAPI + "CONSUMER.CREATE." + streams.Visits + ".>",
			cloudAPI + "CONSUMER.DELETE." + streams.Visits + ".>",
			cloudAPI + "CONSUMER.INFO." + streams.Visits + ".>",
			cloudAPI + "STREAM.INFO." + streams.Visits,
			// Read-only lookups for the appliance's status page and trace:
			// the oldest visit not yet sourced, and a visit's cloud receipt.
			cloudAPI + "STREAM.MSG.GET." + streams.Visits,
			// VISITS allows direct gets, which clients prefer for the same lookups.
			cloudAPI + "DIRECT.GET." + streams.Visits,
			cloudAPI + "DIRECT.GET." + streams.Visits + ".>",
			cloudAPI + "STREAM.INFO." + streams.Receipts,
			cloudAPI + "STREAM.MSG.GET." + streams.Receipts,
			"$JS.FC." + streams.Visits + ".>",
			"$JSC.R." + domain + ".>",
			"$JS.S.>",
			"$JS.M.>",
			"_INBOX.>",
			heartbeat.Subject(domain),
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			"$JS." + domain + ".API.>",
			"$JSC.R." + streams.CloudDomain + ".*." + streams.Visits + ".>",
			"$JS.FC." + streams.Receipts + ".>",
			"$JS.FC.KV_" + streams.Directory + ".>",
			"$JS.S.>",
			"$JS.M.>",
			"_INBOX.>",
		}},
	}
}
