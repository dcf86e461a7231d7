package directory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Cache is an in-memory copy of a directory bucket, kept current by a
// watcher. The gateway validates and authenticates from it, so it keeps
// working while the site is offline.
type Cache struct {
	mu       sync.RWMutex
	users    map[string]User // by username
	clients  map[string]Client
	devices  map[int64]Device
	lookups  []byte // JSON of clients and devices, rebuilt on change
	etag     string
	synced   bool
	revision uint64
	logger   *slog.Logger
}

// NewCache returns an empty cache.
func NewCache(logger *slog.Logger) *Cache {
	c := &Cache{
		users:   map[string]User{},
		clients: map[string]Client{},
		devices: map[int64]Device{},
		logger:  logger,
	}
	c.rebuildLookups()
	return c
}

// Watch follows the bucket until ctx ends. It returns once the initial
// values are loaded, and keeps updating the cache in the background.
func (c *Cache) Watch(ctx context.Context, kv jetstream.KeyValue) error {
	watcher, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch directory bucket: %w", err)
	}
	initial := make(chan struct{})
	go c.follow(ctx, watcher, initial)

	select {
	case <-initial:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Cache) follow(ctx context.Context, watcher jetstream.KeyWatcher, initial chan struct{}) {
	defer watcher.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case entry, ok := <-watcher.Updates():
			if !ok {
				return
			}
			if entry == nil {
				// A nil entry marks the end of the initial values.
				c.markSynced()
				close(initial)
				continue
			}
			c.apply(entry)
		}
	}
}

func (c *Cache) markSynced() {
	c.mu.Lock()
	c.synced = true
	c.mu.Unlock()
}

// apply stores one bucket entry. A value that does not decode is skipped
// with a warning: one bad record must not take the directory down.
func (c *Cache) apply(entry jetstream.KeyValueEntry) {
	kind, name := keyKind(entry.Key())
	deleted := entry.Operation() != jetstream.KeyValuePut

	c.mu.Lock()
	defer c.mu.Unlock()
	c.revision = entry.Revision()

	var err error
	switch kind {
	case "users":
		err = applyEntry(c.users, name, entry.Value(), deleted)
	case "clients":
		err = applyEntry(c.clients, name, entry.Value(), deleted)
		c.rebuildLookups()
	case "devices":
		err = applyDevice(c.devices, entry.Value(), name, deleted)
		c.rebuildLookups()
	default:
		err = errors.New("unknown key kind")
	}
	if err != nil {
		c.logger.Warn("skip directory entry", "key", entry.Key(), "error", err)
	}
}

func applyEntry[T any](m map[string]T, name string, value []byte, deleted bool) error {
	if deleted {
		delete(m, name)
		return nil
	}
	var v T
	if err := json.Unmarshal(value, &v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	m[name] = v
	return nil
}

func applyDevice(m map[int64]Device, value []byte, name string, deleted bool) error {
	if deleted {
		id, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			return fmt.Errorf("parse device id %q: %w", name, err)
		}
		delete(m, id)
		return nil
	}
	var d Device
	if err := json.Unmarshal(value, &d); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	m[d.ID] = d
	return nil
}

// Lookups is the clinic list and device catalog as the phone receives them.
type Lookups struct {
	Clients []Client `json:"clients"`
	Devices []Device `json:"devices"`
}

// rebuildLookups renders the lookups once per change, so that serving them
// costs no work per request. The caller holds c.mu.
func (c *Cache) rebuildLookups() {
	l := Lookups{Clients: make([]Client, 0, len(c.clients)), Devices: make([]Device, 0, len(c.devices))}
	for _, cl := range c.clients {
		l.Clients = append(l.Clients, cl)
	}
	for _, d := range c.devices {
		l.Devices = append(l.Devices, d)
	}
	sort.Slice(l.Clients, func(i, j int) bool { return l.Clients[i].Name < l.Clients[j].Name })
	sort.Slice(l.Devices, func(i, j int) bool { return l.Devices[i].ID < l.Devices[j].ID })

	b, _ := json.Marshal(l)
	sum := sha256.Sum256(b)
	c.lookups = b
	c.etag = `"` + hex.EncodeToString(sum[:12]) + `"`
}

// Lookups returns the rendered lookups JSON and its ETag.
func (c *Cache) Lookups() (body []byte, etag string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lookups, c.etag
}

// User returns the user with the given username.
func (c *Cache) User(username string) (User, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.users[username]
	return u, ok
}

// HasClient reports whether the clinic exists.
func (c *Cache) HasClient(id string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.clients[id]
	return ok
}

// HasDevice reports whether the device is in the catalog.
func (c *Cache) HasDevice(id int64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.devices[id]
	return ok
}

// Synced reports whether the initial values have been loaded.
func (c *Cache) Synced() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.synced
}

// Counts returns how many users, clinics and devices the cache holds.
func (c *Cache) Counts() (users, clients, devices int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.users), len(c.clients), len(c.devices)
}
