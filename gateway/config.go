package gateway

import (
	"net"
	"path/filepath"
	"time"

	"github.com/visitrelay/visitrelay/internal/config"
	"github.com/visitrelay/visitrelay/internal/visit"
)

// Config is the gateway's config file. Every field is documented in
// configs/gateway.yaml.
type Config struct {
	// Version of the config file format. Must be 1.
	Version int `yaml:"version"`
	// Listen is the HTTP address for the API and the page. Default :8080.
	Listen string `yaml:"listen"`
	// StateDir holds the JetStream store and the token key.
	// Default /var/lib/visitrelay-gateway.
	StateDir string        `yaml:"stateDir"`
	NATS     NATSConfig    `yaml:"nats"`
	Visits   VisitsConfig  `yaml:"visits"`
	Auth     AuthConfig    `yaml:"auth"`
	Archive  ArchiveConfig `yaml:"archive"`
	// TLS sets up HTTPS for the API and the page (tlsconfig.go).
	TLS    TLSConfig    `yaml:"tls"`
	Status StatusConfig `yaml:"status"`
	Log    config.Log   `yaml:"log"`
	// Cluster joins gateway nodes into one NATS cluster; see configs/gateway.yaml.
	Cluster config.Cluster `yaml:"cluster"`
}

// StatusConfig guards the status page, /status.json and /metrics, which
// are served on the listen address with the API.
type StatusConfig struct {
	// AdminTokenFile holds the admin token that opens them: HTTP basic
	// auth with any user name and the token as password, or
	// "Authorization: Bearer TOKEN". The file is created with a random
	// token at first start when missing. VISITRELAY_ADMIN_TOKEN overrides
	// it. Default STATEDIR/admin.token.
	AdminTokenFile string `yaml:"adminTokenFile"`
}

// ArchiveConfig sets up the archive of accepted visits.
type ArchiveConfig struct {
	// Enabled turns the archive on. Default true.
	Enabled bool `yaml:"enabled"`
	// Dir holds one gzip-compressed JSON-lines file per day.
	// Default STATEDIR/archive.
	Dir string `yaml:"dir"`
	// Keep is how long day files are kept. Default 2160h (90 days).
	Keep time.Duration `yaml:"keep"`
}

// NATSConfig sets up the embedded nats-server.
type NATSConfig struct {
	// Name is the server name. Default gateway.
	Name string `yaml:"name"`
	// ClientPort is the loopback client port; -1 picks a free one. Default -1.
	ClientPort int `yaml:"clientPort"`
	// LeafListen is where appliances dial in. Default 0.0.0.0:7422.
	LeafListen string `yaml:"leafListen"`
	// SiteDomain is the JetStream domain of the site whose receipts and
	// directory the gateway sources. Default onprem.
	SiteDomain string `yaml:"siteDomain"`
	// MaxStore caps the JetStream store in bytes. Default 0 (no cap).
	MaxStore int64 `yaml:"maxStore"`
	// LeafTLS sets up TLS on the leafnode listeners (leafauth.go).
	LeafTLS LeafTLSConfig `yaml:"leafTLS"`
	// LeafWebsocketListen is a HOST:PORT where appliances may open the
	// leafnode link over websocket, such as 0.0.0.0:7443, for sites whose
	// firewall lets only HTTPS out. TLS as in LeafTLS. Default empty: none.
	LeafWebsocketListen string `yaml:"leafWebsocketListen"`
	// Sites are the sites allowed to open a leafnode link, each with its
	// credentials. Default empty: any leafnode may connect without
	// credentials, which suits tests and a gateway on a private network only.
	Sites []SiteConfig `yaml:"sites"`
}

// VisitsConfig sets up the cloud visit stream.
type VisitsConfig struct {
	// Retention is how long an accepted visit is kept in the cloud. An
	// appliance outage longer than this loses visits. Default 720h (30 days).
	Retention time.Duration `yaml:"retention"`
	// MaxBytes caps the stream; when full, new visits get 503 and stay on
	// the phone. Default 1073741824 (1 GiB).
	MaxBytes int64 `yaml:"maxBytes"`
	// PublishTimeout bounds the wait for the stream's ack. Default 5s.
	PublishTimeout time.Duration `yaml:"publishTimeout"`
}

