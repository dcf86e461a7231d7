package gateway

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/backlog"
	"github.com/visitrelay/visitrelay/internal/health"
	"github.com/visitrelay/visitrelay/internal/heartbeat"
	"github.com/visitrelay/visitrelay/internal/streams"
	"github.com/visitrelay/visitrelay/internal/version"
)

// statusRefresh is how often the gateway reads its figures; the page and
// /metrics serve the latest reading.
const statusRefresh = 5 * time.Second

// requestTimeout bounds each JetStream call of a refresh.
const requestTimeout = 2 * time.Second

// Status is the content of the gateway's status page and /status.json.
// A pointer field is null in JSON when its value is not known.
type Status struct {
	GeneratedAt time.Time      `json:"generatedAt"`
	Verdict     health.Verdict `json:"verdict"`
	Gateway     GatewayInfo    `json:"gateway"`
	Visits      VisitCounts    `json:"visits"`
	Stream      StreamStatus   `json:"stream"`
	// NotSourced is the backlog of the cloud stream that the site has
	// not sourced yet, from the site's last heartbeat.
	NotSourced NotSourcedStatus `json:"notSourced"`
	Runway     RunwayStatus     `json:"runway"`
	Leafnodes  int              `json:"leafnodes"`
	// SiteLinked is true while a site's leafnode link is up on this node
	// or, in a cluster, while its heartbeats arrive through another node.
	SiteLinked bool              `json:"siteLinked"`
	Appliances []ApplianceStatus `json:"appliances"`
	Logins     LoginStatus       `json:"logins"`
	Store      StoreStatus       `json:"store"`
}

// GatewayInfo names the gateway.
type GatewayInfo struct {
	Server        string    `json:"server"`
	Version       string    `json:"version"`
	SiteDomain    string    `json:"siteDomain"`
	StartedAt     time.Time `json:"startedAt"`
	UptimeSeconds float64   `json:"uptimeSeconds"`
}

// VisitCounts are the visits stored in the cloud stream over recent
// periods, counted in the stream, so they survive a gateway restart.
type VisitCounts struct {
	AcceptedToday    *uint64 `json:"acceptedToday"`
	AcceptedThisHour *uint64 `json:"acceptedThisHour"`
	AcceptedLast24h  *uint64 `json:"acceptedLast24h"`
}

