package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/gofiber/fiber/v2"
	"github.com/mholt/acmez/v3"
)

// tlsService is the certificate source of the HTTPS listener, and of the
// leafnode listener when nats.leafTLS.mode is http, plus the plain HTTP
// listener that serves ACME HTTP-01 challenges and redirects to HTTPS.
type tlsService struct {
	cfg    TLSConfig
	logger *slog.Logger

	config   *tls.Config
	cancel   context.CancelFunc // ends certificate management
	magic    *certmagic.Config
	cache    *certmagic.Cache
	issuer   *certmagic.ACMEIssuer
	redirect *http.Server

	// renewal overrides certmagic's renewal timing; tests set it to see a
	// renewal within seconds.
	renewal *renewalTiming
}

// renewalTiming sets how often certmagic checks for renewal and at which
// fraction of remaining lifetime it renews. httpChallengeOnly turns off
// TLS-ALPN-01, so that a test sees HTTP-01 alone at work.
type renewalTiming struct {
	checkInterval     time.Duration
	windowRatio       float64
	httpChallengeOnly bool
}

// newTLSService builds the certificate source for the mode. It returns nil
// in off mode.
func newTLSService(cfg TLSConfig, stateDir string, httpsAddr string, logger *slog.Logger, renewal *renewalTiming) (*tlsService, error) {
	s := &tlsService{cfg: cfg, logger: logger, renewal: renewal}
	var err error
	switch cfg.Mode {
	case TLSOff:
		return nil, nil
	case TLSFiles:
		err = s.setupFiles()
	case TLSSelfSigned:
		err = s.setupSelfSigned(filepath.Join(stateDir, "tls"))
	case TLSACME:
		err = s.setupACME(filepath.Join(stateDir, "certmagic"), httpsAddr)
	default:
		err = fmt.Errorf("unknown tls.mode %q", cfg.Mode)
	}
	if err != nil {
		return nil, err
	}
	// fasthttp speaks HTTP/1.1 only, so h2 is never offered.
	s.config.NextProtos = []string{"http/1.1"}
	if cfg.Mode == TLSACME {
		s.config.NextProtos = append(s.config.NextProtos, acmez.ACMETLS1Protocol)
	}
	s.config.MinVersion = tls.VersionTLS12
	return s, nil
}

func (s *tlsService) setupFiles() error {
	source := &fileCertificate{certFile: s.cfg.CertFile, keyFile: s.cfg.KeyFile}
	if _, err := source.load(); err != nil {
		return err
	}
	s.config = &tls.Config{GetCertificate: source.getCertificate}
	s.logger.Info("tls certificate loaded", "mode", TLSFiles, "cert_file", s.cfg.CertFile)
	return nil
}

func (s *tlsService) setupACME(storageDir, httpsAddr string) error {
	zapLogger := newZapLogger(s.logger)
	var magic *certmagic.Config
	cacheOptions := certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zapLogger,
	}
	if s.renewal != nil {
		cacheOptions.RenewCheckInterval = s.renewal.checkInterval
	}
	s.cache = certmagic.NewCache(cacheOptions)
	magic = certmagic.New(s.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: storageDir},
		Logger:  zapLogger,
	})
	if s.renewal != nil {
		magic.RenewalWindowRatio = s.renewal.windowRatio
	}

	template := certmagic.ACMEIssuer{
		CA:                   s.cfg.ACMEDirectory,
		Email:                s.cfg.Email,
		Agreed:               true,
		DisableHTTPChallenge: s.cfg.HTTPListen == "",
		Logger:               zapLogger,
	}
	if s.renewal != nil && s.renewal.httpChallengeOnly {
		template.DisableTLSALPNChallenge = true
	}
	// certmagic tries to open its own challenge listeners on these ports;
	// ours already hold them, so it finds them in use and our listeners
	// serve the challenges instead.
	if host, port, err := splitHostPort(httpsAddr); err == nil && port > 0 {
		template.ListenHost, template.AltTLSALPNPort = host, port
	}
	if _, port, err := splitHostPort(s.cfg.HTTPListen); err == nil && port > 0 {
		template.AltHTTPPort = port
	}
	if s.cfg.ACMERootFile != "" {
		roots, err := loadCertPool(s.cfg.ACMERootFile)
		if err != nil {
			return fmt.Errorf("load tls.acmeRootFile: %w", err)
		}
		template.TrustedRoots = roots
	}
	s.issuer = certmagic.NewACMEIssuer(magic, template)
	magic.Issuers = []certmagic.Issuer{s.issuer}

	s.magic = magic
	s.config = magic.TLSConfig()
	s.logger.Info("tls certificates managed by acme", "names", s.cfg.Names, "directory", s.cfg.ACMEDirectory, "storage", storageDir)
	return nil
}

