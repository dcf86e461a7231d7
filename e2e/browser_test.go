package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// Browser tests drive Debian's Chromium through the DevTools protocol. The
// page is served by a real gateway on loopback, which Chromium treats as a
// secure context, so the service worker and crypto.randomUUID work over
// plain HTTP.

const (
	// defaultChromium is where Debian's chromium package installs the browser;
	// VISITRELAY_CHROMIUM overrides it.
	defaultChromium = "/usr/bin/chromium"
	// browserTimeout bounds one browser test, from starting Chromium to the
	// last check.
	browserTimeout = 2 * time.Minute
	// pageWait bounds one wait for the page to reach a state.
	pageWait = 20 * time.Second
	// deliveryWait bounds a wait that includes the appliance committing a
	// visit and the page polling the gateway for it.
	deliveryWait = 45 * time.Second
	// pageTimezone is the phone's time zone in every browser test. It is not
	// UTC, so a test detects a dateTime that loses its offset.
	pageTimezone = "Europe/Vienna"
	// screenWidth and screenHeight are a small phone's viewport in CSS pixels.
	screenWidth, screenHeight = 360, 740
)

// phone is one headless Chromium tab, sized like a phone, with the
// salesman's page.
type phone struct {
	t        *testing.T
	ctx      context.Context
	baseURL  string
	profile  string // Chromium's user data directory
	download string // where the browser saves downloads
	close    func() // closes the browser, keeping the profile

	mu      sync.Mutex
	console []string
	thrown  []string
}

// chromiumPath returns the Chromium binary. Under CI=true a missing browser
// fails the test; elsewhere the test is skipped.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("VISITRELAY_CHROMIUM")
	if path == "" {
		path = defaultChromium
	}
	found, err := exec.LookPath(path)
	if err == nil {
		return found
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("chromium not found at %s: %v; run make ensure-chromium", path, err)
	}
	t.Skipf("chromium not found at %s (%v); run make ensure-chromium or set VISITRELAY_CHROMIUM", path, err)
	return ""
}

// newPhone starts Chromium with a fresh profile, sized and set up like a
// phone, and closes it when the test ends. It fails the test if the page
// threw an uncaught exception.
func newPhone(t *testing.T, baseURL string) *phone {
	t.Helper()
	return startPhone(t, baseURL, t.TempDir())
}

// startPhone is newPhone with a given profile directory, so a test can
// close the browser and start it again with the same storage.
func startPhone(t *testing.T, baseURL, profile string) *phone {
	t.Helper()
	execPath := chromiumPath(t)

	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
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
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(screenWidth, screenHeight),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	p := &phone{t: t, ctx: tabCtx, baseURL: baseURL, profile: profile, download: t.TempDir()}

	// Console starts the browser, so a Chromium that cannot start fails here.
	messages := chromedp.Console(tabCtx)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.record(m)
		}
	}()
	var once sync.Once
	p.close = func() {
		once.Do(func() {
			// Cancel closes the browser the way a person does, so it writes
			// its storage to the profile before it exits.
			closeCtx, cancelClose := context.WithTimeout(tabCtx, 10*time.Second)
			defer cancelClose()
			if err := chromedp.Cancel(closeCtx); err != nil {
				t.Logf("close the browser: %v", err)
			}
			cancelTab()
			cancelAlloc()
			cancel()
			<-collected
		})
	}
	t.Cleanup(func() {
		p.close()
		p.report()
	})

	p.run("set up the phone",
		chromedp.EmulateViewport(screenWidth, screenHeight, chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
			_, err := cdp.Call(ctx, tab, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: pageTimezone})
			return err
		}),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			events := true
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: p.download, EventsEnabled: &events,
			})
			return err
		}),
	)
	return p
}

func (p *phone) record(m chromedp.ConsoleMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("%s %s", m.Type, m.Text)
	p.console = append(p.console, line)
	if m.IsException() {
		p.thrown = append(p.thrown, line)
	}
}

// report shows the page's console when the test failed, and fails the test
// for every uncaught exception.
func (p *phone) report() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t.Failed() && len(p.console) > 0 {
		p.t.Logf("browser console:\n%s", strings.Join(p.console, "\n"))
	}
	for _, line := range p.thrown {
		p.t.Errorf("page threw an uncaught exception: %s", line)
	}
}

// run performs browser actions, failing the test with a screenshot of the
// page when one fails.
func (p *phone) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail(what, err)
	}
}

// fail saves what the page shows and stops the test.
func (p *phone) fail(what string, err error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if shot, shotErr := chromedp.Run(ctx, chromedp.CaptureScreenshot()); shotErr == nil {
		path := filepath.Join(p.t.ArtifactDir(), "failure.png")
		if os.WriteFile(path, shot, 0o644) == nil {
			p.t.Logf("screenshot of the failure: %s", path)
		}
	}
	p.t.Fatalf("%s: %v", what, err)
}

