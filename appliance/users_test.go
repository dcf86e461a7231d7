package appliance

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestUserLifecycle(t *testing.T) {
	ctx := context.Background()
	pool := newMigratedPool(t)
	if err := AddUser(ctx, pool, "23", "anna.berger", "Anna Berger", "first password"); err != nil {
		t.Fatalf("add user: %v", err)
	}
	var hash string
	var changed time.Time
	if err := pool.QueryRow(ctx, "SELECT password_hash, password_changed_at FROM users WHERE id = '23'").Scan(&hash, &changed); err != nil {
		t.Fatalf("read user: %v", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("first password")) != nil {
		t.Error("stored hash does not match the password")
	}

	if err := SetPassword(ctx, pool, "anna.berger", "second password"); err != nil {
		t.Fatalf("set password: %v", err)
	}
	var later time.Time
	if err := pool.QueryRow(ctx, "SELECT password_hash, password_changed_at FROM users WHERE id = '23'").Scan(&hash, &later); err != nil {
		t.Fatalf("read user: %v", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("second password")) != nil {
		t.Error("new hash does not match the new password")
	}
	if !later.After(changed) {
		t.Error("password_changed_at did not move, so old tokens would stay valid")
	}

	if err := SetDisabled(ctx, pool, "anna.berger", true); err != nil {
		t.Fatalf("disable: %v", err)
	}
	var disabled bool
	if err := pool.QueryRow(ctx, "SELECT disabled FROM users WHERE id = '23'").Scan(&disabled); err != nil || !disabled {
		t.Errorf("disabled = %v (err %v), want true", disabled, err)
	}
}

func TestUserCommandsRejectBadInput(t *testing.T) {
	ctx := context.Background()
	pool := newMigratedPool(t)
	if err := AddUser(ctx, pool, "1", "Bad Name", "X", "long enough password"); err == nil {
		t.Error("added a username with a space and capitals")
	}
	if err := AddUser(ctx, pool, "1", "eva", "Eva", "short"); err == nil {
		t.Error("added a user with a 5-character password")
	}
	if err := AddUser(ctx, pool, "5", "eva", "Eva", "long enough password"); err != nil {
		t.Fatalf("add user: %v", err)
	}
	if err := AddUser(ctx, pool, "6", "eva", "Eva Again", "long enough password"); !errors.Is(err, ErrUserExists) {
		t.Errorf("second user with the same username: %v, want ErrUserExists", err)
	}
	if err := SetDisabled(ctx, pool, "nobody", true); !errors.Is(err, ErrUserNotFound) {
		t.Errorf("disable of unknown user: %v, want ErrUserNotFound", err)
	}
}
