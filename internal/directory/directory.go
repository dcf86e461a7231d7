// Package directory holds the master data that salesmen need in the cloud:
// users, clinics (clients) and the device catalog. The on-prem database owns
// it; the appliance publishes it to a key-value bucket that the gateway
// mirrors.
package directory

import (
	"strconv"
	"strings"
	"time"
)

// User is a salesman's account.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	// PasswordHash is a bcrypt hash.
	PasswordHash string `json:"passwordHash"`
	Disabled     bool   `json:"disabled"`
	// PasswordChangedAt revokes every token issued before it.
	PasswordChangedAt time.Time `json:"passwordChangedAt"`
}

// Client is a clinic that salesmen visit.
type Client struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	City string `json:"city"`
}

// Device is an entry of the device catalog.
type Device struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

// Key prefixes in the bucket. Users are keyed by username because login
// looks them up by it.
const (
	userPrefix   = "users."
	clientPrefix = "clients."
	devicePrefix = "devices."
)

// UserKey is the bucket key of a user.
func UserKey(username string) string { return userPrefix + username }

// ClientKey is the bucket key of a clinic.
func ClientKey(id string) string { return clientPrefix + id }

// DeviceKey is the bucket key of a device.
func DeviceKey(id int64) string { return devicePrefix + strconv.FormatInt(id, 10) }

// keyKind splits a bucket key into its kind and name.
func keyKind(key string) (kind, name string) {
	kind, name, ok := strings.Cut(key, ".")
	if !ok {
		return "", ""
	}
	return kind, name
}