// eval evaluates a JavaScript expression in the page, awaiting a promise.
func eval[T any](p *phone, what, expression string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise))
	if err != nil {
		p.fail(what, err)
	}
	return v
}

// waitFor polls a JavaScript expression until it is truthy.
func (p *phone) waitFor(what, expression string, timeout time.Duration) {
	p.t.Helper()
	// The context bounds the poll even where the page has no script context
	// for it to run in yet.
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expression,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		p.fail("wait until "+what, err)
	}
}

// screenshot saves the viewport as NAME.png in the directory named by
// VISITRELAY_SCREENSHOT_DIR, or else in the test's artifact directory: with
// go test -artifacts that is under the output directory's _artifacts
// folder, and otherwise a temporary directory removed after the test.
func (p *phone) screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.fail("take screenshot "+name, err)
	}
	dir := os.Getenv("VISITRELAY_SCREENSHOT_DIR")
	if dir == "" {
		dir = p.t.ArtifactDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatalf("create screenshot directory: %v", err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		p.t.Fatalf("write screenshot: %v", err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

// setOffline cuts or restores the tab's network, including the service
// worker's fetches, and waits until the page's navigator.onLine matches.
func (p *phone) setOffline(offline bool) {
	p.t.Helper()
	p.emulateOffline(offline)
	p.waitFor(fmt.Sprintf("navigator.onLine is %t", !offline), fmt.Sprintf("navigator.onLine === %t", !offline), pageWait)
}

// emulateOffline is setOffline for a tab that has no page loaded yet.
func (p *phone) emulateOffline(offline bool) {
	p.t.Helper()
	p.run(fmt.Sprintf("set offline to %t", offline), chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		_, err := cdp.Call(ctx, tab, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			EmulateOfflineServiceWorker: &offline,
			MatchedNetworkConditions: []*network.Conditions{
				{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1},
			},
		})
		if err != nil {
			return fmt.Errorf("emulate network conditions: %w", err)
		}
		_, err = cdp.Call(ctx, tab, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: offline, DownloadThroughput: -1, UploadThroughput: -1,
		})
		if err != nil {
			return fmt.Errorf("override network state: %w", err)
		}
		return nil
	}))
}

// Page steps, as a salesman takes them.

// open loads the page and waits until it shows the login or the app.
func (p *phone) open() {
	p.t.Helper()
	p.run("open the page", chromedp.Navigate(p.baseURL+"/"))
	p.waitForStart()
}

// reload reloads the page, as a salesman reopening it does.
func (p *phone) reload() {
	p.t.Helper()
	p.run("reload the page", chromedp.Reload())
	p.waitForStart()
}

func (p *phone) waitForStart() {
	p.t.Helper()
	p.waitFor("the page has started", `!document.getElementById('login-view').hidden || !document.getElementById('app-view').hidden`, pageWait)
}

// login logs a fixture user in with the login form, waits for the clinic
// list and the device catalog, and closes the storage hint if the browser
// showed it.
func (p *phone) login(username string) {
	p.t.Helper()
	eval[chromedp.Void](p, "clear the username", `document.getElementById('login-username').value = ''`)
	p.run("log in as "+username,
		chromedp.SendKeys(chromedp.CSS("#login-username"), username),
		chromedp.SendKeys(chromedp.CSS("#login-password"), relaytest.Password),
		chromedp.Click(chromedp.CSS("#login-submit")),
	)
	p.waitFor("the app shows the device catalog", `!document.getElementById('app-view').hidden && document.querySelectorAll('#proposed input').length >= 10`, pageWait)
	p.waitFor("the page has asked for persistent storage", `document.documentElement.dataset.storage`, pageWait)
	if eval[bool](p, "read the storage hint", `!document.getElementById('storage-hint').hidden`) {
		p.run("close the storage hint", chromedp.Click(chromedp.CSS("#storage-hint-close")))
	}
}

// waitOfflineReady waits until the service worker has cached the page.
func (p *phone) waitOfflineReady() {
	p.t.Helper()
	p.waitFor("the page is ready to start offline", `document.documentElement.dataset.offlineReady === 'true'`, pageWait)
}

// visitInput is what a salesman enters in the form.
type visitInput struct {
	clinicQuery     string // typed into the clinic field; it must match one clinic first
	clinicLabel     string // the clinic field's text once picked
	proposed, sold  []int  // device ids, tapped in this order
	when            string // datetime-local value; empty keeps the default, now
	clientNotes     string
	additionalNotes string
}

