package appliance

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/internal/archive"
)

// ArchiveReplay counts what a replay of archive files did.
type ArchiveReplay struct {
	Read     int // records read
	Inserted int // visits that were missing and are now stored
	Present  int // visits already stored
	Rejected int // visits the database rejected, listed in Problems
	Damaged  int // lines that did not decode, listed in Problems
	Problems []string
}

// ReplayArchive commits the visits of the gateway's archive files through
// the committer's insert-if-absent, so that replaying a file twice, or a
// file whose visits are partly stored, stores each visit once. It is the
// recovery path after an outage longer than the cloud retention, or after
// the database was restored from an older backup.
func ReplayArchive(ctx context.Context, pool *pgxpool.Pool, paths []string) (ArchiveReplay, error) {
	var result ArchiveReplay
	for _, path := range paths {
		var batch []*pending
		var lines []int
		flush := func() error {
			err := replayBatch(ctx, pool, path, batch, lines, &result)
			batch, lines = batch[:0], lines[:0]
			return err
		}
		err := archive.Read(path, func(line int, r archive.Record, err error) error {
			result.Read++
			if err != nil {
				result.Damaged++
				result.Problems = append(result.Problems, fmt.Sprintf("%s line %d: %v", path, line, err))
				return nil
			}
			batch = append(batch, &pending{env: r.Visit, sequence: r.Sequence})
			lines = append(lines, line)
			if len(batch) == 100 {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return result, err
		}
	}
	return result, nil
}

// replayBatch commits a batch; when one visit spoils it, it commits them one
// by one so the rest are stored and the bad one is reported with its line.
func replayBatch(ctx context.Context, pool *pgxpool.Pool, path string, batch []*pending, lines []int, result *ArchiveReplay) error {
	if len(batch) == 0 {
		return nil
	}
	err := commitVisits(ctx, pool, batch)
	if err == nil {
		countReplayed(batch, result)
		return nil
	}
	if !isContentError(err) {
		return fmt.Errorf("replay %s: %w; nothing of this batch is stored, run the replay again when the database responds", path, err)
	}
	for i, p := range batch {
		one := []*pending{p}
		err := commitVisits(ctx, pool, one)
		switch {
		case err == nil:
			countReplayed(one, result)
		case isContentError(err):
			result.Rejected++
			result.Problems = append(result.Problems, fmt.Sprintf("%s line %d: visit %s: %s", path, lines[i], p.env.VisitID, rejectionReason(err)))
		default:
			return fmt.Errorf("replay %s line %d: %w", path, lines[i], err)
		}
	}
	return nil
}

func countReplayed(items []*pending, result *ArchiveReplay) {
	for _, p := range items {
		if p.duplicate {
			result.Present++
		} else {
			result.Inserted++
		}
	}
}

func writeArchiveReplay(w io.Writer, r ArchiveReplay) {
	fmt.Fprintf(w, "archive replay: read=%d inserted=%d already_stored=%d rejected=%d damaged=%d\n",
		r.Read, r.Inserted, r.Present, r.Rejected, r.Damaged)
	for _, p := range r.Problems {
		fmt.Fprintln(w, "  "+p)
	}
}
