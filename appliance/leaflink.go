package appliance

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"

	"github.com/nats-io/nkeys"

	"github.com/visitrelay/visitrelay/internal/config"
	"github.com/visitrelay/visitrelay/internal/natsembed"
)

// validateLink adds the problems of the link settings to p. Secret files
// are read here too, so that check-config finds a missing or malformed one.
func (c NATSConfig) validateLink(p *config.Problems) {
	if c.LeafCAFile != "" {
		if _, err := loadRootCAs(c.LeafCAFile); err != nil {
			p.Add("nats.leafCAFile", c.LeafCAFile, "must be a readable PEM file of CA certificates: "+err.Error())
		}
	}
	if c.LeafSeedFile != "" && c.LeafPasswordFile != "" {
		p.Add("nats.leafSeedFile", c.LeafSeedFile, "must not be set together with nats.leafPasswordFile: the gateway lists a site with one of them")
	}
	if c.LeafSeedFile != "" {
		if _, err := readSeed(c.LeafSeedFile); err != nil {
			p.Add("nats.leafSeedFile", c.LeafSeedFile, err.Error())
		}
	}
	if c.LeafPasswordFile != "" {
		if _, err := config.ReadSecret("nats.leafPasswordFile", c.LeafPasswordFile); err != nil {
			p.Add("nats.leafPasswordFile", c.LeafPasswordFile, "must be a readable file with the site's password: "+err.Error())
		}
	}
	if c.LeafProxy != "" {
		if u, err := url.Parse(c.LeafProxy); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("nats.leafProxy", c.LeafProxy, "must be an http:// or https:// proxy URL such as http://proxy.example.com:3128")
		}
	}
}

// leafLink returns the gateway URLs to dial, with the site's password as
// their user info when LeafPasswordFile is set, and the link's TLS, nkey
// and proxy options.
func (c NATSConfig) leafLink() ([]*url.URL, natsembed.LinkOptions, error) {
	var link natsembed.LinkOptions
	var password string
	if c.LeafPasswordFile != "" {
		var err error
		if password, err = config.ReadSecret("nats.leafPasswordFile", c.LeafPasswordFile); err != nil {
			return nil, link, err
		}
	}
	var remotes []*url.URL
	for _, s := range c.GatewayURLs {
		u, err := parseLeafURL(s)
		if err != nil {
			return nil, link, fmt.Errorf("parse gateway URL %q: %w", s, err)
		}
		if password != "" {
			u.User = url.UserPassword(c.Domain, password)
		}
		remotes = append(remotes, u)
	}

	if c.LeafCAFile != "" {
		roots, err := loadRootCAs(c.LeafCAFile)
		if err != nil {
			return nil, link, fmt.Errorf("load nats.leafCAFile: %w", err)
		}
		link.RemoteTLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	if c.LeafSeedFile != "" {
		seed, err := readSeed(c.LeafSeedFile)
		if err != nil {
			return nil, link, fmt.Errorf("read nats.leafSeedFile: %w", err)
		}
		link.RemoteSeed = seed
	}
	link.RemoteProxy = c.LeafProxy
	return remotes, link, nil
}

func loadRootCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

// readSeed reads an nkey user seed file and checks that it is one.
func readSeed(path string) (string, error) {
	seed, err := config.ReadSecret("nats.leafSeedFile", path)
	if err != nil {
		return "", fmt.Errorf("must be a readable file with the site's nkey seed: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return "", fmt.Errorf("must hold an nkey user seed starting with SU: %w", err)
	}
	defer kp.Wipe()
	if public, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(public) {
		return "", fmt.Errorf("must hold an nkey user seed starting with SU, not another kind of nkey")
	}
	return seed, nil
}

// writeLeafKey creates a new nkey user seed in path, readable by its owner
// and group only, and returns the public key for the gateway's nats.sites.
// An existing file is never overwritten.
func writeLeafKey(path string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("create nkey: %w", err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("read nkey seed: %w", err)
	}
	public, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("read nkey public key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return "", fmt.Errorf("create seed file: %w", err)
	}
	if _, err := f.Write(append(seed, '\n')); err != nil {
		f.Close()
		return "", fmt.Errorf("write seed file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write seed file %s: %w", path, err)
	}
	return public, nil
}
