package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

func TestBrowserRecordsVisitOnline(t *testing.T) {
	e := relaytest.Start(t)
	p := newPhone(t, e.URL)
	p.open()
	p.screenshot("login")
	p.login("anna.berger")

	p.fillVisit(visitInput{
		clinicQuery:     "praxis 104",
		clinicLabel:     "Praxis 104, Graz",
		proposed:        []int{5, 2, 9},
		sold:            []int{9, 5},
		when:            "2025-03-04T09:30",
		clientNotes:     "Dr. Keller wants a demo.\nCall back in März — 2 units?",
		additionalNotes: "Parking behind the building.",
	})
	eval[chromedp.Void](p, "scroll to the top", `window.scrollTo(0, 0)`)
	p.screenshot("form-top")
	eval[chromedp.Void](p, "scroll to the bottom", `window.scrollTo(0, document.body.scrollHeight)`)
	p.screenshot("form-bottom")
	if status := p.save(); status != "Visit saved and received by the cloud." {
		t.Errorf("save status %q, want the visit received by the cloud", status)
	}

	ids := p.waitListed("stored", 1, deliveryWait)
	stored := waitStored(t, e, ids)
	vienna, err := time.LoadLocation(pageTimezone)
	if err != nil {
		t.Fatalf("load time zone: %v", err)
	}
	want := relaytest.StoredVisit{
		VisitID:         ids[0],
		UserID:          "23",
		ClientID:        "104",
		VisitedAt:       time.Date(2025, 3, 4, 9, 30, 0, 0, vienna),
		ClientNotes:     "Dr. Keller wants a demo.\nCall back in März — 2 units?",
		AdditionalNotes: "Parking behind the building.",
		ProposedDevices: []int64{5, 2, 9},
		SoldDevices:     []int64{5, 9}, // sold devices keep the order they were proposed in
	}
	sameInstant := cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
	if diff := cmp.Diff(want, stored[ids[0]], sameInstant); diff != "" {
		t.Errorf("stored visit differs from what was typed (-typed +stored):\n%s", diff)
	}
	if badge := p.badge(); badge != "All visits sent" {
		t.Errorf("badge %q, want All visits sent", badge)
	}

	t.Run("same devices as last visit", func(t *testing.T) {
		p.fillVisit(visitInput{clinicQuery: "praxis 104", clinicLabel: "Praxis 104, Graz"})
		p.waitFor("the shortcut is offered", `!document.getElementById('same-devices').hidden`, pageWait)
		p.run("tap the shortcut", chromedp.Click(chromedp.CSS("#same-devices")))
		proposed := eval[[]int](p, "read proposed devices", `[...document.querySelectorAll('#proposed input:checked')].map((i) => +i.value)`)
		if diff := cmp.Diff([]int{2, 5, 9}, proposed); diff != "" {
			t.Errorf("proposed devices after the shortcut (-want +got):\n%s", diff)
		}
		sold := eval[[]int](p, "read sold devices", `[...document.querySelectorAll('#sold input:checked')].map((i) => +i.value)`)
		if len(sold) != 0 {
			t.Errorf("sold devices after the shortcut: %v, want none", sold)
		}
	})
}

func TestBrowserDoubleTapSavesOnce(t *testing.T) {
	e := relaytest.Start(t)
	p := newPhone(t, e.URL)
	p.open()
	p.login("anna.berger")
	p.waitOfflineReady()

	var stored []string
	for i, offline := range []bool{false, true} {
		p.setOffline(offline)
		p.fillVisit(visitInput{clinicQuery: "praxis 101", clinicLabel: "Praxis 101, Graz", proposed: []int{1}})
		p.run("double-tap Save", chromedp.DoubleClick(chromedp.CSS("#save")))
		p.waitSaved()
		p.selectTab("tab-list")
		if listed := p.listedCount(); listed != i+1 {
			t.Fatalf("offline %t: the list shows %d visits after a double tap, want %d", offline, listed, i+1)
		}
		p.setOffline(false)
		stored = p.waitListed("stored", i+1, deliveryWait)
	}
	waitStored(t, e, stored)
}

