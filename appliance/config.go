package appliance

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/visitrelay/visitrelay/internal/config"
	"github.com/visitrelay/visitrelay/internal/visit"
)

// Config is the appliance's config file. Every field is documented in
// configs/appliance.yaml.
type Config struct {
	// Version of the config file format. Must be 1.
	Version int `yaml:"version"`
	// StateDir holds the JetStream store. Default /var/lib/visitrelay-appliance.
	StateDir  string          `yaml:"stateDir"`
	Database  DatabaseConfig  `yaml:"database"`
	NATS      NATSConfig      `yaml:"nats"`
	Committer CommitterConfig `yaml:"committer"`
	Status    StatusConfig    `yaml:"status"`
	Log       config.Log      `yaml:"log"`
	// Cluster joins appliance nodes into one NATS cluster for on-prem high
	// availability; see configs/appliance.yaml.
	Cluster config.Cluster `yaml:"cluster"`
}

// StatusConfig sets up the HTTP listener of the status page, /status.json,
// /metrics, /healthz and /readyz.
type StatusConfig struct {
	// Listen is the listener's HOST:PORT. Default 127.0.0.1:8090, which
	// only this machine reaches. Set a LAN address here, such as
	// 192.168.1.20:8090 or 0.0.0.0:8090, to open the page from ops' desks
	// and phones. The page has no login, so keep it off the internet. An
	// empty value turns the listener off.
	Listen string `yaml:"listen"`
}

// DatabaseConfig says how to reach the customer's PostgreSQL.
type DatabaseConfig struct {
	// URL is a PostgreSQL connection URL. VISITRELAY_DATABASE_URL overrides
	// it. Put the password in PasswordFile, not here.
	URL string `yaml:"url"`
	// PasswordFile holds the database password, read at start. Optional.
	PasswordFile string `yaml:"passwordFile"`
	// MaxConns caps the connection pool. Default 4.
	MaxConns int32 `yaml:"maxConns"`
}

// NATSConfig sets up the embedded leaf nats-server.
type NATSConfig struct {
	// Name is the server name. Default appliance.
	Name string `yaml:"name"`
	// Domain is this site's JetStream domain; the gateway's nats.siteDomain
	// must name it. Default onprem.
	Domain string `yaml:"domain"`
	// GatewayURLs are the gateway's leafnode URLs, such as
	// nats-leaf://gateway.example.com:7422. The appliance dials out; it
	// opens no inbound port.
	GatewayURLs []string `yaml:"gatewayURLs"`
	// ClientPort is the loopback client port; -1 picks a free one. Default -1.
	ClientPort int `yaml:"clientPort"`
	// Tail is how long committed visits stay in the on-prem stream, for
	// replays and to keep the source position. Default 168h (7 days).
	Tail time.Duration `yaml:"tail"`
	// Leafnode link security (leaflink.go). LeafCAFile is a PEM file of
	// the CA that signed the gateway's leafnode certificate, or the
	// gateway's self-signed certificate itself; empty trusts the system's
	// roots. TLS is used when a URL's scheme is tls or wss, or when
	// LeafCAFile is set.
	LeafCAFile string `yaml:"leafCAFile"`
	// LeafSeedFile holds this site's nkey seed (from visitrelay-appliance
	// leaf-keygen); the gateway lists its public key. Either this or
	// LeafPasswordFile, matching the gateway's nats.sites entry.
	LeafSeedFile string `yaml:"leafSeedFile"`
	// LeafPasswordFile holds this site's password; the user name is Domain.
	LeafPasswordFile string `yaml:"leafPasswordFile"`
	// LeafProxy is an HTTP proxy URL, such as http://proxy.example.com:3128,
	// that the link is dialed through. Default empty: dial directly.
	LeafProxy string `yaml:"leafProxy"`
	// MaxStore caps the JetStream store in bytes. When it is full, new
	// visits wait in the cloud until space returns. Default 0 (no cap).
	MaxStore int64 `yaml:"maxStore"`
}

// CommitterConfig tunes the committer.
type CommitterConfig struct {
	// BatchSize is how many visits one transaction commits at most.
	// Default 100.
	BatchSize int `yaml:"batchSize"`
	// AckWait is how long a fetched visit may stay unacknowledged before
	// redelivery; it must exceed the slowest batch commit. Default 60s.
	AckWait time.Duration `yaml:"ackWait"`
	// MaxAttempts is how often a visit the database rejects for its content
	// is tried before it moves to dead letters. Default 5.
	MaxAttempts int `yaml:"maxAttempts"`
}

