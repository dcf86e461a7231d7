package appliance

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/visitrelay/visitrelay/internal/health"
	"github.com/visitrelay/visitrelay/internal/heartbeat"
	"github.com/visitrelay/visitrelay/internal/metrics"
	"github.com/visitrelay/visitrelay/internal/streams"
	"github.com/visitrelay/visitrelay/internal/version"
)

// Names of the hops in Status.Hops and in the hop label of
// visitrelay_pending_visits.
const (
	// hopSource is the cloud's VISITS stream: accepted by the gateway,
	// not yet sourced into the site's stream.
	hopSource = "source"
	// hopCommit is the site's VISITS stream: sourced on-prem, not yet
	// committed to the database.
	hopCommit = "commit"
	// hopDeadLetters is the site's DEADLETTERS stream: rejected by the
	// database, waiting for a replay or discard.
	hopDeadLetters = "dead_letters"
)

// statusRefresh is how often the appliance reads its figures. The page,
// /status.json and /metrics serve the latest reading, so they do not wait
// for a slow JetStream or database call. /trace and /readyz read live.
const statusRefresh = 2 * time.Second

// requestTimeout bounds each JetStream or database call of a refresh.
const requestTimeout = 2 * time.Second

// Status is the content of the appliance's status page and /status.json.
// A pointer field is null in JSON when its value is not known.
type Status struct {
	GeneratedAt time.Time      `json:"generatedAt"`
	Verdict     health.Verdict `json:"verdict"`
	Site        SiteStatus     `json:"site"`
	// Hops are the places a visit waits on its way into the database:
	// source, commit and dead_letters, in that order.
	Hops []HopStatus `json:"hops"`
	// OldestNotStored is the oldest visit that the gateway accepted and
	// the database does not hold yet, dead letters aside. It is judged by
	// age, not by a lag counter, because a broken source reports no lag.
	OldestNotStored *PendingVisit    `json:"oldestNotStored"`
	Leafnode        LeafnodeStatus   `json:"leafnode"`
	Database        DatabaseStatus   `json:"database"`
	Commits         CommitStatus     `json:"commits"`
	DeadLetters     DeadLetterStatus `json:"deadLetters"`
	Store           StoreStatus      `json:"store"`
	Cloud           CloudStatus      `json:"cloud"`
	History         HistoryStatus    `json:"history"`
}

// SiteStatus names the appliance.
type SiteStatus struct {
	Domain        string    `json:"domain"`
	Server        string    `json:"server"`
	Version       string    `json:"version"`
	StartedAt     time.Time `json:"startedAt"`
	UptimeSeconds float64   `json:"uptimeSeconds"`
}

// HopStatus is the backlog at one hop.
type HopStatus struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// Known is false when the hop cannot be read, such as the cloud
	// stream while the leafnode link is down.
	Known   bool   `json:"known"`
	Pending uint64 `json:"pending"`
	// OldestAcceptedAt is when the gateway accepted the oldest visit
	// waiting here.
	OldestAcceptedAt *time.Time `json:"oldestAcceptedAt"`
	OldestAgeSeconds *float64   `json:"oldestAgeSeconds"`
	// Note explains an unknown hop or how the figure was read.
	Note string `json:"note"`
}

// PendingVisit is one visit not yet in the database.
type PendingVisit struct {
	VisitID    string    `json:"visitId"`
	Hop        string    `json:"hop"`
	AcceptedAt time.Time `json:"acceptedAt"`
	AgeSeconds float64   `json:"ageSeconds"`
}

// LeafnodeStatus is the link to the gateway.
type LeafnodeStatus struct {
	Connected bool `json:"connected"`
	// Since is when the link last came up or went down.
	Since time.Time `json:"since"`
	// Reconnects counts the times the link came back after being down.
	Reconnects int64 `json:"reconnects"`
	// Remote is the gateway's server name and address while connected.
	Remote string `json:"remote"`
	RTT    string `json:"rtt"`
}

// DatabaseStatus is the state of the customer's PostgreSQL, from the
// appliance's pings.
type DatabaseStatus struct {
	Reachable bool `json:"reachable"`
	// Since is when the database last became reachable or unreachable.
	Since time.Time `json:"since"`
	// CommitsFailingSince is set while the committer's transactions fail
	// for a reason other than a visit's content.
	CommitsFailingSince *time.Time `json:"commitsFailingSince"`
	SchemaVersion       *int64     `json:"schemaVersion"`
	// SchemaOutdated is true when the schema is older than this binary.
	SchemaOutdated bool `json:"schemaOutdated"`
	// Error is the last ping or schema error while unreachable.
	Error string `json:"error"`
}

