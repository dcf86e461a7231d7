package appliance

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/visitrelay/visitrelay/internal/metrics"
)

// Classes of database errors in visitrelay_database_errors_total.
const (
	// errorClassUnavailable is a failed connection: the server is down,
	// restarting or unreachable.
	errorClassUnavailable = "unavailable"
	// errorClassTimeout is a commit that took longer than its deadline.
	errorClassTimeout = "timeout"
	// errorClassContent is a visit the database rejected for what it
	// contains. It goes to dead letters after MaxAttempts.
	errorClassContent = "content"
	// errorClassOther is any other error, such as a missing privilege.
	errorClassOther = "other"
)

var errorClasses = []string{errorClassUnavailable, errorClassTimeout, errorClassContent, errorClassOther}

// commitMetrics records how long commits take and why they fail. The
// committer calls it; a nil *commitMetrics records nothing.
type commitMetrics struct {
	duration prometheus.Histogram
	errors   *prometheus.CounterVec
}

func newCommitMetrics() *commitMetrics {
	m := &commitMetrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace,
			Name:      "commit_duration_seconds",
			Help:      "Time of one database transaction that commits a batch of visits, successful or not.",
			Buckets:   []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Name:      "database_errors_total",
			Help:      "Failed commit transactions by class: unavailable, timeout, content or other.",
		}, []string{"class"}),
	}
	// Every class exists from the start, so that a rate() over it works
	// before the first error.
	for _, class := range errorClasses {
		m.errors.WithLabelValues(class)
	}
	return m
}

// observeCommit records one commit attempt of the committer.
func (m *commitMetrics) observeCommit(took time.Duration, err error) {
	if m == nil || errors.Is(err, context.Canceled) {
		return
	}
	m.duration.Observe(took.Seconds())
	if err != nil {
		m.errors.WithLabelValues(classifyDatabaseError(err)).Inc()
	}
}

// classifyDatabaseError sorts a commit error into one of errorClasses.
func classifyDatabaseError(err error) string {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case isContentError(err):
		return errorClassContent
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return errorClassTimeout
	case errors.As(err, &connectErr), errors.As(err, &netErr), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		return errorClassUnavailable
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code[:2] == "08" || pgErr.Code[:2] == "57") {
		// Connection exception, or the server shutting down.
		return errorClassUnavailable
	}
	return errorClassOther
}

// noteDelivery counts a message that JetStream delivers for the second
// time or later: its ack did not arrive in AckWait, or it was nak'ed.
func (c *committer) noteDelivery(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err == nil && meta.NumDelivered > 1 {
		c.redeliveries.Add(1)
	}
}

// registerMetrics adds the appliance's metrics to reg: the committer's
// counters and the figures of the latest status refresh.
func (s *statusService) registerMetrics(reg *prometheus.Registry) {
	c := s.a.committer
	reg.MustRegister(c.metrics.duration, c.metrics.errors, &statusCollector{s: s})
}

// statusCollector reports the committer's counters at scrape time and the
// figures of the latest status refresh, which is at most a few seconds
// old. A figure that is not known, such as the cloud backlog while the
// leafnode link is down, is left out rather than reported as zero.
type statusCollector struct {
	s *statusService
}

