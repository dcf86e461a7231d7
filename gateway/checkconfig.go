package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
)

// checkConfig tests what validation of the file alone cannot: that the TLS
// certificates load, that the state directory is writable, and whether the
// listen addresses are free. It writes one line per check and returns an
// error naming every failed one.
func checkConfig(cfg Config, path string, stdout io.Writer) error {
	fmt.Fprintf(stdout, "config %s: valid\n", path)
	var errs []error
	report := func(what string, err error) {
		if err != nil {
			fmt.Fprintf(stdout, "FAIL %s: %v\n", what, err)
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			return
		}
		fmt.Fprintf(stdout, "ok   %s\n", what)
	}

	report("state directory "+cfg.StateDir+" is writable", checkWritable(cfg.StateDir))
	if cfg.TLS.Mode == TLSFiles {
		_, err := (&fileCertificate{certFile: cfg.TLS.CertFile, keyFile: cfg.TLS.KeyFile}).load()
		report("tls certificate "+cfg.TLS.CertFile+" loads", err)
	}
	if cfg.NATS.LeafTLS.Mode == LeafTLSFiles {
		_, err := (&fileCertificate{certFile: cfg.NATS.LeafTLS.CertFile, keyFile: cfg.NATS.LeafTLS.KeyFile}).load()
		report("leafnode certificate "+cfg.NATS.LeafTLS.CertFile+" loads", err)
	}
	if len(cfg.NATS.Sites) == 0 {
		fmt.Fprintln(stdout, "warn nats.sites is empty: any leafnode may connect without credentials")
	}
	for _, addr := range []struct{ key, addr string }{
		{"listen", cfg.Listen},
		{"nats.leafListen", cfg.NATS.LeafListen},
		{"nats.leafWebsocketListen", cfg.NATS.LeafWebsocketListen},
		{"tls.httpListen", httpListenInUse(cfg.TLS)},
	} {
		if addr.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr.addr)
		if err != nil {
			// The running gateway holds its own addresses.
			fmt.Fprintf(stdout, "warn %s %s cannot be opened now (is the gateway running?): %v\n", addr.key, addr.addr, err)
			continue
		}
		ln.Close()
		fmt.Fprintf(stdout, "ok   %s %s is free\n", addr.key, addr.addr)
	}
	return errors.Join(errs...)
}

func httpListenInUse(t TLSConfig) string {
	if t.Mode == TLSOff {
		return ""
	}
	return t.HTTPListen
}

// checkWritable creates and removes a file in dir, or in the nearest
// parent that exists when dir does not: the gateway creates it at start.
func checkWritable(dir string) error {
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	f, err := os.CreateTemp(dir, ".check-config-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(filepath.Join(dir, filepath.Base(name)))
}
