package gateway

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/visitrelay/visitrelay/internal/health"
	"github.com/visitrelay/visitrelay/internal/metrics"
	"github.com/visitrelay/visitrelay/internal/statuspage"
)

//go:embed status.html
var statusPageFiles embed.FS

// statusAssetPath is the URL path of the status page's stylesheet and script.
const statusAssetPath = "/status/assets"

// statusParts are the gateway's status page, metrics and heartbeat
// receiver.
type statusParts struct {
	status     *statusService
	metrics    *gatewayMetrics
	beats      *heartbeats
	statusPage *template.Template
	adminToken string
}

// startStatus loads the admin token, parses the page, starts the status
// refresh under ctx and subscribes to heartbeats. Start calls it before
// the HTTP listener opens.
func (g *Gateway) startStatus(ctx context.Context) error {
	token, err := loadOrCreateAdminToken(g.cfg.adminTokenFile())
	if err != nil {
		return err
	}
	page, err := statuspage.Parse(statusPageFiles, "status.html")
	if err != nil {
		return err
	}
	g.adminToken, g.statusPage = token, page
	g.metrics = newGatewayMetrics()
	g.metrics.registry.MustRegister(&gatewayCollector{g: g})
	if g.status, err = newStatusService(g); err != nil {
		return err
	}
	if err := g.startHeartbeats(); err != nil {
		return err
	}
	go g.status.run(ctx)
	return nil
}

// statusRoutes registers the status page, /status.json and /metrics, each
// behind the admin token.
func (g *Gateway) statusRoutes(app *fiber.App) {
	app.Get("/status", g.requireAdmin, g.serveStatusPage)
	app.Get("/status.json", g.requireAdmin, g.serveStatusJSON)
	app.Get(statusAssetPath+"/:name", g.requireAdmin, serveStatusAsset)
	app.Get("/metrics", g.requireAdmin, adaptor.HTTPHandler(metrics.Handler(g.metrics.registry)))
}

// requireAdmin lets a request through when it carries the admin token as
// a bearer token or as the password of HTTP basic auth. Wrong tokens count
// towards the login throttle of the client's address.
func (g *Gateway) requireAdmin(c *fiber.Ctx) error {
	now := time.Now()
	key := "admin:" + c.IP()
	if g.throttle.blocked(now, key) {
		return fmt.Errorf("admin token from %s: %w", c.IP(), ErrLoginThrottled)
	}
	token, presented := adminCredential(c.Get(fiber.HeaderAuthorization))
	if presented && subtle.ConstantTimeCompare([]byte(token), []byte(g.adminToken)) == 1 {
		return c.Next()
	}
	if presented {
		g.throttle.fail(now, key)
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="visitrelay gateway status", charset="UTF-8"`)
	return fmt.Errorf("%s %s from %s: %w", c.Method(), c.Path(), c.IP(), ErrAdminRequired)
}

// adminCredential returns the token of a Bearer header or the password of
// a Basic one, and whether the header held either.
func adminCredential(header string) (string, bool) {
	if token, ok := strings.CutPrefix(header, "Bearer "); ok {
		return token, true
	}
	encoded, ok := strings.CutPrefix(header, "Basic ")
	if !ok {
		return "", false
	}
	decoded, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return "", true
	}
	_, password, _ := strings.Cut(string(decoded), ":")
	return password, true
}

// statusPageData is the data that status.html renders.
type statusPageData struct {
	Status
	AssetPath string
	Refresh   int
}

func (g *Gateway) serveStatusPage(c *fiber.Ctx) error {
	data := statusPageData{Status: g.status.snapshot(), AssetPath: statusAssetPath, Refresh: statuspage.RefreshSeconds}
	name := "status.html"
	if c.Get(statuspage.FragmentHeader) == "live" {
		name = "live"
	}
	var b strings.Builder
	if err := g.statusPage.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("render status page: %w", err)
	}
	setPageHeaders(c)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.SendString(b.String())
}

func (g *Gateway) serveStatusJSON(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(g.status.snapshot())
}

func serveStatusAsset(c *fiber.Ctx) error {
	name := c.Params("name")
	types := map[string]string{"status.css": "text/css; charset=utf-8", "status.js": "text/javascript; charset=utf-8"}
	contentType, ok := types[name]
	if !ok {
		return fiber.ErrNotFound
	}
	body, err := statuspage.Asset(name)
	if err != nil {
		return fmt.Errorf("read status asset %s: %w", name, err)
	}
	c.Set(fiber.HeaderContentType, contentType)
	c.Set(fiber.HeaderCacheControl, "max-age=300")
	return c.Send(body)
}

func setPageHeaders(c *fiber.Ctx) {
	for k, v := range statuspage.SecurityHeaders {
		c.Set(k, v)
	}
}

// readinessProblems returns why the gateway cannot take visits: JetStream
// unhealthy or the store not writable. /readyz responds 503 with them.
func (g *Gateway) readinessProblems() []string {
	var problems []string
	if hs := g.ns.Healthz(&server.HealthzOptions{}); hs == nil || hs.StatusCode != fiber.StatusOK {
		reason := "no answer"
		if hs != nil {
			reason = hs.Error
		}
		problems = append(problems, "JetStream unhealthy: "+reason)
	}
	if err := health.ProbeWritable(filepath.Join(g.cfg.StateDir, "jetstream")); err != nil {
		problems = append(problems, "store not writable: "+err.Error())
	}
	return problems
}

// loadOrCreateAdminToken returns VISITRELAY_ADMIN_TOKEN when set, else the
// token in path, creating the file with a random token on first start.
func loadOrCreateAdminToken(path string) (string, error) {
	if token := os.Getenv("VISITRELAY_ADMIN_TOKEN"); token != "" {
		return token, nil
	}
	data, err := os.ReadFile(path)
	if err == nil {
		token := strings.TrimSpace(string(data))
		if len(token) < 16 {
			return "", fmt.Errorf("read admin token %s: %d characters, need at least 16; delete it to make a new one", path, len(token))
		}
		return token, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read admin token: %w", err)
	}

	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create admin token directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return token, nil
}

// AdminToken returns the token that opens the status page and /metrics,
// for tests and the demo.
func (g *Gateway) AdminToken() string { return g.adminToken }
