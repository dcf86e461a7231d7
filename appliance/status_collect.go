package appliance

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/backlog"
	"github.com/visitrelay/visitrelay/internal/health"
	"github.com/visitrelay/visitrelay/internal/heartbeat"
	"github.com/visitrelay/visitrelay/internal/streams"
)

// deadLettersShown is how many dead letters the page lists, newest first.
// The command line lists them all.
const deadLettersShown = 20

// schemaCheckInterval is how often the schema version is read again while
// the database responds.
const schemaCheckInterval = time.Minute

// hopReading is a hop's backlog and its oldest visit.
type hopReading struct {
	hop    HopStatus
	oldest *PendingVisit
}

// linkTracker follows the leafnode link between refreshes.
type linkTracker struct {
	connected  bool
	everUp     bool
	since      time.Time
	reconnects int64
}

// readLeafnode reads the link state and reports whether it changed since
// the last refresh.
func (s *statusService) readLeafnode(now time.Time) (LeafnodeStatus, bool) {
	up := s.a.ns.LeafConnected()
	s.mu.Lock()
	t := &s.link
	changed := up != t.connected
	if changed {
		if up && t.everUp {
			t.reconnects++
		}
		t.connected, t.since = up, now
		t.everUp = t.everUp || up
	}
	ls := LeafnodeStatus{Connected: t.connected, Since: t.since.UTC(), Reconnects: t.reconnects}
	s.mu.Unlock()

	if changed {
		if up {
			s.logger.Info("leafnode link up", "reconnects", ls.Reconnects)
		} else {
			s.logger.Warn("leafnode link down; visits wait in the cloud until it is back")
		}
	}
	if up {
		if leafz, err := s.a.ns.Leafz(nil); err == nil && len(leafz.Leafs) > 0 {
			l := leafz.Leafs[0]
			ls.Remote = fmt.Sprintf("%s at %s:%d", l.Name, l.IP, l.Port)
			ls.RTT = l.RTT
		}
	}
	return ls, changed
}

// databaseTracker follows the database between refreshes.
type databaseTracker struct {
	known          bool
	reachable      bool
	since          time.Time
	schemaVersion  *int64
	schemaOutdated bool
	schemaAt       time.Time
	schemaErr      string
}

