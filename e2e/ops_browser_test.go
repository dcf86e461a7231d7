package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/visitrelay/visitrelay/internal/pgtest"
	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// statusTab is a headless Chromium tab on a status page.
type statusTab struct {
	t   *testing.T
	ctx context.Context
}

// newStatusTab starts Chromium with a fresh profile and a window of the
// given size, sending the gateway's admin token with every request, and
// closes it when the test ends.
func newStatusTab(t *testing.T, width, height int, adminToken string) *statusTab {
	t.Helper()
	execPath := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancel()
	})

	tab := &statusTab{t: t, ctx: tabCtx}
	tab.run("set the admin token header", chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		if _, err := cdp.Call(ctx, target, network.Enable, network.EnableParams{}); err != nil {
			return fmt.Errorf("enable network domain: %w", err)
		}
		_, err := cdp.Call(ctx, target, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": "Bearer " + adminToken},
		})
		return err
	}))
	tab.run("size the viewport", chromedp.EmulateViewport(int64(width), int64(height)))
	return tab
}

// run runs an action in the tab. It uses the tab's own context, bounded by
// the test's, because the first action starts the browser, and Chromium
// would stop with a shorter context.
func (s *statusTab) run(what string, action chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if _, err := chromedp.Run(s.ctx, action); err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

func (s *statusTab) open(url string) {
	s.t.Helper()
	s.run("open "+url, chromedp.Navigate(url))
}

// waitFor polls a JavaScript expression until it is truthy. The page is
// never reloaded: its own script refreshes the figures.
func (s *statusTab) waitFor(what, expression string, timeout time.Duration) {
	s.t.Helper()
	_, err := chromedp.Run(s.ctx, chromedp.Poll[chromedp.Void](expression,
		chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		s.t.Fatalf("wait until %s: %v; verdict shown: %q", what, err, s.text("#verdict"))
	}
}

// text returns the text of the first element matching a CSS selector.
func (s *statusTab) text(selector string) string {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, selector)))
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return v
}

// screenshot saves the whole page as NAME.png in the directory named by
// VISITRELAY_SCREENSHOT_DIR, or in the test's artifact directory.
func (s *statusTab) screenshot(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, pageWait)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("take screenshot %s: %v", name, err)
	}
	dir := os.Getenv("VISITRELAY_SCREENSHOT_DIR")
	if dir == "" {
		dir = s.t.ArtifactDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatalf("create screenshot directory: %v", err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		s.t.Fatalf("write screenshot: %v", err)
	}
	s.t.Logf("screenshot: %s", path)
}

// Expressions on the status pages.
const (
	verdictFlowing  = `document.getElementById("verdict").dataset.state === "flowing"`
	verdictDegraded = `document.getElementById("verdict").dataset.state === "degraded"`
	commitPending   = `Number((document.querySelector('tr[data-hop="commit"] [data-pending]') || {dataset: {pending: "-1"}}).dataset.pending)`
)

// TestOpsStatusPagesInBrowser stops PostgreSQL under a running appliance
// and watches both status pages, without reloading them, turn degraded
// naming the database while the backlog grows, and return to all flowing
// once PostgreSQL is back.
func TestOpsStatusPagesInBrowser(t *testing.T) {
	const before, during = 8, 15
	cluster := pgtest.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pgtest.CreateDatabase(ctx, cluster.AdminDSN(), "visitrelay"); err != nil {
		t.Fatal(err)
	}
	e := relaytest.StartWithDSN(t, cluster.DSN("visitrelay"))
	tokens := loginAll(e)
	rng := rand.New(rand.NewPCG(7, 1))
	postAll(t, e, tokens, newVisits(rng, before), 4)
	e.WaitVisits(before, commitTimeout)

	tab := newStatusTab(t, 1100, 900, e.Gateway.AdminToken())
	phone := newStatusTab(t, 390, 844, e.Gateway.AdminToken())
	statusPage := applianceURL(e, "/")

	tab.open(statusPage)
	tab.waitFor("the appliance page shows all flowing", fmt.Sprintf(`%s && %s === 0 && document.getElementById("committed").innerText === "%d"`, verdictFlowing, commitPending, before), opsWait)
	tab.screenshot("appliance-healthy")
	phone.open(statusPage)
	phone.waitFor("the phone shows all flowing", verdictFlowing, opsWait)
	phone.screenshot("appliance-healthy-phone")
	tab.open(e.URL + "/status")
	tab.waitFor("the gateway page shows the site's commits",
		fmt.Sprintf(`%s && Number((document.querySelector('tr[data-site="onprem"]') || {dataset: {committed: "0"}}).dataset.committed) === %d`, verdictFlowing, before), opsWait)
	tab.screenshot("gateway-healthy")

	if err := cluster.Stop(ctx); err != nil {
		t.Fatalf("stop PostgreSQL: %v", err)
	}
	tab.open(statusPage)
	waiting := newVisits(rng, during)
	postAll(t, e, tokens, waiting, 4)
	tab.waitFor("the appliance page names the database",
		verdictDegraded+` && document.getElementById("verdict-summary").innerText.includes("database unreachable")`, opsWait)
	tab.waitFor(fmt.Sprintf("the pending count rises to %d", during), fmt.Sprintf("%s === %d", commitPending, during), opsWait)
	if got := tab.text(`tr[data-hop="commit"]`); !strings.Contains(got, "s") {
		t.Errorf("commit hop row %q shows no age of the oldest waiting visit", got)
	}
	tab.screenshot("appliance-degraded")
	phone.waitFor("the phone shows degraded", verdictDegraded, opsWait)
	phone.screenshot("appliance-degraded-phone")
	checkReadiness(t, e, http.StatusServiceUnavailable, "database unreachable")

	tab.open(e.URL + "/status")
	tab.waitFor("the gateway page relays the site's verdict",
		verdictDegraded+` && document.getElementById("verdict-summary").innerText.includes("site onprem reports database unreachable")`, opsWait)
	tab.screenshot("gateway-degraded")

	tab.open(statusPage)
	if err := cluster.Start(ctx); err != nil {
		t.Fatalf("start PostgreSQL again: %v", err)
	}
	e.Pool.Reset()
	e.WaitVisits(before+during, commitTimeout)
	tab.waitFor("the appliance page returns to all flowing", verdictFlowing+` && `+commitPending+` === 0`, opsWait)
	if got := tab.text("#verdict-summary"); got != "all flowing" {
		t.Errorf("verdict after the restart %q, want all flowing", got)
	}
	checkReadiness(t, e, http.StatusOK, "database reachable")

	tab.open(applianceURL(e, "/trace?visit="+waiting[0].VisitID))
	tab.waitFor("the trace shows the visit committed", `document.getElementById("trace-result").dataset.stage === "committed"`, pageWait)
	tab.screenshot("appliance-trace")
}

// checkReadiness checks the appliance's /readyz and that /healthz stays
// up whatever the database does.
func checkReadiness(t *testing.T, e *relaytest.Env, want int, text string) {
	t.Helper()
	code, body := opsGet(t, applianceURL(e, "/readyz"), "")
	if code != want || !strings.Contains(string(body), text) {
		t.Errorf("appliance /readyz: status %d %q, want %d containing %q", code, body, want, text)
	}
	code, body = opsGet(t, applianceURL(e, "/healthz"), "")
	if code != http.StatusOK {
		t.Errorf("appliance /healthz: status %d %q, want 200", code, body)
	}
}
