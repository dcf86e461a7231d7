package relaytest

import (
	"context"
	"time"
)

// StoredVisit is one row of the visits table with its devices, as the
// appliance committed it.
type StoredVisit struct {
	VisitID         string
	UserID          string
	ClientID        string
	VisitedAt       time.Time
	ClientNotes     string
	AdditionalNotes string
	ProposedDevices []int64 // in the order the salesman chose them
	SoldDevices     []int64 // in the same order, only those sold
}

// StoredVisits returns every committed visit, keyed by visit id.
func (e *Env) StoredVisits() map[string]StoredVisit {
	e.t.Helper()
	rows, err := e.Pool.Query(context.Background(), `
SELECT v.visit_id::text, v.user_id, v.client_id, v.visited_at, v.client_notes, v.additional_notes,
       coalesce(array_agg(d.device_id ORDER BY d.position) FILTER (WHERE d.device_id IS NOT NULL), '{}'),
       coalesce(array_agg(d.device_id ORDER BY d.position) FILTER (WHERE d.sold), '{}')
FROM visits v LEFT JOIN visit_devices d USING (visit_id)
GROUP BY v.visit_id`)
	if err != nil {
		e.t.Fatalf("read stored visits: %v", err)
	}
	defer rows.Close()

	visits := map[string]StoredVisit{}
	for rows.Next() {
		var v StoredVisit
		err := rows.Scan(&v.VisitID, &v.UserID, &v.ClientID, &v.VisitedAt, &v.ClientNotes, &v.AdditionalNotes,
			&v.ProposedDevices, &v.SoldDevices)
		if err != nil {
			e.t.Fatalf("read stored visit: %v", err)
		}
		visits[v.VisitID] = v
	}
	if err := rows.Err(); err != nil {
		e.t.Fatalf("read stored visits: %v", err)
	}
	return visits
}