func (s *statusService) readDatabase(ctx context.Context, now time.Time) DatabaseStatus {
	pingCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	err := s.a.pool.Ping(pingCtx)
	cancel()
	if ctx.Err() != nil {
		return s.snapshot().Database
	}

	s.mu.Lock()
	t := &s.db
	wasDown := t.known && !t.reachable
	changed := !t.known || t.reachable != (err == nil)
	if changed {
		t.known, t.reachable, t.since = true, err == nil, now
	}
	checkSchema := err == nil && now.Sub(t.schemaAt) >= schemaCheckInterval
	s.mu.Unlock()

	switch {
	case changed && err != nil:
		s.logger.Warn("database unreachable; visits wait in the on-prem stream", "error", err)
	case changed && wasDown:
		s.logger.Info("database reachable again")
	}
	if checkSchema {
		s.readSchema(ctx, now)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	ds := DatabaseStatus{Reachable: t.reachable, Since: t.since.UTC(), SchemaVersion: t.schemaVersion, SchemaOutdated: t.schemaOutdated}
	if err != nil {
		ds.Error = err.Error()
	} else if t.schemaErr != "" {
		ds.Error = t.schemaErr
	}
	if down := s.a.committer.dbDownSince.Load(); down != 0 {
		at := time.Unix(0, down).UTC()
		ds.CommitsFailingSince = &at
	}
	return ds
}

func (s *statusService) readSchema(ctx context.Context, now time.Time) {
	schemaCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	version, err := CheckSchema(schemaCtx, s.a.pool)
	cancel()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.db.schemaAt = now
	s.db.schemaErr = ""
	if err != nil {
		s.db.schemaErr = err.Error()
	}
	if err != nil && !errors.Is(err, ErrSchemaOutdated) {
		return
	}
	s.db.schemaVersion = &version
	s.db.schemaOutdated = err != nil
}

func (s *statusService) readStore() StoreStatus {
	dir := filepath.Join(s.a.cfg.StateDir, "jetstream")
	st := StoreStatus{Dir: dir}
	var errs []string

	hs := s.a.ns.Healthz(&server.HealthzOptions{})
	st.JetStreamHealthy = hs != nil && hs.Error == "" && hs.StatusCode == 200
	if !st.JetStreamHealthy && hs != nil {
		errs = append(errs, hs.Error)
	}
	if jsz, err := s.a.ns.Jsz(nil); err == nil {
		st.UsedBytes = jsz.Store
	}
	if st.MaxBytes = s.a.cfg.NATS.MaxStore; st.MaxBytes > 0 {
		st.UsedPercent = 100 * float64(st.UsedBytes) / float64(st.MaxBytes)
	}
	if disk, err := health.StatDisk(dir); err == nil {
		st.FilesystemAvailableBytes = disk.AvailableBytes
		st.FilesystemTotalBytes = disk.TotalBytes
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

func (s *statusService) readCommits() CommitStatus {
	c := s.a.committer
	cs := CommitStatus{
		Committed:    c.committed.Load(),
		Duplicates:   c.duplicates.Load(),
		Redeliveries: c.redeliveries.Load(),
	}
	if last := c.lastCommit.Load(); last != 0 {
		at := time.Unix(0, last).UTC()
		cs.LastCommitAt = &at
	}
	return cs
}

// sourcedPosition is the last cloud sequence that the site's stream holds,
// read from the Nats-Stream-Source header of the site's last message.
type sourcedPosition struct {
	siteLastSeq   uint64
	cloudSequence uint64
	known         bool
}

// updateSourced reads the sourced position again when the site's stream
// has grown since the last refresh.
func (s *statusService) updateSourced(ctx context.Context, site *jetstream.StreamInfo, stream jetstream.Stream) {
	s.mu.Lock()
	current := s.sourced
	s.mu.Unlock()
	if current.known && current.siteLastSeq == site.State.LastSeq {
		return
	}

	seq, err := backlog.SourcedSequence(ctx, stream, site.State.LastSeq)
	next := sourcedPosition{siteLastSeq: site.State.LastSeq, cloudSequence: seq, known: err == nil}
	s.mu.Lock()
	s.sourced = next
	s.mu.Unlock()
}

// readSiteStream reads the site's VISITS stream and, when it has grown,
// the cloud sequence it has sourced up to.
func (s *statusService) readSiteStream(ctx context.Context) (jetstream.Stream, *jetstream.StreamInfo) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	stream, err := s.a.js.Stream(ctx, streams.Visits)
	if err != nil {
		return nil, nil
	}
	info := stream.CachedInfo()
	s.updateSourced(ctx, info, stream)
	return stream, info
}

// readSourceHop reads the cloud stream through the leafnode link and
// counts the visits after the last one sourced.
func (s *statusService) readSourceHop(ctx context.Context, site *jetstream.StreamInfo, linkUp bool, now time.Time) (hopReading, *jetstream.StreamInfo) {
	r := hopReading{hop: HopStatus{Name: hopSource, Title: "in the cloud, not yet on-prem"}}
	if !linkUp {
		r.hop.Note = "not known while the leaf link is down; new visits wait in the cloud"
		return r, nil
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	stream, err := s.cloud.Stream(ctx, streams.Visits)
	if err != nil {
		r.hop.Note = "the cloud stream did not respond: " + err.Error()
		s.sourceHopFromReply(&r, now)
		return r, nil
	}
	cloud := stream.CachedInfo()

	s.mu.Lock()
	sourced := s.sourced
	s.mu.Unlock()
	if !sourced.known {
		if site == nil || len(site.Sources) == 0 {
			r.hop.Note = "the on-prem stream did not respond"
			return r, cloud
		}
		r.hop.Known, r.hop.Pending = true, site.Sources[0].Lag
		r.hop.Note = "from the source's lag, which the engine reports; the age is not known"
		return r, cloud
	}

	r.hop.Known = true
	waiting, err := backlog.After(ctx, stream, cloud, sourced.cloudSequence)
	r.hop.Pending = waiting.Count
	if err != nil {
		r.hop.Note = err.Error()
		s.sourceHopFromReply(&r, now)
	}
	r.setOldest(waiting.First, now)
	return r, cloud
}

// sourceHopFromReply fills in what the appliance could not read of the
// cloud stream from the gateway's last heartbeat reply, if it is recent.
// A hub that restricts the site's leafnode user to the subjects sourcing
// needs may deny the appliance the cloud stream's messages.
func (s *statusService) sourceHopFromReply(r *hopReading, now time.Time) {
	s.mu.Lock()
	reply := s.reply
	s.mu.Unlock()
	if reply.notSourced == nil || now.Sub(reply.at) > heartbeat.Late {
		return
	}
	if !r.hop.Known {
		r.hop.Known, r.hop.Pending = true, *reply.notSourced
	}
	if reply.oldestNotSourcedAt != nil && r.hop.Pending > 0 {
		r.setOldest(&backlog.Visit{AcceptedAt: *reply.oldestNotSourcedAt}, now)
	}
	r.hop.Note += fmt.Sprintf("; figures from the gateway's heartbeat reply %s ago", now.Sub(reply.at).Round(time.Second))
}

// setOldest records the oldest visit waiting at the hop.
func (r *hopReading) setOldest(v *backlog.Visit, now time.Time) {
	if v == nil {
		return
	}
	r.oldest = &PendingVisit{VisitID: v.VisitID, Hop: r.hop.Name, AcceptedAt: v.AcceptedAt,
		AgeSeconds: max(0, now.Sub(v.AcceptedAt).Seconds())}
	r.hop.OldestAcceptedAt, r.hop.OldestAgeSeconds = &r.oldest.AcceptedAt, &r.oldest.AgeSeconds
}

// readCommitHop counts the visits in the site's stream that the committer
// has not acked: those not yet delivered and those in flight.
func (s *statusService) readCommitHop(ctx context.Context, stream jetstream.Stream, now time.Time) hopReading {
	r := hopReading{hop: HopStatus{Name: hopCommit, Title: "on-prem, not yet in the database"}}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	consumer, err := s.a.js.Consumer(ctx, streams.Visits, streams.Committer)
	if err != nil {
		r.hop.Note = "the committer's consumer did not respond: " + err.Error()
		return r
	}
	info := consumer.CachedInfo()
	r.hop.Known = true
	r.hop.Pending = info.NumPending + uint64(info.NumAckPending)
	if r.hop.Pending == 0 || stream == nil {
		return r
	}
	msg, err := stream.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(backlog.AllVisits))
	if err != nil {
		r.hop.Note = "the oldest waiting visit could not be read: " + err.Error()
		return r
	}
	r.setOldest(backlog.Describe(msg), now)
	return r
}

// deadLetterCache keeps the listed dead letters until the stream changes.
type deadLetterCache struct {
	lastSeq, msgs uint64
	list          []DeadLetterEntry
	truncated     bool
	oldest        time.Time
}

func (s *statusService) readDeadLetters(ctx context.Context) DeadLetterStatus {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	stream, err := s.a.js.Stream(ctx, streams.DeadLetters)
	if err != nil {
		return s.snapshot().DeadLetters
	}
	state := stream.CachedInfo().State

	s.mu.Lock()
	cached := s.deadLetters
	s.mu.Unlock()
	if cached.list != nil && cached.lastSeq == state.LastSeq && cached.msgs == state.Msgs {
		return DeadLetterStatus{Count: state.Msgs, List: cached.list, Truncated: cached.truncated}
	}

	next := deadLetterCache{lastSeq: state.LastSeq, msgs: state.Msgs, list: []DeadLetterEntry{}, oldest: state.FirstTime}
	// Deleted sequences are skipped. The bound keeps a stream with many
	// of them from costing a request each.
	for seq, tries := state.LastSeq, 0; state.Msgs > 0 && seq >= state.FirstSeq && seq > 0 && tries < 10*deadLettersShown; seq, tries = seq-1, tries+1 {
		if len(next.list) == deadLettersShown {
			next.truncated = true
			break
		}
		msg, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return s.snapshot().DeadLetters
		}
		dl := parseDeadLetter(msg)
		next.list = append(next.list, DeadLetterEntry{VisitID: dl.VisitID, UserID: dl.Envelope.UserID,
			ClientID: dl.Envelope.ClientID, Reason: dl.Reason, Attempts: dl.Attempts, At: dl.Time.UTC()})
	}
	next.truncated = next.truncated || uint64(len(next.list)) < state.Msgs

	s.mu.Lock()
	s.deadLetters = next
	s.mu.Unlock()
	return DeadLetterStatus{Count: state.Msgs, List: next.list, Truncated: next.truncated}
}

func deadLetterHop(dl DeadLetterStatus, oldest time.Time, now time.Time) HopStatus {
	h := HopStatus{Name: hopDeadLetters, Title: "in dead letters, rejected by the database", Known: true, Pending: dl.Count}
	if dl.Count > 0 && !oldest.IsZero() {
		at := oldest.UTC()
		age := max(0, now.Sub(at).Seconds())
		h.OldestAcceptedAt, h.OldestAgeSeconds = &at, &age
		h.Note = "the age counts from when the visit moved to dead letters"
	}
	return h
}
