package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visitrelay/visitrelay/appliance"
	"github.com/visitrelay/visitrelay/internal/directory"
	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// directoryTimeout bounds the wait for a change in the on-prem users table
// to reach the gateway's copy of the directory.
const directoryTimeout = 30 * time.Second

// login posts a username and password and returns the response.
func login(t *testing.T, e *relaytest.Env, username, password string) relaytest.Response {
	t.Helper()
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		t.Fatalf("encode login: %v", err)
	}
	resp, err := send(e.URL, http.MethodPost, "/api/v1/login", "", "application/json", body)
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return resp
}

// loginToken logs in with a password that must be accepted and returns the
// token.
func loginToken(t *testing.T, e *relaytest.Env, username, password string) string {
	t.Helper()
	resp := login(t, e, username, password)
	if resp.Status != http.StatusOK {
		t.Fatalf("login %s: status %d, want 200: %s", username, resp.Status, resp.Body)
	}
	var body struct{ Token string }
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.Token == "" {
		t.Fatalf("login %s: no token in %s", username, resp.Body)
	}
	return body.Token
}

// authorizedStatus returns the status of a request that needs a token.
func authorizedStatus(t *testing.T, e *relaytest.Env, authorization string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+"/api/v1/lookups", nil)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("get lookups: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkStatus fails the test unless got is want.
func checkStatus(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s: status %d, want %d", what, got, want)
	}
}

// waitUser waits until the gateway's directory has a user for which cond
// holds.
func waitUser(t *testing.T, e *relaytest.Env, username, change string, cond func(directory.User) bool) {
	t.Helper()
	e.WaitFor(fmt.Sprintf("the gateway sees that %s %s", username, change), directoryTimeout, func() bool {
		user, ok := e.Gateway.Directory().User(username)
		return ok && cond(user)
	})
}

func TestLoginRejections(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()

	wrongPassword := login(t, e, "anna.berger", "wrong horse battery")
	if wrongPassword.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: status %d, want 401: %s", wrongPassword.Status, wrongPassword.Body)
	}
	if code := decodeError(t, wrongPassword).Code; code != "login_failed" {
		t.Errorf("wrong password: code %q, want login_failed", code)
	}
	unknownUser := login(t, e, "nobody.here", relaytest.Password)
	checkStatus(t, "unknown user", unknownUser.Status, http.StatusUnauthorized)
	if diff := cmp.Diff(string(wrongPassword.Body), string(unknownUser.Body)); diff != "" {
		t.Errorf("unknown user and wrong password get different bodies (-wrong password +unknown user):\n%s", diff)
	}

	t.Run("disabled user", func(t *testing.T) {
		token := e.Login("eva.novak")
		checkStatus(t, "token before disabling", authorizedStatus(t, e, "Bearer "+token), http.StatusOK)
		if err := appliance.SetDisabled(ctx, e.Pool, "eva.novak", true); err != nil {
			t.Fatalf("disable eva.novak: %v", err)
		}
		waitUser(t, e, "eva.novak", "is disabled", func(u directory.User) bool { return u.Disabled })

		resp := login(t, e, "eva.novak", relaytest.Password)
		checkStatus(t, "login of disabled user", resp.Status, http.StatusUnauthorized)
		if diff := cmp.Diff(string(wrongPassword.Body), string(resp.Body)); diff != "" {
			t.Errorf("disabled user and wrong password get different bodies (-wrong password +disabled):\n%s", diff)
		}
		checkStatus(t, "token of disabled user", authorizedStatus(t, e, "Bearer "+token), http.StatusUnauthorized)

		if err := appliance.SetDisabled(ctx, e.Pool, "eva.novak", false); err != nil {
			t.Fatalf("enable eva.novak: %v", err)
		}
		waitUser(t, e, "eva.novak", "is enabled", func(u directory.User) bool { return !u.Disabled })
		loginToken(t, e, "eva.novak", relaytest.Password)
	})

	t.Run("password changed", func(t *testing.T) {
		const newPassword = "a brand new passphrase"
		before, _ := e.Gateway.Directory().User("luca.rossi")
		oldToken := e.Login("luca.rossi")
		checkStatus(t, "token before the change", authorizedStatus(t, e, "Bearer "+oldToken), http.StatusOK)
		if err := appliance.SetPassword(ctx, e.Pool, "luca.rossi", newPassword); err != nil {
			t.Fatalf("change password of luca.rossi: %v", err)
		}
		waitUser(t, e, "luca.rossi", "changed password", func(u directory.User) bool {
			return u.PasswordChangedAt.After(before.PasswordChangedAt)
		})

		checkStatus(t, "token issued before the change", authorizedStatus(t, e, "Bearer "+oldToken), http.StatusUnauthorized)
		checkStatus(t, "login with the old password", login(t, e, "luca.rossi", relaytest.Password).Status, http.StatusUnauthorized)
		newToken := loginToken(t, e, "luca.rossi", newPassword)
		checkStatus(t, "token issued after the change", authorizedStatus(t, e, "Bearer "+newToken), http.StatusOK)
	})
}