// start opens the plain HTTP listener and, in acme mode, starts obtaining
// and renewing certificates in the background. Call it once the HTTPS
// listener is open, because the CA checks challenges on both at once.
func (s *tlsService) start(httpsPort int) error {
	if err := s.startRedirect(httpsPort); err != nil {
		return err
	}
	if s.magic == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.magic.ManageAsync(ctx, s.cfg.Names); err != nil {
		cancel()
		return fmt.Errorf("manage certificates for %v: %w", s.cfg.Names, err)
	}
	s.cancel = cancel
	return nil
}

// startRedirect opens the plain HTTP listener, which serves ACME HTTP-01
// challenges and redirects every other request to HTTPS on httpsPort.
func (s *tlsService) startRedirect(httpsPort int) error {
	if s.cfg.HTTPListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("listen on tls.httpListen %s: %w", s.cfg.HTTPListen, err)
	}
	var handler http.Handler = redirectHandler(httpsPort)
	if s.issuer != nil {
		handler = s.issuer.HTTPChallengeHandler(handler)
	}
	s.redirect = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.redirect.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http redirect listener stopped", "addr", s.cfg.HTTPListen, "error", err)
		}
	}()
	s.logger.Info("http redirect listener started", "addr", ln.Addr().String())
	return nil
}

// redirectHandler sends every request to the same host and path over HTTPS.
func redirectHandler(httpsPort int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if httpsPort != 443 {
			host = net.JoinHostPort(host, strconv.Itoa(httpsPort))
		}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// shutdown closes the redirect listener and stops certificate maintenance.
func (s *tlsService) shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	var err error
	if s.redirect != nil {
		if shutdownErr := s.redirect.Shutdown(ctx); shutdownErr != nil {
			err = fmt.Errorf("stop http redirect listener: %w", shutdownErr)
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.cache != nil {
		s.cache.Stop()
	}
	return err
}

// applyProxyTrust makes Fiber believe forwarded headers from the configured
// proxies only. Without trusted proxies the headers are ignored.
func (t TLSConfig) applyProxyTrust(fc *fiber.Config) {
	if len(t.TrustedProxies) == 0 {
		return
	}
	fc.ProxyHeader = t.ProxyHeader
	fc.EnableTrustedProxyCheck = true
	fc.TrustedProxies = t.TrustedProxies
}

func loadCertPool(path string) (*x509.CertPool, error) {
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

// setupTLS builds the HTTPS certificate source and the leafnode link's
// TLS and site credentials. It runs before NATS starts, because the
// leafnode listener may share the HTTPS certificate.
func (g *Gateway) setupTLS() error {
	service, err := newTLSService(g.cfg.TLS, g.cfg.StateDir, g.cfg.Listen,
		g.logger.With("component", "tls"), g.renewal)
	if err != nil {
		return fmt.Errorf("set up tls: %w", err)
	}
	g.tls = service
	var httpsTLS *tls.Config
	if service != nil {
		httpsTLS = service.config
	}
	g.link, err = g.cfg.linkOptions(httpsTLS)
	if err != nil {
		return err
	}
	if len(g.link.Sites) == 0 {
		// Only a listener that other machines reach makes this a risk.
		level := slog.LevelWarn
		if host, _, err := net.SplitHostPort(g.cfg.NATS.LeafListen); err == nil && isLoopback(host) && g.cfg.NATS.LeafWebsocketListen == "" {
			level = slog.LevelInfo
		}
		g.logger.Log(context.Background(), level, "leafnode link accepts any site without credentials; list nats.sites to require them",
			"leaf_listen", g.cfg.NATS.LeafListen)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// wrapTLS returns the HTTPS listener on top of ln, opens the redirect
// listener and starts certificate management. In tls.mode off it returns
// ln as it is.
func (g *Gateway) wrapTLS(ln net.Listener) (net.Listener, error) {
	if g.tls == nil {
		return ln, nil
	}
	port := 443
	if addr, ok := ln.Addr().(*net.TCPAddr); ok {
		port = addr.Port
	}
	if err := g.tls.start(port); err != nil {
		return nil, err
	}
	return tls.NewListener(ln, g.tls.config), nil
}

// URL returns the base URL of the API: https unless tls.mode is off.
func (g *Gateway) URL() string {
	if g.tls == nil {
		return "http://" + g.HTTPAddr()
	}
	return "https://" + g.HTTPAddr()
}
