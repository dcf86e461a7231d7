package gateway

import (
	"sync"
	"time"
)

// loginThrottle limits failed logins per username and per client address,
// so that guessing passwords is slow whichever of the two an attacker varies.
type loginThrottle struct {
	mu       sync.Mutex
	failures map[string][]time.Time
	limit    int
	window   time.Duration
}

func newLoginThrottle(limit int, window time.Duration) *loginThrottle {
	return &loginThrottle{failures: map[string][]time.Time{}, limit: limit, window: window}
}

// blocked reports whether any of the keys has reached the limit.
func (t *loginThrottle) blocked(now time.Time, keys ...string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if len(t.recent(k, now)) >= t.limit {
			return true
		}
	}
	return false
}

// fail records a failed login for each key.
func (t *loginThrottle) fail(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		t.failures[k] = append(t.recent(k, now), now)
	}
	// Bound memory under a spray of usernames: drop keys with no recent
	// failure once the map grows.
	if len(t.failures) > 10000 {
		for k := range t.failures {
			if len(t.recent(k, now)) == 0 {
				delete(t.failures, k)
			}
		}
	}
}

// recent returns the failures of key inside the window. The caller holds t.mu.
func (t *loginThrottle) recent(key string, now time.Time) []time.Time {
	list := t.failures[key]
	i := 0
	for i < len(list) && now.Sub(list[i]) > t.window {
		i++
	}
	list = list[i:]
	if len(list) == 0 {
		delete(t.failures, key)
		return nil
	}
	t.failures[key] = list
	return list
}
