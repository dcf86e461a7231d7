package e2e

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/visitrelay/visitrelay/appliance"
	"github.com/visitrelay/visitrelay/gateway"
	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// scrape reads a /metrics page into its metric families.
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := opsGet(t, url, token)
	if code != http.StatusOK {
		t.Fatalf("scrape %s: status %d: %s", url, code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return families
}

// metricValue returns the value of the sample of name whose labels
// include the given name=value pairs, and whether there is one.
func metricValue(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	family, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range family.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func TestOpsMetricsFollowVisits(t *testing.T) {
	const n = 12
	e := relaytest.Start(t)
	tokens := loginAll(e)
	gatewayMetrics := func() map[string]*dto.MetricFamily {
		return scrape(t, e.URL+"/metrics", e.Gateway.AdminToken())
	}
	applianceMetrics := func() map[string]*dto.MetricFamily {
		return scrape(t, applianceURL(e, "/metrics"), "")
	}

	code, _ := opsGet(t, e.URL+"/metrics", "")
	if code != http.StatusUnauthorized {
		t.Errorf("gateway /metrics without the admin token: status %d, want 401", code)
	}
	code, _ = opsGet(t, e.URL+"/metrics", "wrong-token")
	if code != http.StatusUnauthorized {
		t.Errorf("gateway /metrics with a wrong token: status %d, want 401", code)
	}

	gwBefore, apBefore := gatewayMetrics(), applianceMetrics()
	visits := newVisits(rand.New(rand.NewPCG(6, 1)), n)
	postAll(t, e, tokens, visits, 4)
	// A retry of a stored visit gets 200 and is not accepted again.
	mustPost(t, e, tokens[visits[0].UserID], visits[0], http.StatusOK)
	login(t, e, "anna.berger", "not the password")
	e.WaitVisits(n, commitTimeout)
	waitCommitted(t, e, n)
	waitAppliance(t, e, "nothing pending", func(st appliance.Status) bool {
		return hop(st, "commit").Known && hop(st, "commit").Pending == 0 && hop(st, "source").Known && hop(st, "source").Pending == 0
	})
	// The gateway's gauges come from its status refresh, every 5 s.
	waitGateway(t, e, "the visits in its stream", func(st gateway.Status) bool {
		return st.Stream.Messages == n && st.Leafnodes == 1
	})
	gwAfter, apAfter := gatewayMetrics(), applianceMetrics()

	deltas := []struct {
		side          string
		before, after map[string]*dto.MetricFamily
		name          string
		labels        []string
		want          float64
	}{
		{"gateway", gwBefore, gwAfter, "visitrelay_visits_accepted_total", nil, n},
		{"gateway", gwBefore, gwAfter, "visitrelay_visit_posts_total", []string{"code", "201"}, n},
		{"gateway", gwBefore, gwAfter, "visitrelay_visit_posts_total", []string{"code", "200"}, 1},
		{"gateway", gwBefore, gwAfter, "visitrelay_login_failures_total", []string{"reason", "failed"}, 1},
		{"appliance", apBefore, apAfter, "visitrelay_visits_committed_total", nil, n},
		{"appliance", apBefore, apAfter, "visitrelay_duplicates_absorbed_total", nil, 0},
		{"appliance", apBefore, apAfter, "visitrelay_dead_letters_total", nil, 0},
		{"appliance", apBefore, apAfter, "visitrelay_database_errors_total", []string{"class", "unavailable"}, 0},
	}
	for _, d := range deltas {
		before, _ := metricValue(d.before, d.name, d.labels...)
		after, ok := metricValue(d.after, d.name, d.labels...)
		if !ok {
			t.Errorf("%s /metrics has no %s%v", d.side, d.name, d.labels)
			continue
		}
		if got := after - before; got != d.want {
			t.Errorf("%s %s%v rose by %v, want %v", d.side, d.name, d.labels, got, d.want)
		}
	}

	commits, _ := metricValue(apAfter, "visitrelay_commit_duration_seconds")
	commitsBefore, _ := metricValue(apBefore, "visitrelay_commit_duration_seconds")
	if commits <= commitsBefore {
		t.Errorf("visitrelay_commit_duration_seconds counted %v commits, before %v; want more", commits, commitsBefore)
	}
	gauges := []struct {
		side     string
		families map[string]*dto.MetricFamily
		name     string
		labels   []string
		want     float64
	}{
		{"appliance", apAfter, "visitrelay_pending_visits", []string{"hop", "commit"}, 0},
		{"appliance", apAfter, "visitrelay_pending_visits", []string{"hop", "source"}, 0},
		{"appliance", apAfter, "visitrelay_leafnode_connected", nil, 1},
		{"appliance", apAfter, "visitrelay_database_up", nil, 1},
		{"appliance", apAfter, "visitrelay_dead_letter_visits", nil, 0},
		{"gateway", gwAfter, "visitrelay_stream_messages", []string{"stream", "VISITS"}, n},
		{"gateway", gwAfter, "visitrelay_leafnode_connected", nil, 1},
		{"gateway", gwAfter, "visitrelay_build_info", []string{"binary", "gateway"}, 1},
		{"appliance", apAfter, "visitrelay_build_info", []string{"binary", "appliance"}, 1},
	}
	for _, g := range gauges {
		got, ok := metricValue(g.families, g.name, g.labels...)
		if !ok || got != g.want {
			t.Errorf("%s %s%v = %v (present %t), want %v", g.side, g.name, g.labels, got, ok, g.want)
		}
	}
	for _, name := range []string{"visitrelay_last_commit_timestamp_seconds", "visitrelay_store_used_bytes", "visitrelay_filesystem_available_bytes"} {
		if v, ok := metricValue(apAfter, name); !ok || v <= 0 {
			t.Errorf("appliance %s = %v (present %t), want a positive value", name, v, ok)
		}
	}
	for name := range apAfter {
		if strings.HasPrefix(name, "visitrelay_") && strings.Contains(name, "_milliseconds") {
			t.Errorf("appliance metric %s is not in base units", name)
		}
	}
}
