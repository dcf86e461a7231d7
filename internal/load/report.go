package load

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// salesmanResult counts what happened to one salesman's visits.
type salesmanResult struct {
	sent, accepted, rejected, unacknowledged int
	resent, resendsFailed, retries           int
	stored, duplicates                       int
	postLatencies, storedLatencies           []time.Duration
}

// Latency summarizes durations by nearest-rank percentiles.
type Latency struct {
	Count int
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// Report is the result of one load run. Counts are of distinct visits
// unless a field's comment states otherwise.
type Report struct {
	// Seed is the seed the run used. The same seed generates the same visits.
	Seed int64
	// Salesmen is the number of salesmen that ran, including those that
	// could not log in.
	Salesmen int
	// Visits is the number of visits each salesman was to post.
	Visits int
	// Elapsed runs from the start of the run to the end of the last wait.
	Elapsed time.Duration
	// Sent is the number of visits posted at least once.
	Sent int
	// Accepted is the number of visits the gateway acknowledged with 201 or 200.
	Accepted int
	// Rejected is the number of visits rejected for good with a 4xx other than 429.
	Rejected int
	// Unacknowledged is the number of visits whose attempts ran out on 5xx,
	// 429 or network errors. Visits cut off by the end of the run's context
	// are in neither Rejected nor Unacknowledged.
	Unacknowledged int
	// Retries is the number of attempts beyond the first, over all posts.
	Retries int
	// Resent is the number of accepted visits posted a second time over a
	// fresh connection, and ResendsFailed those of them not acknowledged.
	Resent        int
	ResendsFailed int
	// Waited is true when the run polled the visit lists (WaitStored > 0).
	// Stored, Duplicates and Lost are measured only then.
	Waited bool
	// PollInterval is the pause between polls, which bounds the error of
	// StoredLatency.
	PollInterval time.Duration
	// Stored is the number of accepted visits seen with status stored.
	Stored int
	// Duplicates is the number of list entries that repeat a visitId or
	// carry the clinic and dateTime of a sent visit under another visitId.
	Duplicates int
	// Lost is Accepted minus Stored when Waited, else 0.
	Lost int
	// PostLatency runs from a visit's first attempt to its acknowledgement,
	// retries included.
	PostLatency Latency
	// StoredLatency runs from a visit's acknowledgement to the first poll
	// that saw it stored. It is an upper bound, by up to one poll interval
	// and one request.
	StoredLatency Latency
}

func newReport(o Options, results []salesmanResult, elapsed time.Duration) Report {
	r := Report{
		Seed:         o.Seed,
		Salesmen:     len(results),
		Visits:       o.Visits,
		Elapsed:      elapsed,
		Waited:       o.WaitStored > 0,
		PollInterval: o.PollInterval,
	}
	var posts, stores []time.Duration
	for _, s := range results {
		r.Sent += s.sent
		r.Accepted += s.accepted
		r.Rejected += s.rejected
		r.Unacknowledged += s.unacknowledged
		r.Retries += s.retries
		r.Resent += s.resent
		r.ResendsFailed += s.resendsFailed
		r.Stored += s.stored
		r.Duplicates += s.duplicates
		posts = append(posts, s.postLatencies...)
		stores = append(stores, s.storedLatencies...)
	}
	if r.Waited {
		r.Lost = r.Accepted - r.Stored
	}
	r.PostLatency = summarizeLatency(posts)
	r.StoredLatency = summarizeLatency(stores)
	return r
}

// Check returns an error wrapping ErrCheckFailed when the run waited for
// its visits and found one lost, duplicated, rejected or never acknowledged.
// Without the wait it returns nil, because nothing was checked.
func (r Report) Check() error {
	if !r.Waited {
		return nil
	}
	if r.Lost == 0 && r.Duplicates == 0 && r.Rejected == 0 && r.Unacknowledged == 0 && r.ResendsFailed == 0 {
		return nil
	}
	return fmt.Errorf("%w: lost=%d duplicates=%d rejected=%d unacknowledged=%d resends_failed=%d",
		ErrCheckFailed, r.Lost, r.Duplicates, r.Rejected, r.Unacknowledged, r.ResendsFailed)
}

// Write prints the report as text. Its last line has the fixed form
// "visits: sent=N accepted=N stored=N duplicates=N lost=N" for scripts.
func (r Report) Write(w io.Writer) error {
	storedLine := "post-to-stored latency: not measured, because the wait for stored visits was off"
	if r.Waited {
		storedLine = fmt.Sprintf("post-to-stored latency, an upper bound (ack to the first poll that saw stored, polled every %s): %s",
			r.PollInterval, r.StoredLatency)
	}
	_, err := fmt.Fprintf(w, "load: %d salesmen x %d visits, seed %d, elapsed %s\n"+
		"posts: rejected=%d unacknowledged=%d retries=%d resent=%d resends_failed=%d\n"+
		"post latency (first attempt to ack, retries included): %s\n"+
		"%s\n"+
		"visits: sent=%d accepted=%d stored=%d duplicates=%d lost=%d\n",
		r.Salesmen, r.Visits, r.Seed, r.Elapsed.Round(time.Millisecond),
		r.Rejected, r.Unacknowledged, r.Retries, r.Resent, r.ResendsFailed,
		r.PostLatency,
		storedLine,
		r.Sent, r.Accepted, r.Stored, r.Duplicates, r.Lost)
	return err
}

// String formats the latency as "n=700 p50=12ms p90=30ms p99=80ms max=120ms".
func (l Latency) String() string {
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s",
		l.Count, roundDuration(l.P50), roundDuration(l.P90), roundDuration(l.P99), roundDuration(l.Max))
}

// roundDuration rounds to microseconds below a millisecond and to
// milliseconds above, for reading.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

func summarizeLatency(durations []time.Duration) Latency {
	if len(durations) == 0 {
		return Latency{}
	}
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	return Latency{
		Count: len(sorted),
		P50:   percentile(sorted, 50),
		P90:   percentile(sorted, 90),
		P99:   percentile(sorted, 99),
		Max:   sorted[len(sorted)-1],
	}
}

// percentile returns the nearest-rank p-th percentile of sorted durations:
// the smallest value with at least p percent of values at or below it.
// It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
