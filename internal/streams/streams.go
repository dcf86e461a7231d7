// Package streams names the JetStream streams, subjects and buckets that the
// gateway and the appliance share, and builds their configurations, so that
// both sides agree on them in one place.
package streams

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the streams and buckets. A stream of the same name exists on each
// side, and the JetStream domain distinguishes them.
const (
	Visits      = "VISITS"
	Receipts    = "RECEIPTS"
	DeadLetters = "DEADLETTERS"
	Directory   = "directory"

	// CloudDomain is the gateway's JetStream domain.
	CloudDomain = "cloud"

	// Committer is the durable consumer on the site's visit stream that
	// commits visits to PostgreSQL.
	Committer = "committer"
)

// Headers carried by visit messages.
const (
	// HeaderContentHash carries visit.Visit.Hash, so that a retry can be
	// compared with the stored visit without decoding it.
	HeaderContentHash = "Visitrelay-Content-Hash"
	// HeaderReason and HeaderAttempts describe a dead letter.
	HeaderReason   = "Visitrelay-Reason"
	HeaderAttempts = "Visitrelay-Attempts"
)

// VisitSubject is the subject of one visit in the cloud stream. The user id
// in the subject lets the gateway list a salesman's visits with a filter;
// the visit id lets it find one visit by subject.
func VisitSubject(userID, visitID string) string {
	return "visits." + userID + "." + visitID
}

// VisitLookupSubject matches the visit with the given id, for any user.
func VisitLookupSubject(visitID string) string {
	return "visits.*." + visitID
}

// UserVisitsSubject matches all visits of one user.
func UserVisitsSubject(userID string) string {
	return "visits." + userID + ".*"
}

// ReceiptSubject is the subject of the receipt for one visit. Like visits,
// receipts carry the user id so that the gateway can list a user's receipts
// with one filter.
func ReceiptSubject(userID, visitID string) string {
	return "receipts." + userID + "." + visitID
}

// UserReceiptsSubject matches all receipts of one user.
func UserReceiptsSubject(userID string) string {
	return "receipts." + userID + ".*"
}

// DeadLetterSubject is the subject of the dead letter for one visit.
func DeadLetterSubject(visitID string) string {
	return "deadletters." + visitID
}

// Receipt is the record that a visit is committed on-prem.
type Receipt struct {
	VisitID     string    `json:"visitId"`
	UserID      string    `json:"userId"`
	CommittedAt time.Time `json:"committedAt"`
}

// CloudVisitsConfig is the gateway's stream of accepted visits. It keeps
// every visit for retention, so an appliance that is down for less than that
// loses nothing, and rejects new visits when maxBytes is reached instead of
// discarding accepted ones.
func CloudVisitsConfig(retention time.Duration, maxBytes int64) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Visits,
		Description: "visits accepted by the gateway, waiting to be sourced on-prem",
		Subjects:    []string{"visits.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxAge:      retention,
		MaxBytes:    maxBytes,
		// A retry of the same visitId within the window is answered from
		// the stream's duplicate tracking; later ones from a lookup by subject.
		Duplicates: time.Hour,
		// Lookups by subject before each publish are direct gets, which
		// skip the JetStream API queue.
		AllowDirect: true,
		Replicas:    1,
	}
}

// SiteVisitsConfig is the appliance's copy of the cloud stream. It has no
// subjects of its own: a stream capturing the same subjects on both sides
// would get every visit twice. It keeps a tail after commit so that the
// source position survives restarts and recent visits can be replayed.
func SiteVisitsConfig(tail time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Visits,
		Description: "visits sourced from the cloud, committed to PostgreSQL by the committer",
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      tail,
		Sources: []*jetstream.StreamSource{{
			Name:   Visits,
			Domain: CloudDomain,
		}},
		Replicas: 1,
	}
}

// SiteReceiptsConfig is the appliance's stream of receipts. The cloud sources
// it, so a receipt written while the link is down reaches the cloud later.
func SiteReceiptsConfig(retention time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Receipts,
		Description: "commit receipts, sourced by the cloud",
		Subjects:    []string{"receipts.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      retention,
		Duplicates:  time.Hour,
		// The committer publishes the receipts of one commit as one atomic
		// batch, with one fsync for all of them.
		AllowAtomicPublish: true,
		Replicas:           1,
	}
}

// CloudReceiptsConfig is the gateway's copy of a site's receipts. Like the
// site's visit stream it has no subjects, only a source.
func CloudReceiptsConfig(siteDomain string, retention time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Receipts,
		Description: "commit receipts sourced from the site",
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      retention,
		Sources: []*jetstream.StreamSource{{
			Name:   Receipts,
			Domain: siteDomain,
		}},
		Replicas: 1,
	}
}

// SiteDeadLettersConfig is the appliance's stream of visits that the
// database rejected for their content. It has no age limit: a dead letter
// stays until someone replays or discards it.
func SiteDeadLettersConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DeadLetters,
		Description: "visits the database rejected for their content, waiting for a replay",
		Subjects:    []string{"deadletters.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		// A visit dead-lettered again replaces its earlier dead letter.
		MaxMsgsPerSubject: 1,
		Replicas:          1,
	}
}

// SiteDirectoryConfig is the on-prem key-value bucket of master data.
func SiteDirectoryConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Directory,
		Description: "users, clinics and devices, published from the on-prem database",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    1,
	}
}

// CloudDirectoryConfig mirrors the site's bucket, so that salesmen can log in
// and pick clinics while the site is offline.
func CloudDirectoryConfig(siteDomain string) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Directory,
		Description: "mirror of the site's directory",
		Storage:     jetstream.FileStorage,
		Replicas:    1,
		Mirror: &jetstream.StreamSource{
			Name:   Directory,
			Domain: siteDomain,
		},
	}
}
