package visit

import (
	"time"

	"github.com/google/uuid"
)

// ClockSkew is how far in the future a visit's dateTime may lie, to allow for
// a phone whose clock runs ahead of the gateway's.
const ClockSkew = 15 * time.Minute

// earliest is the oldest dateTime accepted. It catches a phone that lost its
// clock (1970) without rejecting old visits typed in late.
var earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Directory answers the lookups that validation needs. The gateway backs it
// with its replicated copy of the on-prem master data.
type Directory interface {
	HasClient(id string) bool
	HasDevice(id int64) bool
}

// Validate checks a decoded visit against the logged-in user, the directory
// and the gateway's clock, and returns every broken rule as Errors.
func Validate(v Visit, userID string, dir Directory, now time.Time) error {
	var errs Errors

	if v.UserID != "" && v.UserID != userID {
		errs.add("userId", "must be the logged-in user's id %q, got %q", userID, truncate(v.UserID, 40))
	}
	if v.ClientID != "" && !dir.HasClient(v.ClientID) {
		errs.add("clientId", "clinic %q is not in the clinic list", truncate(v.ClientID, 40))
	}
	for _, id := range v.ProposedDevices {
		if !dir.HasDevice(id) {
			errs.add("proposedDevices", "device %d is not in the device catalog", id)
		}
	}
	if !v.DateTime.IsZero() {
		if v.DateTime.After(now.Add(ClockSkew)) {
			errs.add("dateTime", "must not be more than %s in the future, got %s", ClockSkew, v.DateTime.Format(time.RFC3339))
		}
		if v.DateTime.Before(earliest) {
			errs.add("dateTime", "must be after %s, got %s", earliest.Format(time.RFC3339), v.DateTime.Format(time.RFC3339))
		}
	}

	if len(errs) > 0 {
		return errs
	}
	return nil
}

// namespace is the UUID namespace of visitIds that the gateway derives for
// clients that send none. Changing it would give old retries new ids.
var namespace = uuid.MustParse("6d1f3a52-4c1e-4bb7-9c55-0e2f4f3d7a11")

// DeriveID returns the visitId to use when the phone sent none. An
// Idempotency-Key that is a UUID is used as is; any other key, or no key,
// yields a name-based UUID, so a retried identical post maps to the same id.
func DeriveID(v Visit, idempotencyKey string) string {
	if idempotencyKey != "" {
		if id, err := uuid.Parse(idempotencyKey); err == nil && len(idempotencyKey) == 36 {
			return id.String()
		}
		return uuid.NewSHA1(namespace, []byte("key\x00"+v.UserID+"\x00"+idempotencyKey)).String()
	}
	name := "visit\x00" + v.UserID + "\x00" + v.ClientID + "\x00" + v.DateTime.UTC().Format(time.RFC3339Nano)
	return uuid.NewSHA1(namespace, []byte(name)).String()
}
