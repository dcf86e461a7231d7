package gateway

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashPasswordPrintsBcrypt(t *testing.T) {
	var out bytes.Buffer
	password := "a site password of some length"
	if err := hashPassword(strings.NewReader(password+"\nignored second line\n"), &out); err != nil {
		t.Fatalf("hash-password: %v", err)
	}
	hash := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
		t.Errorf("printed hash %q does not match the first line: %v", hash, err)
	}
	if err := hashPassword(strings.NewReader("short\n"), &out); err == nil {
		t.Error("hash-password accepted a 5-character password")
	}
}
