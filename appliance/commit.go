package appliance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/internal/visit"
)

// pending is one fetched visit on its way into the database.
type pending struct {
	env      visit.Envelope
	sequence uint64 // sequence in the site's visit stream

	// Set by commitVisits.
	committedAt time.Time
	duplicate   bool // the row existed already: a redelivery or a replay
}

// insertVisit inserts a visit and its devices unless a row with its visitId
// exists, and returns the row's commit time either way. The final SELECT
// sees a row committed before this statement began, so a redelivered visit
// reports the commit time of its first delivery.
const insertVisit = `
WITH inserted AS (
    INSERT INTO visits (visit_id, user_id, client_id, visited_at, client_notes,
                        additional_notes, accepted_at, stream_sequence, content_hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (visit_id) DO NOTHING
    RETURNING visit_id, committed_at, content_hash
), devices AS (
    INSERT INTO visit_devices (visit_id, device_id, position, sold)
    SELECT i.visit_id, d.id, d.position, d.id = ANY ($11::bigint[])
    FROM inserted i, unnest($10::bigint[]) WITH ORDINALITY AS d (id, position)
)
SELECT committed_at, content_hash, false FROM inserted
UNION ALL
SELECT committed_at, content_hash, true FROM visits
WHERE visit_id = $1 AND NOT EXISTS (SELECT 1 FROM inserted)`

// commitVisits inserts a batch in one transaction. Either every visit of
// the batch is in the database afterwards, or none of this call's inserts is.
func commitVisits(ctx context.Context, pool *pgxpool.Pool, items []*pending) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, p := range items {
			v := p.env
			batch.Queue(insertVisit, v.VisitID, v.UserID, v.ClientID, v.DateTime, v.ClientNotes,
				v.AdditionalNotes, v.AcceptedAt, int64(p.sequence), v.ContentHash,
				v.ProposedDevices, v.SoldDevices)
		}
		results := tx.SendBatch(ctx, batch)
		for _, p := range items {
			if err := scanCommit(results.QueryRow(), p); err != nil {
				results.Close()
				return fmt.Errorf("insert visit %s: %w", p.env.VisitID, err)
			}
		}
		return results.Close()
	})
}

func scanCommit(row pgx.Row, p *pending) error {
	var hash string
	err := row.Scan(&p.committedAt, &hash, &p.duplicate)
	if errors.Is(err, pgx.ErrNoRows) {
		// A concurrent committer inserted the row after this statement's
		// snapshot was taken: it is stored, by the other transaction.
		p.committedAt, p.duplicate = time.Now(), true
		return nil
	}
	if err != nil {
		return err
	}
	if hash != p.env.ContentHash {
		return fmt.Errorf("%w: the stored row has content hash %s, the message %s", errHashMismatch, hash, p.env.ContentHash)
	}
	return nil
}

// errHashMismatch means a visitId arrived again with other content. The gateway
// rejects such a post with 409, so this can only come from a replay of
// altered data; the first row stays and the visit goes to dead letters.
var errHashMismatch = errors.New("visit already stored with different content")

// isContentError reports whether the database rejected a visit for what it
// contains (a data exception or a broken constraint, such as an unknown
// clinic), as opposed to being unreachable or overloaded. Only content
// errors may send a visit to dead letters; anything else is waited out.
func isContentError(err error) bool {
	if errors.Is(err, errHashMismatch) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) < 2 {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23": // data exception, integrity constraint violation
		return true
	}
	return false
}

// rejectionReason describes a content error for a dead letter. PostgreSQL's
// detail names the offending value, such as the unknown clinic id, which is
// what the admin needs to fix it.
func rejectionReason(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Detail != "" {
		return fmt.Sprintf("%s (%s): %s", pgErr.Message, pgErr.Code, pgErr.Detail)
	}
	return err.Error()
}
