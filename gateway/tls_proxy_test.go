package gateway

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// loginFrom posts a failing login as username with forwardedFor in
// X-Forwarded-For and returns the status.
func loginFrom(t *testing.T, g *Gateway, username, forwardedFor string) int {
	t.Helper()
	body := fmt.Sprintf(`{"username": %q, "password": "wrong"}`, username)
	req, err := http.NewRequest(http.MethodPost, g.URL()+"/api/v1/login", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", forwardedFor)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The login throttle counts failures per client address. Behind a trusted
// proxy the address comes from X-Forwarded-For; from anyone else the
// header is ignored, so a client cannot dodge the throttle by inventing
// addresses.
func TestTLSOffTrustsForwardedForFromProxiesOnly(t *testing.T) {
	tests := []struct {
		name           string
		trustedProxies []string
		wantOther      int // status of a login from another forwarded address
	}{
		{"trusted proxy", []string{"127.0.0.1"}, http.StatusUnauthorized},
		{"untrusted client", nil, http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tlsCfg := defaultTLSConfig()
			tlsCfg.TrustedProxies = tt.trustedProxies
			g := startTLSGateway(t, tlsCfg, freePort(t), nil)

			for i := range 10 {
				if status := loginFrom(t, g, fmt.Sprintf("nobody%d", i), "203.0.113.7"); status != http.StatusUnauthorized {
					t.Fatalf("failed login %d: status %d, want 401", i, status)
				}
			}
			if status := loginFrom(t, g, "nobody10", "203.0.113.7"); status != http.StatusTooManyRequests {
				t.Errorf("11th failed login from one address: status %d, want 429", status)
			}
			if status := loginFrom(t, g, "nobody11", "198.51.100.9"); status != tt.wantOther {
				t.Errorf("login from another forwarded address: status %d, want %d", status, tt.wantOther)
			}
		})
	}
}