// fillVisit types a visit into the form: the clinic with the keyboard from
// the type-ahead list, the devices by tapping, the notes by typing.
func (p *phone) fillVisit(v visitInput) {
	p.t.Helper()
	p.selectTab("tab-form")
	p.run("type the clinic", chromedp.Click(chromedp.CSS("#clinic")), chromedp.SendKeys(chromedp.CSS("#clinic"), v.clinicQuery))
	p.waitFor("the clinic list matches "+v.clinicQuery, `document.querySelectorAll('#clinic-options li[data-index]').length > 0`, pageWait)
	p.run("pick the first clinic", chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.Enter))
	if got := eval[string](p, "read the clinic", `document.getElementById('clinic').value`); got != v.clinicLabel {
		p.t.Fatalf("clinic field shows %q after picking, want %q", got, v.clinicLabel)
	}

	for _, id := range v.proposed {
		p.run(fmt.Sprintf("propose device %d", id), chromedp.Click(chromedp.CSS(fmt.Sprintf(`#proposed input[value="%d"]`, id))))
	}
	for _, id := range v.sold {
		p.run(fmt.Sprintf("sell device %d", id), chromedp.Click(chromedp.CSS(fmt.Sprintf(`#sold input[value="%d"]`, id))))
	}
	if v.when != "" {
		// The date and time field is the browser's own picker, which has no
		// portable way to type into; set it the way the picker does.
		value, _ := json.Marshal(v.when)
		eval[chromedp.Void](p, "set the date and time", fmt.Sprintf(
			`(() => { const f = document.getElementById('visit-time'); f.value = %s; f.dispatchEvent(new Event('input', {bubbles: true})); })()`, value))
	}
	if v.clientNotes != "" {
		p.run("type the clinic notes", chromedp.SendKeys(chromedp.CSS("#client-notes"), v.clientNotes))
	}
	if v.additionalNotes != "" {
		p.run("type the additional notes", chromedp.SendKeys(chromedp.CSS("#additional-notes"), v.additionalNotes))
	}
}

// save taps Save and waits for the page to report the outcome.
func (p *phone) save() string {
	p.t.Helper()
	p.run("tap Save", chromedp.Click(chromedp.CSS("#save")))
	return p.waitSaved()
}

func (p *phone) waitSaved() string {
	p.t.Helper()
	p.waitFor("the save has finished", `!document.getElementById('save').disabled && document.getElementById('save-status').textContent !== ''`, pageWait)
	return eval[string](p, "read the save status", `document.getElementById('save-status').textContent`)
}

func (p *phone) selectTab(id string) {
	p.t.Helper()
	if eval[string](p, "read the selected tab", `document.querySelector('[role=tab][aria-selected=true]').id`) == id {
		return
	}
	p.run("open tab "+id, chromedp.Click(chromedp.CSS("#"+id)))
}

// listedVisits returns the visit ids the list shows in a delivery state:
// waiting, rejected, accepted or stored.
func (p *phone) listedVisits(state string) []string {
	p.t.Helper()
	return eval[[]string](p, "read the visit list", fmt.Sprintf(
		`[...document.querySelectorAll('#visit-list li[data-state=%q]')].map((li) => li.dataset.visitId)`, state))
}

// listedCount returns how many visits the list shows, in any state.
func (p *phone) listedCount() int {
	p.t.Helper()
	return eval[int](p, "count listed visits", `document.querySelectorAll('#visit-list li[data-visit-id]').length`)
}

// waitListed waits until the list shows n visits in a delivery state.
func (p *phone) waitListed(state string, n int, timeout time.Duration) []string {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("the list shows %d %s visits", n, state), fmt.Sprintf(
		`document.querySelectorAll('#visit-list li[data-state=%q]').length === %d`, state, n), timeout)
	return p.listedVisits(state)
}

// badge returns the text of the delivery badge.
func (p *phone) badge() string {
	p.t.Helper()
	return eval[string](p, "read the badge", `document.getElementById('badge').textContent`)
}

// waitStored waits until the visits table has exactly the given visit ids,
// each once, and returns the rows.
func waitStored(t *testing.T, e *relaytest.Env, ids []string) map[string]relaytest.StoredVisit {
	t.Helper()
	e.WaitFor(fmt.Sprintf("the database has %d visits", len(ids)), deliveryWait, func() bool {
		return e.CountVisits() >= len(ids)
	})
	stored := e.StoredVisits()
	if len(stored) != len(ids) {
		t.Fatalf("visits table has %d rows, want %d", len(stored), len(ids))
	}
	for _, id := range ids {
		if _, ok := stored[id]; !ok {
			t.Errorf("visit %s from the page is not in the database", id)
		}
	}
	return stored
}
