package load

import (
	"sync"
	"time"

	"github.com/visitrelay/visitrelay/internal/visit"
)

// sinceSlack is taken off the earliest acceptance time when asking for the
// visit list, in case the gateway compares at a coarser precision than it
// reports or treats since as exclusive.
const sinceSlack = time.Second

// statusStored is the list status of a visit committed to the on-prem
// database. A visit still held in the cloud reads "accepted".
const statusStored = "stored"

// tracked is one sent visit and what became of it.
type tracked struct {
	visit visit.Visit
	// body is the JSON sent on every attempt, so retries and resends carry
	// the same visitId and the same content.
	body     []byte
	accepted bool
	// ackedAt is the local time the acknowledgement arrived.
	ackedAt time.Time
	// acceptedAt is the gateway's acceptance time, zero if it sent none.
	acceptedAt time.Time
	stored     bool
	// storedLatency runs from ackedAt to the first poll that saw the visit
	// stored.
	storedLatency time.Duration
}

// ledger holds the visits one salesman has sent. The salesman's poster
// and poller share it, so every access to a visit's state takes mu. The
// visit and body never change after add.
type ledger struct {
	mu     sync.Mutex
	visits []*tracked
}

func (l *ledger) add(t *tracked) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.visits = append(l.visits, t)
}

// accept records the acknowledgement of t and returns the time it arrived.
func (l *ledger) accept(t *tracked, acceptedAt time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	t.accepted, t.ackedAt, t.acceptedAt = true, time.Now(), acceptedAt
	return t.ackedAt
}

// listSince returns the since parameter that covers every accepted visit:
// the earliest acceptance time by the gateway's clock, less sinceSlack.
// A visit acknowledged without an acceptance time counts from its local
// acknowledgement less a minute, to absorb clock skew. It returns false
// while no visit is accepted.
func (l *ledger) listSince() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var since time.Time
	for _, t := range l.visits {
		at := t.acceptedAt
		if at.IsZero() {
			at = t.ackedAt.Add(-time.Minute)
		}
		if t.accepted && (since.IsZero() || at.Before(since)) {
			since = at
		}
	}
	return since.Add(-sinceSlack), !since.IsZero()
}

// markStored marks the accepted visits that a list shows stored. Their
// latency runs to now, taken under the lock so that it never precedes an
// acknowledgement recorded meanwhile. It is an upper bound, by up to one
// poll interval and one request.
func (l *ledger) markStored(entries []listedVisit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	byID := make(map[string]*tracked, len(l.visits))
	for _, t := range l.visits {
		byID[t.visit.VisitID] = t
	}
	for _, e := range entries {
		t := byID[e.VisitID]
		if t == nil || !t.accepted || t.stored || e.Status != statusStored {
			continue
		}
		t.stored = true
		t.storedLatency = now.Sub(t.ackedAt)
	}
}

// allStored reports whether every accepted visit reads stored.
func (l *ledger) allStored() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range l.visits {
		if t.accepted && !t.stored {
			return false
		}
	}
	return true
}

// countDuplicates counts the entries of a visit list that repeat a visitId,
// plus those that carry the clinic and dateTime of a sent visit under
// another visitId. It reads only the visits' fixed fields, so it needs no
// lock.
func countDuplicates(sent []*tracked, entries []listedVisit) int {
	idByVisit := make(map[string]string, len(sent))
	for _, t := range sent {
		idByVisit[clinicTimeKey(t.visit.ClientID, t.visit.DateTime)] = t.visit.VisitID
	}

	duplicates := 0
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if seen[e.VisitID] {
			duplicates++
			continue
		}
		seen[e.VisitID] = true
		id, ok := idByVisit[clinicTimeKey(e.ClientID, e.DateTime)]
		if ok && id != e.VisitID {
			duplicates++
		}
	}
	return duplicates
}

func clinicTimeKey(clientID string, dateTime time.Time) string {
	return clientID + "\x00" + dateTime.UTC().Format(time.RFC3339Nano)
}