func TestBadTokensRejected(t *testing.T) {
	e := startEnv(t)
	token := e.Login("anna.berger")
	payload, signature, ok := strings.Cut(token, ".")
	if !ok {
		t.Fatalf("token %q has no signature part", token)
	}
	// Changing a character of the payload keeps it valid base64.
	flipped := []byte(payload)
	flipped[len(flipped)/2] ^= 1

	tests := []struct {
		name          string
		authorization string
	}{
		{"no header", ""},
		{"empty bearer", "Bearer "},
		{"not a token", "Bearer garbage"},
		{"other scheme", "Basic " + token},
		{"token without signature", "Bearer " + payload},
		{"truncated signature", "Bearer " + payload + "." + signature[:len(signature)/2]},
		{"changed payload", "Bearer " + string(flipped) + "." + signature},
		{"signature of another payload", "Bearer " + payload + "x." + signature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkStatus(t, tt.name, authorizedStatus(t, e, tt.authorization), http.StatusUnauthorized)
		})
	}
	checkStatus(t, "the unchanged token", authorizedStatus(t, e, "Bearer "+token), http.StatusOK)
}

func TestExpiredTokenRejected(t *testing.T) {
	// Gateway.Start does not validate its config, so a TTL below the 1m
	// that a config file may set keeps this test short.
	const ttl = 2 * time.Second
	e := startEnv(t)
	e.GatewayConfig().Auth.TokenTTL = ttl
	restartGateway(e)

	issued := time.Now()
	resp := login(t, e, "anna.berger", relaytest.Password)
	if resp.Status != http.StatusOK {
		t.Fatalf("login: status %d, want 200: %s", resp.Status, resp.Body)
	}
	var body struct {
		Token     string
		ExpiresAt time.Time
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatalf("decode login response: %v", err)
	}
	if body.ExpiresAt.Before(issued.Add(ttl)) || body.ExpiresAt.After(time.Now().Add(ttl)) {
		t.Errorf("expiresAt %s, want %s after the login", body.ExpiresAt, ttl)
	}
	checkStatus(t, "token before expiry", authorizedStatus(t, e, "Bearer "+body.Token), http.StatusOK)

	time.Sleep(time.Until(body.ExpiresAt) + 100*time.Millisecond)
	checkStatus(t, "token after expiry", authorizedStatus(t, e, "Bearer "+body.Token), http.StatusUnauthorized)
}

func TestFailedLoginsThrottled(t *testing.T) {
	const allowedFailures = 10
	e := startEnv(t)
	for i := range allowedFailures {
		resp := login(t, e, "anna.berger", fmt.Sprintf("wrong password %d", i))
		if resp.Status != http.StatusUnauthorized {
			t.Fatalf("failed login %d: status %d, want 401: %s", i+1, resp.Status, resp.Body)
		}
	}

	// Once throttled, even the right password is turned away.
	resp := login(t, e, "anna.berger", relaytest.Password)
	if resp.Status != http.StatusTooManyRequests {
		t.Fatalf("login after %d failures: status %d, want 429: %s", allowedFailures, resp.Status, resp.Body)
	}
	if code := decodeError(t, resp).Code; code != "login_throttled" {
		t.Errorf("code %q, want login_throttled", code)
	}
	if got := resp.Header.Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After %q, want 60", got)
	}
}
