package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

func TestBrowserOfflineVisitsSentOnce(t *testing.T) {
	e := relaytest.Start(t)
	p := newPhone(t, e.URL)
	p.open()
	p.login("luca.rossi")
	p.waitOfflineReady()

	p.setOffline(true)
	p.waitFor("the offline banner shows", `!document.getElementById('offline-banner').hidden`, pageWait)
	p.screenshot("offline-banner")
	for _, clinic := range []string{"101", "102", "103"} {
		p.fillVisit(visitInput{
			clinicQuery: "praxis " + clinic,
			clinicLabel: "Praxis " + clinic + ", Graz",
			proposed:    []int{3, 4},
			sold:        []int{4},
			clientNotes: "recorded offline at " + clinic,
		})
		if status := p.save(); !strings.HasPrefix(status, "Visit saved on this phone.") {
			t.Fatalf("save offline: status %q, want saved on this phone", status)
		}
	}
	p.selectTab("tab-list")
	waiting := p.waitListed("waiting", 3, pageWait)
	if badge := p.badge(); !strings.HasPrefix(badge, "3 waiting") {
		t.Errorf("badge %q, want 3 waiting", badge)
	}

	// The reload comes from the service worker's cache: the tab is offline.
	p.reload()
	p.selectTab("tab-list")
	afterReload := p.waitListed("waiting", 3, pageWait)
	if diff := cmp.Diff(sorted(waiting), sorted(afterReload)); diff != "" {
		t.Errorf("waiting visits changed across the reload (-before +after):\n%s", diff)
	}
	if badge := p.badge(); !strings.HasPrefix(badge, "3 waiting") {
		t.Errorf("badge after reload %q, want 3 waiting", badge)
	}

	// A cold start: the salesman closes the browser and opens the page again,
	// still without a connection. The session and the outbox survive it.
	p.close()
	p = startPhone(t, e.URL, p.profile)
	p.emulateOffline(true)
	p.open()
	p.waitFor("the app shows without logging in", `!document.getElementById('app-view').hidden`, pageWait)
	p.waitFor("the page knows it is offline", `!navigator.onLine && !document.getElementById('offline-banner').hidden`, pageWait)
	p.selectTab("tab-list")
	afterRestart := p.waitListed("waiting", 3, pageWait)
	if diff := cmp.Diff(sorted(waiting), sorted(afterRestart)); diff != "" {
		t.Errorf("waiting visits changed across a browser restart (-before +after):\n%s", diff)
	}

	t.Run("export", func(t *testing.T) {
		p.run("tap Export waiting visits", chromedp.Click(chromedp.CSS("#export")))
		exported := readExport(t, p)
		if diff := cmp.Diff(sorted(waiting), sorted(exported)); diff != "" {
			t.Errorf("exported visit ids differ from the waiting ones (-waiting +exported):\n%s", diff)
		}
	})

	if n := e.CountVisits(); n != 0 {
		t.Errorf("database has %d visits while the phone is offline, want 0", n)
	}
	p.setOffline(false)
	p.waitListed("stored", 3, deliveryWait)
	waitStored(t, e, waiting)
	if badge := p.badge(); badge != "All visits sent" {
		t.Errorf("badge %q, want All visits sent", badge)
	}
}