var (
	descCommitted     = metrics.Desc("visits_committed_total", "Visits inserted into the database since the appliance started.")
	descDuplicates    = metrics.Desc("duplicates_absorbed_total", "Deliveries of visits already in the database, absorbed without a second row, since start.")
	descRedeliveries  = metrics.Desc("redeliveries_total", "Visits that JetStream delivered to the committer more than once, since start.")
	descDeadLettered  = metrics.Desc("dead_letters_total", "Visits moved to the dead-letter stream since start.")
	descDeadLetters   = metrics.Desc("dead_letter_visits", "Visits waiting in the dead-letter stream for a replay or discard.")
	descLastCommit    = metrics.Desc("last_commit_timestamp_seconds", "Unix time of the last committed batch; absent before the first.")
	descPending       = metrics.Desc("pending_visits", "Visits waiting at a hop: source (in the cloud stream, not yet on-prem) or commit (on-prem, not yet in the database).", "hop")
	descOldestAge     = metrics.Desc("oldest_pending_age_seconds", "Age since the gateway accepted it of the oldest visit waiting at a hop; 0 when none waits.", "hop")
	descLeafConnected = metrics.Desc("leafnode_connected", "1 while the leafnode link to the gateway is up, else 0.")
	descReconnects    = metrics.Desc("leafnode_reconnects_total", "Times the leafnode link came back up after being down, since start.")
	descDatabaseUp    = metrics.Desc("database_up", "1 while the database answers a ping, else 0.")
	descSchema        = metrics.Desc("database_schema_version", "Schema version of the database, as last read.")
	descStoreUsed     = metrics.Desc("store_used_bytes", "Bytes the JetStream store uses on disk.")
	descDiskAvailable = metrics.Desc("filesystem_available_bytes", "Bytes still free on the filesystem of the JetStream store.")
	descClockSkew     = metrics.Desc("clock_skew_seconds", "Gateway clock minus appliance clock, from the last heartbeat reply.")
	descRunway        = metrics.Desc("buffer_runway_seconds", "How long the cloud buffer lasts at the visit rate of the last 24 hours, as the gateway reported it.")
)

// Describe sends the descriptions of every metric the collector reports.
func (sc *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCommitted, descDuplicates, descRedeliveries, descDeadLettered,
		descDeadLetters, descLastCommit, descPending, descOldestAge, descLeafConnected, descReconnects,
		descDatabaseUp, descSchema, descStoreUsed, descDiskAvailable, descClockSkew, descRunway} {
		ch <- d
	}
}

// Collect sends the current values.
func (sc *statusCollector) Collect(ch chan<- prometheus.Metric) {
	c := sc.s.a.committer
	ch <- metrics.Counter(descCommitted, float64(c.committed.Load()))
	ch <- metrics.Counter(descDuplicates, float64(c.duplicates.Load()))
	ch <- metrics.Counter(descRedeliveries, float64(c.redeliveries.Load()))
	ch <- metrics.Counter(descDeadLettered, float64(c.deadLetters.Load()))
	if last := c.lastCommit.Load(); last != 0 {
		ch <- metrics.Gauge(descLastCommit, float64(last)/1e9)
	}

	st := sc.s.snapshot()
	if st.GeneratedAt.IsZero() {
		return
	}
	for _, hop := range st.Hops {
		if !hop.Known || hop.Name == hopDeadLetters {
			continue
		}
		ch <- metrics.Gauge(descPending, float64(hop.Pending), hop.Name)
		oldest := 0.0
		if hop.OldestAgeSeconds != nil {
			oldest = *hop.OldestAgeSeconds
		}
		ch <- metrics.Gauge(descOldestAge, oldest, hop.Name)
	}
	ch <- metrics.Gauge(descDeadLetters, float64(st.DeadLetters.Count))
	ch <- metrics.Gauge(descLeafConnected, boolValue(st.Leafnode.Connected))
	ch <- metrics.Counter(descReconnects, float64(st.Leafnode.Reconnects))
	ch <- metrics.Gauge(descDatabaseUp, boolValue(st.Database.Reachable))
	if st.Database.SchemaVersion != nil {
		ch <- metrics.Gauge(descSchema, float64(*st.Database.SchemaVersion))
	}
	ch <- metrics.Gauge(descStoreUsed, float64(st.Store.UsedBytes))
	ch <- metrics.Gauge(descDiskAvailable, float64(st.Store.FilesystemAvailableBytes))
	if st.Cloud.ClockSkewSeconds != nil {
		ch <- metrics.Gauge(descClockSkew, *st.Cloud.ClockSkewSeconds)
	}
	if st.Cloud.RunwayDays != nil {
		ch <- metrics.Gauge(descRunway, *st.Cloud.RunwayDays*24*3600)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
