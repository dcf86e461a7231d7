package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/directory"
)

// directoryChannel is the PostgreSQL NOTIFY channel that the admin commands
// signal after changing users, clinics or devices.
const directoryChannel = "visitrelay_directory"

// resyncInterval bounds how stale the bucket can be if a notification is
// missed, for example when an admin edits the tables with psql.
const resyncInterval = time.Minute

// publisher copies the directory tables into the key-value bucket that the
// gateway mirrors.
type publisher struct {
	pool   *pgxpool.Pool
	kv     jetstream.KeyValue
	logger *slog.Logger

	failing bool // set once a failure is logged, so that repeats go to debug level
}

// run syncs at start, on every notification and every resyncInterval,
// until ctx ends.
func (p *publisher) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := p.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		// An outage logs once at warn level, and its repeats at debug level.
		if !p.failing {
			p.logger.Warn("directory publisher interrupted; retrying every 5s", "error", err)
		} else {
			p.logger.Debug("directory publisher still interrupted", "error", err)
		}
		p.failing = true
		sleep(ctx, 5*time.Second)
	}
}

func (p *publisher) listen(ctx context.Context) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+directoryChannel); err != nil {
		return fmt.Errorf("listen on %s: %w", directoryChannel, err)
	}
	for {
		if err := p.sync(ctx); err != nil {
			return err
		}
		waitCtx, cancel := context.WithTimeout(ctx, resyncInterval)
		_, err := conn.Conn().WaitForNotification(waitCtx)
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && waitCtx.Err() == nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// sync makes the bucket equal to the tables: it puts changed entries and
// deletes entries whose row is gone.
func (p *publisher) sync(ctx context.Context) error {
	desired, err := readDirectory(ctx, p.pool)
	if err != nil {
		return err
	}
	current, err := readBucket(ctx, p.kv)
	if err != nil {
		return err
	}

	puts, deletes := 0, 0
	for key, value := range desired {
		if bytes.Equal(current[key], value) {
			continue
		}
		if _, err := p.kv.Put(ctx, key, value); err != nil {
			return fmt.Errorf("put directory key %s: %w", key, err)
		}
		puts++
	}
	for key := range current {
		if _, ok := desired[key]; ok {
			continue
		}
		if err := p.kv.Delete(ctx, key); err != nil {
			return fmt.Errorf("delete directory key %s: %w", key, err)
		}
		deletes++
	}
	if puts+deletes > 0 {
		p.logger.Info("directory published", "entries", len(desired), "changed", puts, "deleted", deletes)
	}
	if p.failing {
		p.logger.Info("directory publisher resumed")
		p.failing = false
	}
	return nil
}

func readBucket(ctx context.Context, kv jetstream.KeyValue) (map[string][]byte, error) {
	watcher, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read directory bucket: %w", err)
	}
	defer watcher.Stop()
	current := map[string][]byte{}
	for entry := range watcher.Updates() {
		if entry == nil {
			break
		}
		current[entry.Key()] = entry.Value()
	}
	return current, nil
}

// readDirectory renders every directory row as its bucket key and value.
func readDirectory(ctx context.Context, pool *pgxpool.Pool) (map[string][]byte, error) {
	out := map[string][]byte{}
	users, err := queryAll(ctx, pool, `SELECT id, username, name, password_hash, disabled, password_changed_at FROM users`,
		func(row pgx.CollectableRow) (directory.User, error) {
			var u directory.User
			err := row.Scan(&u.ID, &u.Username, &u.Name, &u.PasswordHash, &u.Disabled, &u.PasswordChangedAt)
			return u, err
		})
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		out[directory.UserKey(u.Username)] = mustJSON(u)
	}

	clients, err := queryAll(ctx, pool, `SELECT id, name, city FROM clients`, pgx.RowToStructByPos[directory.Client])
	if err != nil {
		return nil, err
	}
	for _, c := range clients {
		out[directory.ClientKey(c.ID)] = mustJSON(c)
	}

	devices, err := queryAll(ctx, pool, `SELECT id, name, category FROM devices`, pgx.RowToStructByPos[directory.Device])
	if err != nil {
		return nil, err
	}
	for _, d := range devices {
		out[directory.DeviceKey(d.ID)] = mustJSON(d)
	}
	return out, nil
}

func queryAll[T any](ctx context.Context, pool *pgxpool.Pool, sql string, scan pgx.RowToFunc[T]) ([]T, error) {
	rows, err := pool.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("read directory: %w", err)
	}
	list, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("read directory: %w", err)
	}
	return list, nil
}

func mustJSON(v any) []byte {
	// The directory types are plain structs; marshalling cannot fail.
	b, _ := json.Marshal(v)
	return b
}
