package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/visitrelay/visitrelay/appliance"
	"github.com/visitrelay/visitrelay/internal/archive"
	"github.com/visitrelay/visitrelay/internal/pgtest"
	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// The on-prem database restored from a dump older than the latest visits:
// a replay of the gateway's archive brings every visit back, none twice.
func TestArchiveReplayAfterRestore(t *testing.T) {
	ctx := context.Background()
	binDir, err := pgtest.FindBinDir()
	if err != nil {
		t.Fatalf("find PostgreSQL tools: %v", err)
	}
	e := relaytest.Start(t)
	token := e.Login("luca.rossi")

	var posted []string
	postVisits := func(n int) {
		t.Helper()
		for range n {
			id := uuid.NewString()
			body := map[string]any{"visitId": id, "clientId": "104", "userId": "7",
				"proposedDevices": []int{2, 3}, "soldDevices": []int{3},
				"dateTime": time.Now().UTC().Format(time.RFC3339), "clientNotes": "Grüße"}
			if r := e.Do(http.MethodPost, "/api/v1/visits", token, body); r.Status != http.StatusCreated {
				t.Fatalf("post: status %d: %s", r.Status, r.Body)
			}
			posted = append(posted, id)
		}
	}
	postVisits(10)
	e.WaitVisits(10, 30*time.Second)

	dump := filepath.Join(t.TempDir(), "yesterday.dump")
	runTool(t, filepath.Join(binDir, "pg_dump"), "-Fc", "--no-owner", "-f", dump, e.DSN)
	postVisits(10)
	e.WaitVisits(20, 30*time.Second)

	archiveDir := filepath.Join(e.GatewayConfig().StateDir, "archive")
	var files []string
	e.WaitFor("the archive holds all 20 visits", 30*time.Second, func() bool {
		files, _ = filepath.Glob(filepath.Join(archiveDir, "visits-*.jsonl.gz"))
		return countArchived(t, files) >= 20
	})

	e.StopAppliance()
	runTool(t, filepath.Join(binDir, "pg_restore"), "--clean", "--if-exists", "--no-owner", "-d", e.DSN, dump)
	if got := e.CountVisits(); got != 10 {
		t.Fatalf("%d rows after restoring the older dump, want 10", got)
	}
	e.StartAppliance()

	result, err := appliance.ReplayArchive(ctx, e.Pool, files)
	if err != nil {
		t.Fatalf("replay archive: %v", err)
	}
	if result.Inserted != 10 || result.Rejected != 0 || result.Damaged != 0 {
		t.Errorf("replay result %+v, want 10 inserted and no problems", result)
	}
	if diff := cmp.Diff(sortedIDs(posted), storedVisitIDs(t, e)); diff != "" {
		t.Errorf("stored visit ids differ from the posted ones (-want +got):\n%s", diff)
	}

	again, err := appliance.ReplayArchive(ctx, e.Pool, files)
	if err != nil {
		t.Fatalf("second replay: %v", err)
	}
	if again.Inserted != 0 {
		t.Errorf("second replay inserted %d visits, want 0", again.Inserted)
	}
	if got := e.CountVisits(); got != 20 {
		t.Errorf("%d rows after two replays, want 20", got)
	}
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", filepath.Base(name), err, out)
	}
}

func countArchived(t *testing.T, files []string) int {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range files {
		_ = archive.Read(f, func(_ int, r archive.Record, err error) error {
			if err == nil {
				seen[r.Visit.VisitID] = true
			}
			return nil
		})
	}
	return len(seen)
}

func storedVisitIDs(t *testing.T, e *relaytest.Env) []string {
	t.Helper()
	rows, err := e.Pool.Query(context.Background(), "SELECT visit_id::text FROM visits ORDER BY visit_id")
	if err != nil {
		t.Fatalf("read visit ids: %v", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func sortedIDs(ids []string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	return out
}