// DefaultConfig returns the defaults that a config file overrides.
func DefaultConfig() Config {
	return Config{
		Version:  1,
		StateDir: "/var/lib/visitrelay-appliance",
		Database: DatabaseConfig{MaxConns: 4},
		NATS: NATSConfig{
			Name:       "appliance",
			Domain:     "onprem",
			ClientPort: -1,
			Tail:       7 * 24 * time.Hour,
		},
		Committer: CommitterConfig{BatchSize: 100, AckWait: 60 * time.Second, MaxAttempts: 5},
		Status:    StatusConfig{Listen: "127.0.0.1:8090"},
		Log:       config.Log{Level: "info", Format: "text"},
	}
}

// Validate returns every problem of the config at once.
func (c Config) Validate() error {
	var p config.Problems
	if c.Version != 1 {
		p.Add("version", c.Version, "must be 1")
	}
	if c.StateDir == "" {
		p.Add("stateDir", `""`, "must be a directory path")
	}
	if c.Database.URL == "" {
		p.Add("database.url", `""`, "must be a PostgreSQL URL such as postgres://visitrelay@db.example.com/visits")
	}
	if c.Database.MaxConns < 2 {
		p.Add("database.maxConns", c.Database.MaxConns, "must be at least 2: the committer and the directory publisher each hold one")
	}
	if !visit.IsToken(c.NATS.Domain) || c.NATS.Domain == "cloud" {
		p.Add("nats.domain", c.NATS.Domain, "must be a name of letters, digits, '-' and '_', other than cloud")
	}
	if len(c.NATS.GatewayURLs) == 0 {
		p.Add("nats.gatewayURLs", "[]", "must list at least one URL such as nats-leaf://gateway.example.com:7422")
	}
	for i, u := range c.NATS.GatewayURLs {
		if _, err := parseLeafURL(u); err != nil {
			p.Add(fmt.Sprintf("nats.gatewayURLs[%d]", i), u, err.Error())
		}
	}
	if c.NATS.MaxStore < 0 {
		p.Add("nats.maxStore", c.NATS.MaxStore, "must be 0 (no cap) or a number of bytes")
	}
	c.NATS.validateLink(&p) // leaflink.go
	if c.NATS.Tail < time.Hour {
		p.Add("nats.tail", c.NATS.Tail, "must be at least 1h")
	}
	if c.Committer.BatchSize < 1 || c.Committer.BatchSize > 1000 {
		p.Add("committer.batchSize", c.Committer.BatchSize, "must be from 1 to 1000")
	}
	if c.Committer.AckWait < 5*time.Second {
		p.Add("committer.ackWait", c.Committer.AckWait, "must be at least 5s")
	}
	if c.Committer.MaxAttempts < 1 {
		p.Add("committer.maxAttempts", c.Committer.MaxAttempts, "must be at least 1")
	}
	if c.Status.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Status.Listen); err != nil {
			p.Add("status.listen", c.Status.Listen, "must be HOST:PORT, such as 127.0.0.1:8090 or 0.0.0.0:8090, or empty to turn the status listener off")
		}
	}
	c.Cluster.Validate(&p, "cluster")
	c.Log.Validate(&p)
	return p.Err()
}

func parseLeafURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("must be a URL: %w", err)
	}
	switch u.Scheme {
	case "nats-leaf", "nats", "tls", "ws", "wss":
	default:
		return nil, fmt.Errorf("scheme %q must be nats-leaf, tls, ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("must name a host and port")
	}
	return u, nil
}

// databaseURL returns the connection URL with the password from
// PasswordFile, if one is set.
func (c DatabaseConfig) databaseURL() (string, error) {
	if c.PasswordFile == "" {
		return c.URL, nil
	}
	// ReadSecret also resolves $CREDENTIALS_DIRECTORY/NAME, a systemd
	// credential.
	password, err := config.ReadSecret("database.passwordFile", c.PasswordFile)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return "", fmt.Errorf("parse database.url: %w", err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), nil
}