func TestBrowserSoldOnlyAmongProposed(t *testing.T) {
	e := relaytest.Start(t)
	p := newPhone(t, e.URL)
	p.open()
	p.login("anna.berger")

	p.fillVisit(visitInput{clinicQuery: "praxis 110", clinicLabel: "Praxis 110, Graz", proposed: []int{1, 2}, sold: []int{2}})
	soldChoices := func() []int {
		return eval[[]int](p, "read the sold choices", `[...document.querySelectorAll('#sold input')].map((i) => +i.value)`)
	}
	if diff := cmp.Diff([]int{1, 2}, soldChoices()); diff != "" {
		t.Errorf("sold choices with devices 1 and 2 proposed (-want +got):\n%s", diff)
	}
	p.run("withdraw device 2", chromedp.Click(chromedp.CSS(`#proposed input[value="2"]`)))
	if diff := cmp.Diff([]int{1}, soldChoices()); diff != "" {
		t.Errorf("sold choices after withdrawing device 2 (-want +got):\n%s", diff)
	}
	if checked := eval[int](p, "count sold devices", `document.querySelectorAll('#sold input:checked').length`); checked != 0 {
		t.Errorf("%d sold devices checked after withdrawing device 2, want 0", checked)
	}

	t.Run("API rejects", func(t *testing.T) {
		resp := e.Do(http.MethodPost, "/api/v1/visits", e.Login("anna.berger"), map[string]any{
			"visitId": uuid.NewString(), "clientId": "110", "userId": "23",
			"proposedDevices": []int{1}, "soldDevices": []int{3}, "dateTime": time.Now().Format(time.RFC3339),
		})
		if resp.Status != http.StatusBadRequest {
			t.Fatalf("sold device not proposed: status %d, want 400: %s", resp.Status, resp.Body)
		}
		if !strings.Contains(string(resp.Body), `"field":"soldDevices"`) {
			t.Errorf("answer does not name soldDevices: %s", resp.Body)
		}
	})

	t.Run("rejected visit kept and fixed", func(t *testing.T) {
		// An outbox entry that breaks the rule, as an older page could have
		// saved it: the gateway rejects it, and the page keeps it for fixing.
		visitID := uuid.NewString()
		payload, _ := json.Marshal(map[string]any{
			"visitId": visitID, "clientId": "110", "userId": "23", "proposedDevices": []int{1}, "soldDevices": []int{3},
			"dateTime": time.Now().Add(-time.Hour).Format(time.RFC3339), "clientNotes": "", "additionalNotes": "",
		})
		item, _ := json.Marshal(map[string]any{
			"visitId": visitID, "userId": "23", "body": string(payload), "savedAt": time.Now().UTC().Format(time.RFC3339), "state": "waiting",
		})
		eval[chromedp.Void](p, "put a visit into the outbox", fmt.Sprintf(`(async () => {
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open('visitrelay');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const tx = db.transaction('outbox', 'readwrite');
  tx.objectStore('outbox').put(%s);
  await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
  db.close();
})()`, item))
		p.reload()
		p.selectTab("tab-list")
		p.waitListed("rejected", 1, pageWait)
		problem := eval[string](p, "read the problem", `document.querySelector('#visit-list li[data-state=rejected]').textContent`)
		if !strings.Contains(problem, "device 3 must also be in proposedDevices") {
			t.Errorf("rejected visit shows %q, want the gateway's message about device 3", problem)
		}
		if badge := p.badge(); !strings.Contains(badge, "1 not accepted") {
			t.Errorf("badge %q, want 1 not accepted", badge)
		}

		p.run("tap Fix", chromedp.Click(chromedp.CSS(`#visit-list li[data-state=rejected] button`)))
		fieldError := eval[string](p, "read the sold devices error", `document.getElementById('soldDevices-error').textContent`)
		if !strings.Contains(fieldError, "device 3 must also be in proposedDevices") {
			t.Errorf("sold devices error %q, want the gateway's message", fieldError)
		}
		if status := p.save(); status != "Visit saved and received by the cloud." {
			t.Errorf("save of the fixed visit: status %q", status)
		}
		stored := waitStored(t, e, []string{visitID})
		if diff := cmp.Diff([]int64{}, stored[visitID].SoldDevices); diff != "" {
			t.Errorf("sold devices of the fixed visit (-want +got):\n%s", diff)
		}
	})
}
