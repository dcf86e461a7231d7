package gateway

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/health"
)

func TestAdminCredential(t *testing.T) {
	basic := func(user, password string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	}
	tests := []struct {
		name          string
		header        string
		wantToken     string
		wantPresented bool
	}{
		{"bearer", "Bearer s3cret", "s3cret", true},
		{"basic with any user", basic("admin", "s3cret"), "s3cret", true},
		{"basic without user", basic("", "s3cret"), "s3cret", true},
		{"basic not base64", "Basic %%%", "", true},
		{"none", "", "", false},
		{"other scheme", "Digest abc", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, presented := adminCredential(tt.header)
			if token != tt.wantToken || presented != tt.wantPresented {
				t.Errorf("adminCredential(%q) = %q, %t; want %q, %t", tt.header, token, presented, tt.wantToken, tt.wantPresented)
			}
		})
	}
}

func TestAdminTokenCreatedOnce(t *testing.T) {
	t.Setenv("VISITRELAY_ADMIN_TOKEN", "")
	path := filepath.Join(t.TempDir(), "state", "admin.token")
	first, err := loadOrCreateAdminToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) < 16 {
		t.Errorf("new token %q is shorter than 16 characters", first)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("token file mode %o, want 600", perm)
	}
	again, err := loadOrCreateAdminToken(path)
	if err != nil || again != first {
		t.Errorf("second load = %q, %v; want the first token %q", again, err, first)
	}

	t.Setenv("VISITRELAY_ADMIN_TOKEN", "from-the-environment")
	if got, _ := loadOrCreateAdminToken(path); got != "from-the-environment" {
		t.Errorf("token with VISITRELAY_ADMIN_TOKEN set = %q", got)
	}
}

func TestRecentCounter(t *testing.T) {
	now := time.Date(2026, 5, 2, 7, 0, 0, 0, time.UTC)
	var c recentCounter
	c.add(now.Add(-2 * time.Hour))
	c.add(now.Add(-30 * time.Minute))
	c.add(now.Add(-time.Minute))
	c.add(now)
	hour, total := c.lastHour(now)
	if hour != 3 || total != 4 {
		t.Errorf("lastHour = %d, %d; want 3 in the last hour, 4 in all", hour, total)
	}
}

func TestGatewayWarnings(t *testing.T) {
	now := time.Date(2026, 5, 2, 7, 0, 0, 0, time.UTC)
	beat := now.Add(-5 * time.Second)
	healthy := func() Status {
		return Status{
			Stream:     StreamStatus{Known: true, MaxBytes: 1000, FilledPercent: 10, Replicas: 1, ReplicasCurrent: 1},
			Store:      StoreStatus{JetStreamHealthy: true, Writable: true, FilesystemUsedPercent: 40},
			Leafnodes:  1,
			SiteLinked: true,
			Appliances: []ApplianceStatus{{Site: "onprem", Connected: true, LastHeartbeat: &beat,
				State: health.Flowing, Summary: "all flowing"}},
		}
	}
	runway := 2.0
	oldVisit := now.Add(-time.Hour)
	tests := []struct {
		name  string
		edit  func(*Status)
		codes []string
		state health.State
	}{
		{"healthy", func(*Status) {}, nil, health.Flowing},
		{"no appliance", func(s *Status) {
			s.Leafnodes, s.SiteLinked, s.Appliances[0].Connected = 0, false, false
		}, []string{health.CodeNoAppliance}, health.Degraded},
		{"site linked to another node", func(s *Status) { s.Leafnodes = 0 }, nil, health.Flowing},
		{"cluster node lost", func(s *Status) {
			s.Stream.Replicas, s.Stream.ReplicasCurrent, s.Stream.ReplicasLost = 3, 2, []string{"gw3"}
		}, []string{health.CodeReplicasLost}, health.Degraded},
		{"cluster majority lost", func(s *Status) {
			s.Stream.Replicas, s.Stream.ReplicasCurrent, s.Stream.ReplicasLost = 3, 1, []string{"gw2", "gw3"}
		}, []string{health.CodeReplicasLost}, health.Stopped},
		{"late heartbeat", func(s *Status) { late := now.Add(-time.Minute); s.Appliances[0].LastHeartbeat = &late }, []string{health.CodeHeartbeatLate}, health.Degraded},
		{"site degraded", func(s *Status) {
			s.Appliances[0].State, s.Appliances[0].Summary = health.Degraded, "degraded: database unreachable since 06:59:00"
		}, []string{health.CodeApplianceDegraded}, health.Degraded},
		{"runway low", func(s *Status) { s.Runway.Days = &runway }, []string{health.CodeRunwayLow}, health.Degraded},
		{"stream above 80 %", func(s *Status) { s.Stream.FilledPercent = 85 }, []string{health.CodeStoreFull}, health.Degraded},
		{"stream full", func(s *Status) { s.Stream.FilledPercent = 100 }, []string{health.CodeStreamFull}, health.Stopped},
		{"visits not sourced", func(s *Status) { s.NotSourced.OldestAcceptedAt = &oldVisit }, []string{health.CodeVisitsDelayed}, health.Degraded},
		{"clock skew", func(s *Status) { s.Appliances[0].ClockSkewSeconds = -120 }, []string{health.CodeClockSkew}, health.Degraded},
		{"jetstream down", func(s *Status) { s.Stream.Known = false }, []string{health.CodeJetStreamDown}, health.Stopped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := healthy()
			tt.edit(&st)
			ws := gatewayWarnings(st, now, now)
			var codes []string
			for _, w := range ws {
				codes = append(codes, w.Code)
			}
			if fmt.Sprint(codes) != fmt.Sprint(tt.codes) {
				t.Errorf("warnings %v, want %v", codes, tt.codes)
			}
			if got := health.Judge(ws).State; got != tt.state {
				t.Errorf("verdict %q, want %q", got, tt.state)
			}
		})
	}

	st := healthy()
	st.Appliances[0].State, st.Appliances[0].Summary = health.Degraded, "degraded: database unreachable since 06:59:00"
	if got := health.Judge(gatewayWarnings(st, now, now)).Summary; got != "degraded: site onprem reports database unreachable since 06:59:00" {
		t.Errorf("summary %q", got)
	}
}
