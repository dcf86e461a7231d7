package appliance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"
)

// ErrUserNotFound means no user has the given username.
var ErrUserNotFound = errors.New("user not found")

// ErrUserExists means a user with the username or id exists already.
var ErrUserExists = errors.New("user exists already")

// checkUsername allows lowercase letters, digits and inner '.', '-', '_'.
// Usernames become key-value keys, which reject other characters.
func checkUsername(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("must be 1 to 64 characters")
	}
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		return errors.New("must not start or end with '.' or contain '..'")
	}
	for _, r := range name {
		ok := r == '.' || r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("must contain only lowercase letters, digits, '.', '-' and '_', not %q", r)
		}
	}
	return nil
}

// checkPassword sets the minimum a salesman's password must meet. bcrypt
// reads at most 72 bytes, so a longer one would be silently cut.
func checkPassword(password string) error {
	switch {
	case utf8.RuneCountInString(password) < 10:
		return errors.New("must be at least 10 characters")
	case len(password) > 72:
		return errors.New("must be at most 72 bytes")
	}
	return nil
}

// AddUser creates a salesman's account.
func AddUser(ctx context.Context, pool *pgxpool.Pool, id, username, name, password string) error {
	if err := checkUsername(username); err != nil {
		return fmt.Errorf("username %q: %w", username, err)
	}
	if err := checkPassword(password); err != nil {
		return fmt.Errorf("password: %w", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, username, name, password_hash) VALUES ($1, $2, $3, $4)`,
			id, username, name, string(hash))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return fmt.Errorf("add user %q with id %q: %w; the username or the id is taken, so pick another, or use user passwd to change a password", username, id, ErrUserExists)
		}
		if err != nil {
			return fmt.Errorf("add user %q: %w", username, err)
		}
		return notifyDirectory(ctx, tx)
	})
}

// SetPassword changes a user's password; every token issued before stops
// working.
func SetPassword(ctx context.Context, pool *pgxpool.Pool, username, password string) error {
	if err := checkPassword(password); err != nil {
		return fmt.Errorf("password: %w", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return updateUser(ctx, pool, username,
		`UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() WHERE username = $1`, string(hash))
}

// SetDisabled disables or enables a user. A disabled user cannot log in and
// his tokens stop working on the next request.
func SetDisabled(ctx context.Context, pool *pgxpool.Pool, username string, disabled bool) error {
	return updateUser(ctx, pool, username,
		`UPDATE users SET disabled = $2, updated_at = now() WHERE username = $1`, disabled)
}

func updateUser(ctx context.Context, pool *pgxpool.Pool, username, sql string, value any) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, username, value)
		if err != nil {
			return fmt.Errorf("update user %q: %w", username, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("update user %q: %w", username, ErrUserNotFound)
		}
		return notifyDirectory(ctx, tx)
	})
}
