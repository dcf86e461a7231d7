package gateway

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/visitrelay/visitrelay/internal/metrics"
)

// gatewayMetrics are the gateway's counters; the rest of /metrics comes
// from the latest status refresh.
type gatewayMetrics struct {
	registry      *prometheus.Registry
	accepted      prometheus.Counter
	posts         *prometheus.CounterVec
	loginFailures *prometheus.CounterVec

	// failedRecent feeds the status page's failed logins of the last hour.
	failedRecent recentCounter
}

func newGatewayMetrics() *gatewayMetrics {
	m := &gatewayMetrics{
		registry: metrics.NewRegistry("gateway"),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "visits_accepted_total",
			Help: "Visits stored in the cloud stream for the first time since the gateway started; retries of a stored visit are not counted.",
		}),
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "visit_posts_total",
			Help: "Answers to POST /api/v1/visits by HTTP status code: 201 accepted, 200 a retry of a stored visit, 4xx rejected, 503 stream unavailable.",
		}, []string{"code"}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "login_failures_total",
			Help: "Failed logins by reason: failed (unknown user, wrong password or disabled) or throttled.",
		}, []string{"reason"}),
	}
	m.loginFailures.WithLabelValues("failed")
	m.loginFailures.WithLabelValues("throttled")
	m.registry.MustRegister(m.accepted, m.posts, m.loginFailures)
	return m
}

// countPost counts the response to a visit post. It runs the error handler
// itself when the post fails, so that it reads the status code the client
// gets, and then reports no error to Fiber.
func (g *Gateway) countPost(c *fiber.Ctx) error {
	if err := c.Next(); err != nil {
		if handleErr := c.App().ErrorHandler(c, err); handleErr != nil {
			return handleErr
		}
	}
	status := c.Response().StatusCode()
	g.metrics.posts.WithLabelValues(strconv.Itoa(status)).Inc()
	if status == fiber.StatusCreated {
		g.metrics.accepted.Inc()
	}
	return nil
}

// countLogin counts failed logins by reason.
func (g *Gateway) countLogin(c *fiber.Ctx) error {
	err := c.Next()
	switch {
	case errors.Is(err, ErrLoginFailed):
		g.metrics.loginFailures.WithLabelValues("failed").Inc()
		g.metrics.failedRecent.add(time.Now())
	case errors.Is(err, ErrLoginThrottled):
		g.metrics.loginFailures.WithLabelValues("throttled").Inc()
		g.metrics.failedRecent.add(time.Now())
	}
	return err
}

// recentCounter counts events per minute over the last hour.
type recentCounter struct {
	mu      sync.Mutex
	minutes [60]struct {
		minute int64
		n      int64
	}
	total int64
}

func (r *recentCounter) add(now time.Time) {
	minute := now.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	slot := &r.minutes[minute%60]
	if slot.minute != minute {
		slot.minute, slot.n = minute, 0
	}
	slot.n++
	r.total++
}

// lastHour returns the events of the last 60 minutes and the total since
// start.
func (r *recentCounter) lastHour(now time.Time) (hour, total int64) {
	minute := now.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, slot := range r.minutes {
		if minute-slot.minute < 60 {
			hour += slot.n
		}
	}
	return hour, r.total
}

// gatewayCollector reports the figures of the latest status refresh.
// A figure that is not known is left out rather than reported as zero.
type gatewayCollector struct {
	g *Gateway
}

var (
	descPending        = metrics.Desc("pending_visits", "Visits waiting at a hop: source (in the cloud stream, not yet sourced by the site).", "hop")
	descOldestAge      = metrics.Desc("oldest_pending_age_seconds", "Age since accept of the oldest visit waiting at a hop; 0 when none waits.", "hop")
	descStreamMessages = metrics.Desc("stream_messages", "Messages in a JetStream stream of the gateway.", "stream")
	descStreamBytes    = metrics.Desc("stream_bytes", "Bytes in a JetStream stream of the gateway.", "stream")
	descLeafnodes      = metrics.Desc("leafnode_connected", "Leafnode links from appliances that are up.")
	descHeartbeat      = metrics.Desc("appliance_heartbeat_timestamp_seconds", "Unix time of the last heartbeat from a site's appliance.", "site")
	descRunway         = metrics.Desc("buffer_runway_seconds", "How long the cloud buffer lasts at the visit rate of the last 24 hours; absent when no visit arrived.")
	descStoreUsed      = metrics.Desc("store_used_bytes", "Bytes the JetStream store uses on disk.")
	descDiskAvailable  = metrics.Desc("filesystem_available_bytes", "Bytes still free on the filesystem of the JetStream store.")
)

// Describe sends the descriptions of every metric the collector reports.
func (gc *gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descOldestAge, descStreamMessages, descStreamBytes,
		descLeafnodes, descHeartbeat, descRunway, descStoreUsed, descDiskAvailable} {
		ch <- d
	}
}

// Collect sends the current values.
func (gc *gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	st := gc.g.status.snapshot()
	if st.GeneratedAt.IsZero() {
		return
	}
	if st.NotSourced.Known {
		ch <- metrics.Gauge(descPending, float64(st.NotSourced.Pending), "source")
		oldest := 0.0
		if st.NotSourced.OldestAgeSeconds != nil {
			oldest = *st.NotSourced.OldestAgeSeconds
		}
		ch <- metrics.Gauge(descOldestAge, oldest, "source")
	}
	if st.Stream.Known {
		ch <- metrics.Gauge(descStreamMessages, float64(st.Stream.Messages), "VISITS")
		ch <- metrics.Gauge(descStreamBytes, float64(st.Stream.Bytes), "VISITS")
	}
	ch <- metrics.Gauge(descLeafnodes, float64(gc.g.ns.NumLeafNodes()))
	for _, a := range st.Appliances {
		if a.LastHeartbeat != nil {
			ch <- metrics.Gauge(descHeartbeat, float64(a.LastHeartbeat.UnixNano())/1e9, a.Site)
		}
	}
	if st.Runway.Days != nil {
		ch <- metrics.Gauge(descRunway, *st.Runway.Days*24*3600)
	}
	ch <- metrics.Gauge(descStoreUsed, float64(st.Store.UsedBytes))
	ch <- metrics.Gauge(descDiskAvailable, float64(st.Store.FilesystemAvailableBytes))
}
