package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visitrelay/visitrelay/appliance"
	"github.com/visitrelay/visitrelay/gateway"
	"github.com/visitrelay/visitrelay/internal/relaytest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// opsWait bounds a wait for a status figure to change. It spans a
// heartbeat (10 s) plus a gateway refresh (5 s) with room to spare.
const opsWait = 40 * time.Second

// opsGet sends a GET with an optional bearer token and returns the status
// and body.
func opsGet(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("build request for %s: %v", url, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s: %v", url, err)
	}
	return resp.StatusCode, body
}

// applianceURL returns the URL of path on the appliance's status listener.
func applianceURL(e *relaytest.Env, path string) string {
	return "http://" + e.Appliance.StatusAddr() + path
}

func applianceStatus(t *testing.T, e *relaytest.Env) (appliance.Status, []byte) {
	t.Helper()
	code, body := opsGet(t, applianceURL(e, "/status.json"), "")
	if code != http.StatusOK {
		t.Fatalf("appliance /status.json: status %d: %s", code, body)
	}
	var st appliance.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("decode appliance /status.json: %v", err)
	}
	return st, body
}

func gatewayStatus(t *testing.T, e *relaytest.Env) (gateway.Status, []byte) {
	t.Helper()
	code, body := opsGet(t, e.URL+"/status.json", e.Gateway.AdminToken())
	if code != http.StatusOK {
		t.Fatalf("gateway /status.json: status %d: %s", code, body)
	}
	var st gateway.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("decode gateway /status.json: %v", err)
	}
	return st, body
}

// waitAppliance polls the appliance's /status.json until cond holds.
func waitAppliance(t *testing.T, e *relaytest.Env, what string, cond func(appliance.Status) bool) appliance.Status {
	t.Helper()
	var st appliance.Status
	e.WaitFor("the appliance status shows "+what, opsWait, func() bool {
		st, _ = applianceStatus(t, e)
		return cond(st)
	})
	return st
}

// waitGateway polls the gateway's /status.json until cond holds.
func waitGateway(t *testing.T, e *relaytest.Env, what string, cond func(gateway.Status) bool) gateway.Status {
	t.Helper()
	var st gateway.Status
	e.WaitFor("the gateway status shows "+what, opsWait, func() bool {
		st, _ = gatewayStatus(t, e)
		return cond(st)
	})
	return st
}

func hop(st appliance.Status, name string) appliance.HopStatus {
	for _, h := range st.Hops {
		if h.Name == name {
			return h
		}
	}
	return appliance.HopStatus{}
}

// jsonShape replaces every value of a decoded JSON document by its type,
// and every array by its first element's shape, so that a golden file
// pins the keys and types of /status.json and not its values.
func jsonShape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		shape := make(map[string]any, len(x))
		for k, e := range x {
			shape[k] = jsonShape(e)
		}
		return shape
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{jsonShape(x[0])}
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("unexpected %T", v)
}