// CommitStatus is the committer's progress.
type CommitStatus struct {
	Committed    int64 `json:"committed"`
	Duplicates   int64 `json:"duplicates"`
	Redeliveries int64 `json:"redeliveries"`
	// RatePerMinute1m and RatePerMinute15m are visits committed per
	// minute over the last 1 and 15 minutes, or since start when shorter.
	RatePerMinute1m  float64    `json:"ratePerMinute1m"`
	RatePerMinute15m float64    `json:"ratePerMinute15m"`
	LastCommitAt     *time.Time `json:"lastCommitAt"`
}

// DeadLetterStatus lists the dead letters waiting.
type DeadLetterStatus struct {
	Count uint64 `json:"count"`
	// List holds the newest deadLettersShown dead letters.
	List      []DeadLetterEntry `json:"list"`
	Truncated bool              `json:"truncated"`
}

// DeadLetterEntry is one dead letter on the page.
type DeadLetterEntry struct {
	VisitID  string    `json:"visitId"`
	UserID   string    `json:"userId"`
	ClientID string    `json:"clientId"`
	Reason   string    `json:"reason"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// StoreStatus is the JetStream store and its disk.
type StoreStatus struct {
	Dir       string `json:"dir"`
	UsedBytes uint64 `json:"usedBytes"`
	// MaxBytes is nats.maxStore, or 0 for no cap. UsedPercent is
	// UsedBytes as a share of it.
	MaxBytes                 int64   `json:"maxBytes"`
	UsedPercent              float64 `json:"usedPercent"`
	FilesystemAvailableBytes uint64  `json:"filesystemAvailableBytes"`
	FilesystemTotalBytes     uint64  `json:"filesystemTotalBytes"`
	FilesystemUsedPercent    float64 `json:"filesystemUsedPercent"`
	Writable                 bool    `json:"writable"`
	JetStreamHealthy         bool    `json:"jetStreamHealthy"`
	Error                    string  `json:"error"`
}

// CloudStatus is the gateway's state as read through the leafnode link.
type CloudStatus struct {
	// Reachable is true when the cloud's VISITS stream responded in the
	// last refresh.
	Reachable      bool   `json:"reachable"`
	StreamMessages uint64 `json:"streamMessages"`
	StreamBytes    uint64 `json:"streamBytes"`
	// LastHeartbeatReply is the time of the gateway's last heartbeat reply.
	LastHeartbeatReply *time.Time `json:"lastHeartbeatReply"`
	// ClockSkewSeconds is the gateway's clock minus the appliance's.
	ClockSkewSeconds *float64 `json:"clockSkewSeconds"`
	// RunwayDays is the cloud buffer runway the gateway reported.
	RunwayDays *float64 `json:"runwayDays"`
}

// HistoryStatus is the in-memory history behind the page's charts.
type HistoryStatus struct {
	IntervalSeconds float64         `json:"intervalSeconds"`
	Samples         []HistorySample `json:"samples"`
}

// HistorySample is one point of the charts.
type HistorySample struct {
	At time.Time `json:"at"`
	// Pending is the visits waiting at the source and commit hops.
	Pending uint64 `json:"pending"`
	// CommittedPerMinute is the commit rate since the previous sample.
	CommittedPerMinute float64 `json:"committedPerMinute"`
}

// statusService reads the appliance's figures every statusRefresh, keeps
// an hour of them for the charts, sends the heartbeat to the gateway, and
// serves the status page, /status.json, /metrics, /healthz and /readyz.
type statusService struct {
	a       *Appliance
	cloud   jetstream.JetStream // the cloud domain, through the leafnode link
	started time.Time
	logger  *slog.Logger

	registry *prometheus.Registry
	page     *template.Template
	server   *http.Server
	listener net.Listener

	mu          sync.Mutex
	latest      Status
	history     history
	link        linkTracker
	db          databaseTracker
	reply       heartbeatReply
	sourced     sourcedPosition
	deadLetters deadLetterCache
	linkChanged chan struct{} // a send makes the heartbeat go out now
}

// startStatus starts the status refresh and the heartbeat under ctx, and
// the status listener when status.listen is set. Start calls it once the
// committer runs.
func (a *Appliance) startStatus(ctx context.Context) error {
	cloud, err := jetstream.NewWithDomain(a.nc, streams.CloudDomain)
	if err != nil {
		return fmt.Errorf("open JetStream domain %q: %w", streams.CloudDomain, err)
	}
	s := &statusService{
		a: a, cloud: cloud, started: time.Now(),
		logger:      a.logger.With("component", "status"),
		registry:    metrics.NewRegistry("appliance"),
		linkChanged: make(chan struct{}, 1),
	}
	s.link.since = s.started
	s.db.since = s.started
	s.registerMetrics(s.registry)
	if s.page, err = parseStatusPage(); err != nil {
		return err
	}
	a.status = s

	if a.cfg.Status.Listen != "" {
		if err := s.listen(a.cfg.Status.Listen); err != nil {
			return err
		}
	}
	a.goRun(func() { s.run(ctx) })
	a.goRun(func() { s.sendHeartbeats(ctx) })
	return nil
}

// stopStatus closes the status listener; the refresh and the heartbeat
// end with the appliance's run context.
func (a *Appliance) stopStatus(ctx context.Context) error {
	if a.status == nil || a.status.server == nil {
		return nil
	}
	if err := a.status.server.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop status listener: %w", err)
	}
	return nil
}

// run refreshes the figures until ctx ends.
func (s *statusService) run(ctx context.Context) {
	ticker := time.NewTicker(statusRefresh)
	defer ticker.Stop()
	for {
		s.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// snapshot returns the latest figures.
func (s *statusService) snapshot() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
}

// refresh reads every figure and judges the verdict. Each reading that
// fails leaves its part unknown and, where it matters, adds a warning.
func (s *statusService) refresh(ctx context.Context) {
	now := time.Now()
	st := Status{
		GeneratedAt: now.UTC(),
		Site: SiteStatus{
			Domain: s.a.cfg.NATS.Domain, Server: s.a.cfg.NATS.Name, Version: version.String(),
			StartedAt: s.started.UTC(), UptimeSeconds: now.Sub(s.started).Seconds(),
		},
	}
	var linkChanged bool
	st.Leafnode, linkChanged = s.readLeafnode(now)
	st.Database = s.readDatabase(ctx, now)
	st.Store = s.readStore()
	st.Commits = s.readCommits()

	siteStream, siteInfo := s.readSiteStream(ctx)
	source, cloud := s.readSourceHop(ctx, siteInfo, st.Leafnode.Connected, now)
	commit := s.readCommitHop(ctx, siteStream, now)
	st.DeadLetters = s.readDeadLetters(ctx)
	s.mu.Lock()
	oldestDeadLetter := s.deadLetters.oldest
	s.mu.Unlock()
	st.Hops = []HopStatus{source.hop, commit.hop, deadLetterHop(st.DeadLetters, oldestDeadLetter, now)}
	st.OldestNotStored = oldestOf(source.oldest, commit.oldest)
	st.Cloud = s.cloudStatus(cloud)

	s.mu.Lock()
	s.history.add(now, pendingOf(st.Hops), st.Commits.Committed)
	st.Commits.RatePerMinute1m = s.history.rate(now, time.Minute, st.Commits.Committed)
	st.Commits.RatePerMinute15m = s.history.rate(now, 15*time.Minute, st.Commits.Committed)
	st.History = s.history.status()
	s.mu.Unlock()

	st.Verdict = health.Judge(applianceWarnings(st, now))
	s.mu.Lock()
	s.latest = st
	s.mu.Unlock()

	if linkChanged {
		// The heartbeat goes out at once with the new figures, so that
		// the gateway learns of a site that came back without waiting.
		select {
		case s.linkChanged <- struct{}{}:
		default:
		}
	}
}

func pendingOf(hops []HopStatus) uint64 {
	var n uint64
	for _, h := range hops {
		if h.Known && h.Name != hopDeadLetters {
			n += h.Pending
		}
	}
	return n
}

func oldestOf(visits ...*PendingVisit) *PendingVisit {
	var oldest *PendingVisit
	for _, v := range visits {
		if v != nil && (oldest == nil || v.AcceptedAt.Before(oldest.AcceptedAt)) {
			oldest = v
		}
	}
	return oldest
}

// applianceWarnings names every problem that the figures show.
func applianceWarnings(st Status, now time.Time) []health.Warning {
	return append(serviceWarnings(st), flowWarnings(st, now)...)
}

// serviceWarnings names problems of the services the appliance needs: its
// store, the database and the leafnode link.
func serviceWarnings(st Status) []health.Warning {
	var ws []health.Warning
	if !st.Store.JetStreamHealthy {
		ws = append(ws, health.Warning{Code: health.CodeJetStreamDown, Message: "JetStream unhealthy: " + st.Store.Error, Stops: true})
	}
	if st.Store.JetStreamHealthy && !st.Store.Writable {
		ws = append(ws, health.Warning{Code: health.CodeStoreNotWritable, Message: "store not writable: " + st.Store.Error, Stops: true})
	}
	if !st.Database.Reachable {
		ws = append(ws, health.Warning{Code: health.CodeDatabaseUnreachable, Message: "database unreachable", Since: health.At(st.Database.Since)})
	} else if st.Database.CommitsFailingSince != nil {
		ws = append(ws, health.Warning{Code: health.CodeDatabaseFailing, Message: "database failing commits", Since: st.Database.CommitsFailingSince})
	}
	if st.Database.SchemaOutdated {
		ws = append(ws, health.Warning{Code: health.CodeSchemaOutdated,
			Message: "database schema older than this binary; run visitrelay-appliance db migrate"})
	}
	if !st.Leafnode.Connected {
		ws = append(ws, health.Warning{Code: health.CodeLeafnodeDown, Message: "leaf link to the gateway down", Since: health.At(st.Leafnode.Since)})
	}
	return ws
}

// flowWarnings names figures that show visits stuck, or soon to be.
func flowWarnings(st Status, now time.Time) []health.Warning {
	var ws []health.Warning
	if st.DeadLetters.Count > 0 {
		ws = append(ws, health.Warning{Code: health.CodeDeadLetters,
			Message: fmt.Sprintf("%d dead letters waiting", st.DeadLetters.Count)})
	}
	if st.Store.FilesystemUsedPercent > health.StoreFullPercent {
		ws = append(ws, health.Warning{Code: health.CodeStoreFull,
			Message: fmt.Sprintf("store disk %.0f %% full", st.Store.FilesystemUsedPercent)})
	} else if st.Store.UsedPercent > health.StoreFullPercent {
		ws = append(ws, health.Warning{Code: health.CodeStoreFull,
			Message: fmt.Sprintf("store %.0f %% of nats.maxStore", st.Store.UsedPercent)})
	}
	if skew := st.Cloud.ClockSkewSeconds; skew != nil && (*skew > health.MaxClockSkew.Seconds() || *skew < -health.MaxClockSkew.Seconds()) {
		ws = append(ws, health.Warning{Code: health.CodeClockSkew,
			Message: fmt.Sprintf("clock differs from the gateway's by %.0f s", *skew)})
	}
	if r := st.Cloud.RunwayDays; r != nil && *r < health.RunwayLowDays {
		ws = append(ws, health.Warning{Code: health.CodeRunwayLow,
			Message: fmt.Sprintf("cloud buffer runway %.1f days", *r)})
	}
	if v := st.OldestNotStored; v != nil && now.Sub(v.AcceptedAt) > health.MaxPendingAge {
		ws = append(ws, health.Warning{Code: health.CodeVisitsDelayed,
			Message: fmt.Sprintf("oldest visit not yet in the database waits at the %s hop", v.Hop), Since: &v.AcceptedAt})
	}
	return ws
}

// cloudStatus combines the cloud stream reading with the last heartbeat
// reply.
func (s *statusService) cloudStatus(cloud *jetstream.StreamInfo) CloudStatus {
	s.mu.Lock()
	reply := s.reply
	s.mu.Unlock()

	cs := CloudStatus{RunwayDays: reply.runwayDays, LastHeartbeatReply: health.At(reply.at)}
	if !reply.at.IsZero() {
		skew := reply.skew.Seconds()
		cs.ClockSkewSeconds = &skew
	}
	if cloud != nil {
		cs.Reachable = true
		cs.StreamMessages = cloud.State.Msgs
		cs.StreamBytes = cloud.State.Bytes
	}
	return cs
}

// heartbeatReply is the gateway's last reply to a heartbeat.
type heartbeatReply struct {
	at         time.Time
	skew       time.Duration
	runwayDays *float64

	notSourced         *uint64
	oldestNotSourcedAt *time.Time
}

// heartbeatMessage returns the heartbeat for the latest figures.
func (s *statusService) heartbeatMessage(now time.Time) heartbeat.Message {
	st := s.snapshot()
	msg := heartbeat.Message{
		Site: s.a.cfg.NATS.Domain, Server: s.a.cfg.NATS.Name, Version: version.String(),
		SentAt: now.UTC(), StartedAt: s.started.UTC(),
		State: st.Verdict.State, Summary: st.Verdict.Summary,
		Committed: st.Commits.Committed, DeadLetters: st.DeadLetters.Count,
		LastCommitAt: st.Commits.LastCommitAt, DatabaseReachable: st.Database.Reachable,
	}
	if st.Leafnode.Connected {
		msg.LinkUpSince = &st.Leafnode.Since
	}
	for _, h := range st.Hops {
		if h.Name == hopCommit {
			msg.PendingCommit = h.Pending
		}
	}
	s.mu.Lock()
	msg.SourcedSequence = s.sourced.cloudSequence
	s.mu.Unlock()
	return msg
}