// AuthConfig sets up login tokens.
type AuthConfig struct {
	// TokenTTL is how long a login token is valid. Default 12h.
	TokenTTL time.Duration `yaml:"tokenTTL"`
	// KeyFile holds the token signing key; it is created when missing.
	// Default STATEDIR/token.key.
	KeyFile string `yaml:"keyFile"`
}

// DefaultConfig returns the defaults that a config file overrides.
func DefaultConfig() Config {
	return Config{
		Version:  1,
		Listen:   ":8080",
		StateDir: "/var/lib/visitrelay-gateway",
		NATS: NATSConfig{
			Name:       "gateway",
			ClientPort: -1,
			LeafListen: "0.0.0.0:7422",
			SiteDomain: "onprem",
			LeafTLS:    LeafTLSConfig{Mode: LeafTLSOff},
		},
		Visits: VisitsConfig{
			Retention:      30 * 24 * time.Hour,
			MaxBytes:       1 << 30,
			PublishTimeout: 5 * time.Second,
		},
		Auth:    AuthConfig{TokenTTL: 12 * time.Hour},
		Archive: ArchiveConfig{Enabled: true, Keep: 90 * 24 * time.Hour},
		TLS:     defaultTLSConfig(),
		Log:     config.Log{Level: "info", Format: "text"},
	}
}

// Validate returns every problem of the config at once.
func (c Config) Validate() error {
	var p config.Problems
	if c.Version != 1 {
		p.Add("version", c.Version, "must be 1")
	}
	checkAddress(&p, "listen", c.Listen)
	if c.StateDir == "" {
		p.Add("stateDir", `""`, "must be a directory path")
	}
	if c.NATS.LeafListen != "" {
		checkAddress(&p, "nats.leafListen", c.NATS.LeafListen)
	}
	if !visit.IsToken(c.NATS.SiteDomain) {
		p.Add("nats.siteDomain", c.NATS.SiteDomain, "must be a name of letters, digits, '-' and '_'")
	}
	if c.Visits.Retention < time.Hour {
		p.Add("visits.retention", c.Visits.Retention, "must be at least 1h")
	}
	if c.Visits.MaxBytes < 1<<20 {
		p.Add("visits.maxBytes", c.Visits.MaxBytes, "must be at least 1048576 (1 MiB)")
	}
	if c.Visits.PublishTimeout <= 0 {
		p.Add("visits.publishTimeout", c.Visits.PublishTimeout, "must be positive, such as 5s")
	}
	if c.Auth.TokenTTL < time.Minute {
		p.Add("auth.tokenTTL", c.Auth.TokenTTL, "must be at least 1m")
	}
	if c.Archive.Enabled && c.Archive.Keep < 24*time.Hour {
		p.Add("archive.keep", c.Archive.Keep, "must be at least 24h")
	}
	// TLS and the leafnode link: tlsconfig.go and leafauth.go.
	c.TLS.validate(&p)
	c.validateLeaf(&p)
	if !visit.IsToken(c.NATS.Name) {
		p.Add("nats.name", c.NATS.Name, "must be a name of letters, digits, '-' and '_', unique per node")
	}
	c.Cluster.Validate(&p, "cluster")
	c.Log.Validate(&p)
	return p.Err()
}

func checkAddress(p *config.Problems, key, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		p.Add(key, addr, "must be HOST:PORT, such as 127.0.0.1:8080 or :8080")
	}
}

func (c Config) keyFile() string {
	if c.Auth.KeyFile != "" {
		return c.Auth.KeyFile
	}
	return filepath.Join(c.StateDir, "token.key")
}

func (c Config) adminTokenFile() string {
	if c.Status.AdminTokenFile != "" {
		return c.Status.AdminTokenFile
	}
	return filepath.Join(c.StateDir, "admin.token")
}

func (c Config) archiveDir() string {
	if c.Archive.Dir != "" {
		return c.Archive.Dir
	}
	return filepath.Join(c.StateDir, "archive")
}