// checkShape compares the shape of a JSON body with testdata/NAME, or
// rewrites the file with -update.
func checkShape(t *testing.T, name string, body []byte) {
	t.Helper()
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	got, err := json.MarshalIndent(jsonShape(doc), "", "  ")
	if err != nil {
		t.Fatalf("encode shape of %s: %v", name, err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("update golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./e2e -run %s -update to create it): %v", t.Name(), err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("shape of %s differs from %s (-want +got); if the change is meant, rerun with -update:\n%s", name, path, diff)
	}
}

// TestOpsStatusJSONShape pins the keys and types of both /status.json
// documents in a settled, healthy state, in which every optional figure
// that a healthy system has is known.
func TestOpsStatusJSONShape(t *testing.T) {
	e := relaytest.Start(t)
	tokens := loginAll(e)
	postAll(t, e, tokens, newVisits(rand.New(rand.NewPCG(5, 1)), 6), 3)
	e.WaitVisits(6, commitTimeout)

	waitAppliance(t, e, "everything committed, heartbeat answered", func(st appliance.Status) bool {
		return st.Verdict.State == "flowing" && st.Commits.Committed == 6 && st.Commits.LastCommitAt != nil &&
			hop(st, "commit").Known && hop(st, "commit").Pending == 0 && hop(st, "source").Known && hop(st, "source").Pending == 0 &&
			st.Cloud.LastHeartbeatReply != nil && st.Cloud.RunwayDays != nil && st.Database.SchemaVersion != nil &&
			len(st.History.Samples) > 0
	})
	waitGateway(t, e, "the appliance's commits and a runway", func(st gateway.Status) bool {
		return st.Verdict.State == "flowing" && len(st.Appliances) == 1 && st.Appliances[0].LastCommitAt != nil &&
			st.NotSourced.Known && st.NotSourced.Pending == 0 && st.Runway.Days != nil && st.Visits.AcceptedToday != nil
	})

	_, body := applianceStatus(t, e)
	checkShape(t, "ops_appliance_status.shape.json", body)
	_, body = gatewayStatus(t, e)
	checkShape(t, "ops_gateway_status.shape.json", body)
}

func TestOpsStatusCountsVisits(t *testing.T) {
	e := relaytest.Start(t)
	tokens := loginAll(e)
	visits := newVisits(rand.New(rand.NewPCG(5, 2)), 9)
	postAll(t, e, tokens, visits, 3)
	e.WaitVisits(9, commitTimeout)

	st := waitAppliance(t, e, "nine visits committed", func(st appliance.Status) bool {
		return st.Commits.Committed == 9 && hop(st, "commit").Pending == 0
	})
	if st.Verdict.State != "flowing" || st.Verdict.Summary != "all flowing" {
		t.Errorf("appliance verdict %q %q, want flowing, all flowing", st.Verdict.State, st.Verdict.Summary)
	}
	if !st.Leafnode.Connected || st.Leafnode.Reconnects != 0 {
		t.Errorf("appliance leafnode connected %t with %d reconnects, want up with 0", st.Leafnode.Connected, st.Leafnode.Reconnects)
	}
	if !st.Database.Reachable {
		t.Errorf("appliance database unreachable: %s", st.Database.Error)
	}
	if st.Cloud.StreamMessages != 9 {
		t.Errorf("appliance sees %d messages in the cloud stream, want 9", st.Cloud.StreamMessages)
	}

	gst := waitGateway(t, e, "nine visits today and the site connected", func(st gateway.Status) bool {
		return st.Visits.AcceptedToday != nil && *st.Visits.AcceptedToday == 9 && len(st.Appliances) == 1 && st.Appliances[0].Connected
	})
	if got := gst.Visits.AcceptedThisHour; got == nil || *got != 9 {
		t.Errorf("gateway visits this hour %v, want 9", got)
	}
	if gst.Stream.Messages != 9 {
		t.Errorf("gateway stream holds %d visits, want 9", gst.Stream.Messages)
	}
	if gst.Appliances[0].Site != "onprem" {
		t.Errorf("gateway lists appliance of site %q, want onprem", gst.Appliances[0].Site)
	}
	if gst.Leafnodes != 1 {
		t.Errorf("gateway counts %d leafnode links, want 1", gst.Leafnodes)
	}
}

func TestOpsTraceCommittedVisit(t *testing.T) {
	e := relaytest.Start(t)
	tokens := loginAll(e)
	visits := newVisits(rand.New(rand.NewPCG(5, 3)), 1)
	postAll(t, e, tokens, visits, 1)
	e.WaitVisits(1, commitTimeout)
	id := visits[0].VisitID

	var tr appliance.Trace
	e.WaitFor("the trace shows the receipt", opsWait, func() bool {
		code, body := opsGet(t, applianceURL(e, "/trace.json?visit="+id), "")
		if code != http.StatusOK {
			t.Fatalf("/trace.json: status %d: %s", code, body)
		}
		if err := json.Unmarshal(body, &tr); err != nil {
			t.Fatalf("decode trace: %v", err)
		}
		return tr.Stage == appliance.StageCommitted && strings.Contains(tr.Summary, "receipt sent")
	})
	wantStates := map[string]string{
		"accepted": appliance.StepDone, "sourced": appliance.StepDone, "committed": appliance.StepDone,
		"receipt": appliance.StepDone, "dead_letter": appliance.StepNo, "discarded": appliance.StepNo,
	}
	gotStates := map[string]string{}
	for _, s := range tr.Steps {
		gotStates[s.Name] = s.State
	}
	if diff := cmp.Diff(wantStates, gotStates); diff != "" {
		t.Errorf("trace step states differ (-want +got):\n%s", diff)
	}

	code, page := opsGet(t, applianceURL(e, "/trace?visit="+id), "")
	if code != http.StatusOK || !bytes.Contains(page, []byte(`data-stage="committed"`)) {
		t.Errorf("trace page: status %d, want 200 with the committed stage", code)
	}
	code, body := opsGet(t, applianceURL(e, "/trace.json?visit=not-a-uuid"), "")
	if code != http.StatusBadRequest {
		t.Errorf("trace of an invalid id: status %d, want 400: %s", code, body)
	}
	unknown := "0b6f2f5e-8d52-4f4e-9a61-2f1c3f2d9c10"
	code, body = opsGet(t, applianceURL(e, "/trace.json?visit="+unknown), "")
	if code != http.StatusOK || !bytes.Contains(body, []byte(`"stage": "not_found"`)) {
		t.Errorf("trace of an unknown id: status %d, want 200 with stage not_found: %s", code, body)
	}

	out := runTraceCommand(t, e, id)
	for _, want := range []string{"visit " + id + ": committed to the database at", "receipt sent", "sourced on-prem"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace command output lacks %q:\n%s", want, out)
		}
	}
}

// runTraceCommand runs visitrelay-appliance trace against the running
// appliance with a config file like the appliance's.
func runTraceCommand(t *testing.T, e *relaytest.Env, id string) string {
	t.Helper()
	cfg := e.ApplianceConfig()
	path := filepath.Join(t.TempDir(), "appliance.yaml")
	text := fmt.Sprintf("version: 1\nstateDir: %q\ndatabase:\n  url: %q\nnats:\n  gatewayURLs: [%q]\n",
		cfg.StateDir, cfg.Database.URL, cfg.NATS.GatewayURLs[0])
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatalf("write trace config: %v", err)
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := appliance.Run(ctx, []string{"trace", "-config", path, id},
		appliance.IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("visitrelay-appliance trace: %v\n%s", err, stderr.String())
	}
	return stdout.String()
}

func TestOpsDeadLetterShownAndTraced(t *testing.T) {
	ctx := context.Background()
	e := relaytest.Start(t)
	e.StopAppliance()
	e.ApplianceConfig().Committer.MaxAttempts = 1
	token := e.Login("anna.berger")

	// A clinic deleted on-prem after the gateway accepted a visit for it
	// makes the database reject the visit for its content.
	rejected := newVisit(rand.New(rand.NewPCG(5, 4)), "23")
	rejected.ClientID = "110"
	mustPost(t, e, token, rejected, http.StatusCreated)
	if _, err := e.Pool.Exec(ctx, "DELETE FROM clients WHERE id = '110'"); err != nil {
		t.Fatalf("delete clinic 110: %v", err)
	}
	e.StartAppliance()

	st := waitAppliance(t, e, "one dead letter", func(st appliance.Status) bool {
		return st.DeadLetters.Count == 1 && len(st.DeadLetters.List) == 1
	})
	dl := st.DeadLetters.List[0]
	if dl.VisitID != rejected.VisitID {
		t.Errorf("dead letter lists visit %s, want %s", dl.VisitID, rejected.VisitID)
	}
	if !strings.Contains(dl.Reason, "(client_id)=(110)") {
		t.Errorf("dead letter reason %q does not name clinic 110", dl.Reason)
	}
	if dl.ClientID != "110" || dl.UserID != "23" {
		t.Errorf("dead letter of clinic %q and salesman %q, want 110 and 23", dl.ClientID, dl.UserID)
	}
	if st.Verdict.State != "degraded" || !strings.Contains(st.Verdict.Summary, "1 dead letters waiting") {
		t.Errorf("verdict %q %q, want degraded naming the dead letter", st.Verdict.State, st.Verdict.Summary)
	}
	if h := hop(st, "dead_letters"); h.Pending != 1 || h.OldestAgeSeconds == nil {
		t.Errorf("dead-letter hop %+v, want 1 visit with an age", h)
	}

	code, body := opsGet(t, applianceURL(e, "/trace.json?visit="+rejected.VisitID), "")
	var tr appliance.Trace
	if err := json.Unmarshal(body, &tr); err != nil || code != http.StatusOK {
		t.Fatalf("trace of the dead letter: status %d, %v: %s", code, err, body)
	}
	if tr.Stage != appliance.StageDeadLetter || !strings.Contains(tr.Summary, "(client_id)=(110)") {
		t.Errorf("trace stage %q summary %q, want dead_letter naming clinic 110", tr.Stage, tr.Summary)
	}

	code, page := opsGet(t, applianceURL(e, "/"), "")
	for _, want := range []string{rejected.VisitID, "deadletters replay VISIT_ID", "command line only"} {
		if code != http.StatusOK || !bytes.Contains(page, []byte(want)) {
			t.Errorf("status page (status %d) lacks %q", code, want)
		}
	}
	families := scrape(t, applianceURL(e, "/metrics"), "")
	for name, want := range map[string]float64{"visitrelay_dead_letters_total": 1, "visitrelay_dead_letter_visits": 1} {
		if got, ok := metricValue(families, name); !ok || got != want {
			t.Errorf("%s = %v (present %t), want %v", name, got, ok, want)
		}
	}
	// The batch fails once, and then the visit alone, so at least one.
	if got, _ := metricValue(families, "visitrelay_database_errors_total", "class", "content"); got < 1 {
		t.Errorf("visitrelay_database_errors_total{class=content} = %v, want at least 1", got)
	}
}