// readExport waits for the page's export download and returns the visit
// ids in it.
func readExport(t *testing.T, p *phone) []string {
	t.Helper()
	var path string
	deadline := time.Now().Add(pageWait)
	for path == "" {
		matches, _ := filepath.Glob(filepath.Join(p.download, "visitrelay-waiting-*.json"))
		if len(matches) > 0 {
			path = matches[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no export in %s after %s", p.download, pageWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read export: %v", err)
	}
	var export struct {
		Visits []struct {
			VisitID string `json:"visitId"`
			State   string `json:"state"`
		} `json:"visits"`
	}
	if err := json.Unmarshal(data, &export); err != nil {
		t.Fatalf("decode export %s: %v", data, err)
	}
	ids := make([]string, 0, len(export.Visits))
	for _, v := range export.Visits {
		ids = append(ids, v.VisitID)
		if v.State != "waiting" {
			t.Errorf("exported visit %s has state %q, want waiting", v.VisitID, v.State)
		}
	}
	return ids
}

// unavailableProxy forwards the page and the API to the gateway, but
// responds to visit posts with 503 while failing is set, as the gateway
// does when its stream cannot take a visit.
type unavailableProxy struct {
	URL     string
	failing atomic.Bool
	refused atomic.Int64
}

func newUnavailableProxy(t *testing.T, gatewayURL string) *unavailableProxy {
	t.Helper()
	target, err := url.Parse(gatewayURL)
	if err != nil {
		t.Fatalf("parse gateway URL: %v", err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	p := &unavailableProxy{}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.failing.Load() || r.Method != http.MethodPost || r.URL.Path != "/api/v1/visits" {
			forward.ServeHTTP(w, r)
			return
		}
		p.refused.Add(1)
		// The gateway sends Retry-After: 30, and 1 s keeps the test short.
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"code": "unavailable", "message": "the gateway cannot store visits right now; keep the visit and retry with the same visitId"}`)
	}))
	t.Cleanup(server.Close)
	p.URL = server.URL
	return p
}

func TestBrowserWaitsThroughUnavailableGateway(t *testing.T) {
	e := relaytest.Start(t)
	proxy := newUnavailableProxy(t, e.URL)
	p := newPhone(t, proxy.URL)
	p.open()
	p.login("eva.novak")

	p.fillVisit(visitInput{clinicQuery: "praxis 105", clinicLabel: "Praxis 105, Graz", proposed: []int{1, 6}, sold: []int{6}})
	p.save()
	p.selectTab("tab-list")
	p.waitListed("stored", 1, deliveryWait)

	// With the appliance down, the next visit stays in the cloud.
	e.StopAppliance()
	p.fillVisit(visitInput{clinicQuery: "praxis 106", clinicLabel: "Praxis 106, Graz", proposed: []int{7}})
	p.save()
	p.selectTab("tab-list")
	p.waitListed("accepted", 1, pageWait)

	proxy.failing.Store(true)
	p.fillVisit(visitInput{clinicQuery: "praxis 107", clinicLabel: "Praxis 107, Graz", proposed: []int{8, 9}, clientNotes: "gateway busy"})
	if status := p.save(); !strings.HasPrefix(status, "Visit saved on this phone.") {
		t.Errorf("save while the gateway answers 503: status %q, want saved on this phone", status)
	}
	p.waitFor("the page explains why the visit waits", `!document.getElementById('problem-banner').hidden`, pageWait)
	p.selectTab("tab-list")
	waiting := p.waitListed("waiting", 1, pageWait)
	p.screenshot("list-three-states")

	e.WaitFor("the page retries on its own", pageWait, func() bool { return proxy.refused.Load() >= 3 })
	if got := p.listedVisits("waiting"); !slices.Equal(got, waiting) {
		t.Errorf("waiting visits after retries: %v, want %v", got, waiting)
	}

	proxy.failing.Store(false)
	e.StartAppliance()
	stored := p.waitListed("stored", 3, deliveryWait)
	if !slices.Contains(stored, waiting[0]) {
		t.Errorf("visit %s that waited through the 503s is not stored; stored: %v", waiting[0], stored)
	}
	waitStored(t, e, stored)
}

func TestBrowserExpiredSessionKeepsVisits(t *testing.T) {
	// Gateway.Start does not validate its config, so a TTL far below the 1m
	// that a config file may set keeps this test short.
	const ttl = 8 * time.Second
	e := relaytest.Start(t)
	e.StopGateway()
	e.GatewayConfig().Auth.TokenTTL = ttl
	e.StartGateway()

	p := newPhone(t, e.URL)
	p.open()
	loggedIn := time.Now()
	p.login("anna.berger")
	p.waitOfflineReady()

	p.setOffline(true)
	for _, clinic := range []string{"108", "109"} {
		p.fillVisit(visitInput{clinicQuery: "praxis " + clinic, clinicLabel: "Praxis " + clinic + ", Graz", proposed: []int{10}})
		p.save()
	}
	p.selectTab("tab-list")
	waiting := p.waitListed("waiting", 2, pageWait)

	time.Sleep(time.Until(loggedIn.Add(ttl + time.Second)))
	p.setOffline(false)
	p.waitFor("the page asks for the password again", `!document.getElementById('relogin-form').hidden`, pageWait)
	p.screenshot("session-expired")
	if got := p.listedVisits("waiting"); !slices.Equal(sorted(got), sorted(waiting)) {
		t.Errorf("waiting visits after the session expired: %v, want %v", got, waiting)
	}
	if n := e.CountVisits(); n != 0 {
		t.Errorf("database has %d visits before the new login, want 0", n)
	}

	p.run("enter the password again",
		chromedp.SendKeys(chromedp.CSS("#relogin-password"), relaytest.Password),
		chromedp.Click(chromedp.CSS(`#relogin-form button[type=submit]`)),
	)
	p.waitFor("the password prompt closes", `document.getElementById('relogin-form').hidden`, pageWait)
	waitStored(t, e, waiting)
	p.waitListed("waiting", 0, pageWait)
}

func sorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