// StreamStatus is the cloud VISITS stream.
type StreamStatus struct {
	Known    bool   `json:"known"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	// MaxBytes is the stream's cap. When it is reached, posts get 503.
	MaxBytes      int64   `json:"maxBytes"`
	FilledPercent float64 `json:"filledPercent"`
	LastSequence  uint64  `json:"lastSequence"`
	// Replicas is the stream's configured replica count, and
	// ReplicasCurrent how many of them, the leader included, are up and
	// current. ReplicasLost names the cluster nodes of the others.
	Replicas        int      `json:"replicas"`
	ReplicasCurrent int      `json:"replicasCurrent"`
	ReplicasLost    []string `json:"replicasLost"`
	Error           string   `json:"error"`
}

// NotSourcedStatus is the backlog that waits in the cloud for the site.
type NotSourcedStatus struct {
	Known            bool       `json:"known"`
	Pending          uint64     `json:"pending"`
	OldestAcceptedAt *time.Time `json:"oldestAcceptedAt"`
	OldestAgeSeconds *float64   `json:"oldestAgeSeconds"`
	Note             string     `json:"note"`
}

// RunwayStatus is how long the cloud buffer lasts.
type RunwayStatus struct {
	// Days is nil when no visit arrived in the last 24 hours.
	Days          *float64 `json:"days"`
	FreeBytes     uint64   `json:"freeBytes"`
	BytesPerVisit float64  `json:"bytesPerVisit"`
	// LimitedBy names what runs out first: the stream's maxBytes, the
	// store's maxStore, or the filesystem.
	LimitedBy string `json:"limitedBy"`
}

// ApplianceStatus is one site's appliance as its heartbeats show it.
type ApplianceStatus struct {
	Site      string `json:"site"`
	Server    string `json:"server"`
	Version   string `json:"version"`
	Connected bool   `json:"connected"`
	// ConnectedSince is when the appliance's leafnode link came up, as
	// the appliance reported it.
	ConnectedSince      *time.Time   `json:"connectedSince"`
	LastHeartbeat       *time.Time   `json:"lastHeartbeat"`
	HeartbeatAgeSeconds *float64     `json:"heartbeatAgeSeconds"`
	State               health.State `json:"state"`
	Summary             string       `json:"summary"`
	PendingCommit       uint64       `json:"pendingCommit"`
	Committed           int64        `json:"committed"`
	DeadLetters         uint64       `json:"deadLetters"`
	LastCommitAt        *time.Time   `json:"lastCommitAt"`
	DatabaseReachable   bool         `json:"databaseReachable"`
	// ClockSkewSeconds is the appliance's send time minus the gateway's
	// receive time, so it includes the one-way network delay.
	ClockSkewSeconds float64 `json:"clockSkewSeconds"`
}

// LoginStatus counts failed logins.
type LoginStatus struct {
	FailuresLastHour   int64 `json:"failuresLastHour"`
	FailuresSinceStart int64 `json:"failuresSinceStart"`
}

// StoreStatus is the JetStream store and its disk.
type StoreStatus struct {
	Dir                      string  `json:"dir"`
	UsedBytes                uint64  `json:"usedBytes"`
	FilesystemAvailableBytes uint64  `json:"filesystemAvailableBytes"`
	FilesystemTotalBytes     uint64  `json:"filesystemTotalBytes"`
	FilesystemUsedPercent    float64 `json:"filesystemUsedPercent"`
	Writable                 bool    `json:"writable"`
	JetStreamHealthy         bool    `json:"jetStreamHealthy"`
	Error                    string  `json:"error"`
}

// statusService reads the gateway's figures every statusRefresh.
type statusService struct {
	g       *Gateway
	siteJS  jetstream.JetStream // the site's domain, through the leafnode link
	started time.Time

	mu        sync.Mutex
	latest    Status
	noLeafAt  time.Time // when the last leafnode link went down, zero while one is up
	hadLeaves bool
}

func newStatusService(g *Gateway) (*statusService, error) {
	siteJS, err := jetstream.NewWithDomain(g.nc, g.cfg.NATS.SiteDomain)
	if err != nil {
		return nil, fmt.Errorf("open JetStream domain %q: %w", g.cfg.NATS.SiteDomain, err)
	}
	now := time.Now()
	return &statusService{g: g, siteJS: siteJS, started: now, noLeafAt: now}, nil
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

func (s *statusService) snapshot() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
}

func (s *statusService) refresh(ctx context.Context) {
	now := time.Now()
	g := s.g
	st := Status{
		GeneratedAt: now.UTC(),
		Gateway: GatewayInfo{Server: g.cfg.NATS.Name, Version: version.String(), SiteDomain: g.cfg.NATS.SiteDomain,
			StartedAt: s.started.UTC(), UptimeSeconds: now.Sub(s.started).Seconds()},
		Leafnodes: g.ns.NumLeafNodes(),
	}
	st.Store = s.readStore()
	stream, cloud := s.readStream(ctx, &st)
	st.Visits = s.countVisits(ctx, now)
	st.Runway = s.runway(st, cloud)
	st.Appliances = s.appliances(now)
	st.SiteLinked = st.Leafnodes > 0 || slices.ContainsFunc(st.Appliances, func(a ApplianceStatus) bool { return a.Connected })
	st.NotSourced = s.notSourced(ctx, stream, cloud, now)
	hour, total := g.metrics.failedRecent.lastHour(now)
	st.Logins = LoginStatus{FailuresLastHour: hour, FailuresSinceStart: total}

	s.mu.Lock()
	switch {
	case st.SiteLinked && !s.noLeafAt.IsZero():
		s.noLeafAt = time.Time{}
		s.hadLeaves = true
	case !st.SiteLinked && s.noLeafAt.IsZero():
		s.noLeafAt = now
	}
	noLeafAt := s.noLeafAt
	s.mu.Unlock()

	st.Verdict = health.Judge(gatewayWarnings(st, noLeafAt, now))
	s.mu.Lock()
	s.latest = st
	s.mu.Unlock()
}

func (s *statusService) readStore() StoreStatus {
	dir := filepath.Join(s.g.cfg.StateDir, "jetstream")
	st := StoreStatus{Dir: dir}
	var errs []string
	hs := s.g.ns.Healthz(&server.HealthzOptions{})
	st.JetStreamHealthy = hs != nil && hs.Error == "" && hs.StatusCode == 200
	if !st.JetStreamHealthy && hs != nil {
		errs = append(errs, hs.Error)
	}
	if jsz, err := s.g.ns.Jsz(nil); err == nil {
		st.UsedBytes = jsz.Store
	}
	if disk, err := health.StatDisk(dir); err == nil {
		st.FilesystemAvailableBytes, st.FilesystemTotalBytes = disk.AvailableBytes, disk.TotalBytes
		st.FilesystemUsedPercent = disk.UsedPercent()
	} else {
		errs = append(errs, err.Error())
	}
	if err := health.ProbeWritable(dir); err != nil {
		errs = append(errs, err.Error())
	} else {
		st.Writable = true
	}
	st.Error = strings.Join(errs, "; ")
	return st
}

func (s *statusService) readStream(ctx context.Context, st *Status) (jetstream.Stream, *jetstream.StreamInfo) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	stream, err := s.g.js.Stream(ctx, streams.Visits)
	if err != nil {
		st.Stream.Error = err.Error()
		return nil, nil
	}
	info := stream.CachedInfo()
	st.Stream = StreamStatus{Known: true, Messages: info.State.Msgs, Bytes: info.State.Bytes,
		MaxBytes: info.Config.MaxBytes, LastSequence: info.State.LastSeq}
	if info.Config.MaxBytes > 0 {
		st.Stream.FilledPercent = 100 * float64(info.State.Bytes) / float64(info.Config.MaxBytes)
	}
	st.Stream.Replicas, st.Stream.ReplicasCurrent, st.Stream.ReplicasLost = replicaHealth(info)
	return stream, info
}

// replicaHealth returns the stream's configured replicas, how many are up
// and current, and the names of the cluster nodes whose replica is not.
func replicaHealth(info *jetstream.StreamInfo) (configured, current int, lost []string) {
	configured = max(info.Config.Replicas, 1)
	lost = []string{}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return configured, 0, lost
	}
	current = 1
	for _, peer := range info.Cluster.Replicas {
		if peer.Current && !peer.Offline {
			current++
			continue
		}
		lost = append(lost, peer.Name)
	}
	return configured, current, lost
}

// countVisits counts the visits stored since local midnight, since the
// start of the hour and over the last 24 hours. A count that fails stays
// unknown.
func (s *statusService) countVisits(ctx context.Context, now time.Time) VisitCounts {
	y, m, d := now.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, now.Location())
	count := func(since time.Time) *uint64 {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		n, err := backlog.CountSince(ctx, s.g.js, streams.Visits, since)
		if err != nil {
			return nil
		}
		return &n
	}
	return VisitCounts{
		AcceptedToday:    count(midnight),
		AcceptedThisHour: count(now.Truncate(time.Hour)),
		AcceptedLast24h:  count(now.Add(-24 * time.Hour)),
	}
}

// runway estimates the days until the cloud buffer is full at the rate of
// the last 24 hours: the free space is the least of what the stream's
// maxBytes, the store's maxStore and the filesystem leave.
func (s *statusService) runway(st Status, cloud *jetstream.StreamInfo) RunwayStatus {
	r := RunwayStatus{FreeBytes: st.Store.FilesystemAvailableBytes, LimitedBy: "filesystem"}
	if cloud != nil && cloud.Config.MaxBytes > 0 {
		free := uint64(max(0, cloud.Config.MaxBytes-int64(cloud.State.Bytes)))
		if free < r.FreeBytes {
			r.FreeBytes, r.LimitedBy = free, "stream maxBytes"
		}
	}
	if maxStore := s.g.cfg.NATS.MaxStore; maxStore > 0 {
		free := uint64(max(0, maxStore-int64(st.Store.UsedBytes)))
		if free < r.FreeBytes {
			r.FreeBytes, r.LimitedBy = free, "nats.maxStore"
		}
	}
	if cloud == nil || cloud.State.Msgs == 0 || st.Visits.AcceptedLast24h == nil {
		return r
	}
	r.BytesPerVisit = float64(cloud.State.Bytes) / float64(cloud.State.Msgs)
	r.Days = health.Runway(r.FreeBytes, *st.Visits.AcceptedLast24h, r.BytesPerVisit)
	return r
}

// appliances lists every site that sent a heartbeat since the gateway
// started, marked connected while its heartbeats are recent and a
// leafnode link is up.
func (s *statusService) appliances(now time.Time) []ApplianceStatus {
	leafNames := map[string]bool{}
	if leafz, err := s.g.ns.Leafz(nil); err == nil {
		for _, l := range leafz.Leafs {
			leafNames[l.Name] = true
		}
	}
	list := []ApplianceStatus{}
	for _, b := range s.g.beats.list() {
		age := now.Sub(b.receivedAt).Seconds()
		received := b.receivedAt.UTC()
		a := ApplianceStatus{
			Site: b.msg.Site, Server: b.msg.Server, Version: b.msg.Version,
			// In a cluster the site's link may end on another node, whose
			// routes bring the heartbeats here.
			Connected:      (leafNames[b.msg.Server] || s.g.cfg.Cluster.Enabled()) && now.Sub(b.receivedAt) < heartbeat.Late,
			ConnectedSince: b.msg.LinkUpSince, LastHeartbeat: &received, HeartbeatAgeSeconds: &age,
			State: b.msg.State, Summary: b.msg.Summary, PendingCommit: b.msg.PendingCommit,
			Committed: b.msg.Committed, DeadLetters: b.msg.DeadLetters, LastCommitAt: b.msg.LastCommitAt,
			DatabaseReachable: b.msg.DatabaseReachable,
			ClockSkewSeconds:  b.msg.SentAt.Sub(b.receivedAt).Seconds(),
		}
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Site < list[j].Site })
	return list
}

// notSourced counts the cloud visits after the last sequence that the
// site's stream holds. While a leafnode link is up, the gateway reads that
// sequence from the site's stream itself. Otherwise it takes the one in
// the site's last heartbeat, which is still right because nothing is
// sourced while the link is down. Only a gateway that has not heard from
// the site since its start cannot tell.
func (s *statusService) notSourced(ctx context.Context, stream jetstream.Stream, cloud *jetstream.StreamInfo, now time.Time) NotSourcedStatus {
	ns := NotSourcedStatus{}
	if cloud == nil {
		ns.Note = "the cloud stream did not respond"
		return ns
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()

	sourced, err := s.siteSourced(ctx)
	switch {
	case err == nil:
		ns.Note = "read from the site's stream"
	default:
		beat, ok := s.g.beats.site(s.g.cfg.NATS.SiteDomain)
		if !ok {
			ns.Note = fmt.Sprintf("no heartbeat from site %q since the gateway started, and its stream did not respond", s.g.cfg.NATS.SiteDomain)
			return ns
		}
		sourced = beat.msg.SourcedSequence
		ns.Note = "from the site's heartbeat " + now.Sub(beat.receivedAt).Round(time.Second).String() + " ago"
	}

	ns.Known = true
	waiting, err := backlog.After(ctx, stream, cloud, sourced)
	ns.Pending = waiting.Count
	if err != nil {
		ns.Note += "; " + err.Error()
	}
	if v := waiting.First; v != nil {
		at, age := v.AcceptedAt, max(0, now.Sub(v.AcceptedAt).Seconds())
		ns.OldestAcceptedAt, ns.OldestAgeSeconds = &at, &age
	}
	return ns
}

// siteSourced reads the sourced position from the site's stream, through
// the leafnode link.
func (s *statusService) siteSourced(ctx context.Context) (uint64, error) {
	if s.g.ns.NumLeafNodes() == 0 {
		return 0, errors.New("no leafnode link")
	}
	site, err := s.siteJS.Stream(ctx, streams.Visits)
	if err != nil {
		return 0, fmt.Errorf("read the site's stream %s: %w", streams.Visits, err)
	}
	return backlog.SourcedSequence(ctx, site, site.CachedInfo().State.LastSeq)
}

// gatewayWarnings names every problem that the figures show.
func gatewayWarnings(st Status, noLeafAt, now time.Time) []health.Warning {
	var ws []health.Warning
	if !st.Store.JetStreamHealthy || !st.Stream.Known {
		ws = append(ws, health.Warning{Code: health.CodeJetStreamDown, Stops: true,
			Message: "JetStream unhealthy, visits get 503: " + strings.TrimPrefix(st.Store.Error+"; "+st.Stream.Error, "; ")})
	}
	if st.Store.JetStreamHealthy && !st.Store.Writable {
		ws = append(ws, health.Warning{Code: health.CodeStoreNotWritable, Stops: true, Message: "store not writable: " + st.Store.Error})
	}
	if st.Stream.Known && st.Stream.MaxBytes > 0 && st.Stream.FilledPercent >= 99 {
		ws = append(ws, health.Warning{Code: health.CodeStreamFull, Stops: true,
			Message: "cloud stream full, new visits get 503 and wait on the phones"})
	} else if st.Stream.FilledPercent > health.StoreFullPercent || st.Store.FilesystemUsedPercent > health.StoreFullPercent {
		ws = append(ws, health.Warning{Code: health.CodeStoreFull,
			Message: fmt.Sprintf("store above %.0f %%: stream %.0f %%, disk %.0f %%", health.StoreFullPercent, st.Stream.FilledPercent, st.Store.FilesystemUsedPercent)})
	}
	if d := st.Runway.Days; d != nil && *d < health.RunwayLowDays {
		ws = append(ws, health.Warning{Code: health.CodeRunwayLow, Message: fmt.Sprintf("cloud buffer runway %.1f days", *d)})
	}
	if st.Stream.Known && st.Stream.ReplicasCurrent < st.Stream.Replicas {
		ws = append(ws, replicasWarning(st.Stream))
	}
	if !st.SiteLinked {
		ws = append(ws, health.Warning{Code: health.CodeNoAppliance, Message: "no appliance connected; visits wait in the cloud", Since: health.At(noLeafAt)})
	}
	for _, a := range st.Appliances {
		ws = append(ws, applianceWarnings(a, st.SiteLinked, now)...)
	}
	if v := st.NotSourced.OldestAcceptedAt; v != nil && now.Sub(*v) > health.MaxPendingAge {
		ws = append(ws, health.Warning{Code: health.CodeVisitsDelayed,
			Message: fmt.Sprintf("%d visits not yet sourced by the site", st.NotSourced.Pending), Since: v})
	}
	return ws
}

// replicasWarning names the cluster nodes whose replica of the cloud stream
// is down or behind. Without a majority of current replicas the stream
// takes no visits.
func replicasWarning(stream StreamStatus) health.Warning {
	lost := strings.Join(stream.ReplicasLost, ", ")
	if lost == "" {
		lost = "unknown nodes"
	}
	return health.Warning{Code: health.CodeReplicasLost, Stops: 2*stream.ReplicasCurrent <= stream.Replicas,
		Message: fmt.Sprintf("cloud stream has %d of %d replicas current; down or behind: %s", stream.ReplicasCurrent, stream.Replicas, lost)}
}

func applianceWarnings(a ApplianceStatus, linked bool, now time.Time) []health.Warning {
	var ws []health.Warning
	if linked && a.LastHeartbeat != nil && now.Sub(*a.LastHeartbeat) > heartbeat.Late {
		ws = append(ws, health.Warning{Code: health.CodeHeartbeatLate,
			Message: fmt.Sprintf("site %s: no heartbeat", a.Site), Since: a.LastHeartbeat})
	}
	if a.Connected && a.State != "" && a.State != health.Flowing {
		reasons := strings.TrimPrefix(a.Summary, string(a.State)+": ")
		message := fmt.Sprintf("site %s reports %s", a.Site, reasons)
		if a.State == health.Stopped {
			message = fmt.Sprintf("site %s stopped: %s", a.Site, reasons)
		}
		ws = append(ws, health.Warning{Code: health.CodeApplianceDegraded, Message: message})
	}
	if skew := a.ClockSkewSeconds; a.Connected && (skew > health.MaxClockSkew.Seconds() || skew < -health.MaxClockSkew.Seconds()) {
		ws = append(ws, health.Warning{Code: health.CodeClockSkew,
			Message: fmt.Sprintf("site %s: clock differs from the gateway's by %.0f s", a.Site, skew)})
	}
	return ws
}
