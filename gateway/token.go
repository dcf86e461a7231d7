package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// claims are what a login token carries. Tokens are signed, not stored, so
// that every gateway node sharing the key accepts them.
type claims struct {
	UserID   string    `json:"uid"`
	Username string    `json:"usr"`
	IssuedAt time.Time `json:"iat"`
	Expires  time.Time `json:"exp"`
}

// tokenSigner issues and checks HMAC-SHA256 signed tokens.
type tokenSigner struct {
	key []byte
}

func (s tokenSigner) issue(c claims) string {
	payload, _ := json.Marshal(c)
	body := base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.sign(body))
}

func (s tokenSigner) sign(body string) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(body))
	return mac.Sum(nil)
}

// parse checks the signature and expiry of a token and returns its claims.
func (s tokenSigner) parse(token string, now time.Time) (claims, error) {
	body, sig, ok := strings.Cut(token, ".")
	if !ok {
		return claims{}, errors.New("token has no signature")
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.sign(body)) {
		return claims{}, errors.New("token signature does not match")
	}
	payload, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return claims{}, fmt.Errorf("decode token: %w", err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return claims{}, fmt.Errorf("decode token: %w", err)
	}
	if !now.Before(c.Expires) {
		return claims{}, fmt.Errorf("token expired at %s", c.Expires.Format(time.RFC3339))
	}
	return c, nil
}

// loadOrCreateKey reads the signing key, creating a random one on first
// start. Keeping it on disk lets tokens survive a gateway restart.
func loadOrCreateKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) < 32 {
			return nil, fmt.Errorf("read token key %s: %d bytes, need at least 32; delete it to make a new one", path, len(key))
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read token key: %w", err)
	}

	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate token key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create token key directory: %w", err)
	}
	// Write a temporary file and link it into place, so that nodes sharing
	// the file never read a half-written key, and a node that loses the race
	// to create it reads the winner's key.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".token.key-*")
	if err != nil {
		return nil, fmt.Errorf("write token key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write token key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write token key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return loadOrCreateKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("write token key: %w", err)
	}
	return key, nil
}
