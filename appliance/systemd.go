package appliance

import (
	"context"
	"errors"
	"time"

	"github.com/visitrelay/visitrelay/internal/sdnotify"
)

// notifySystemd waits until the database responds with a current schema,
// then sends READY=1: the caller runs it after Start, so NATS, JetStream
// and the streams are up by then. Visits keep flowing into the on-prem
// stream while it waits. It pings the systemd watchdog while the appliance
// is healthy, until ctx ends.
func (a *Appliance) notifySystemd(ctx context.Context) {
	go sdnotify.RunWatchdog(ctx, a.logger, a.healthy)
	for {
		err := a.checkDatabase(ctx)
		if err == nil {
			break
		}
		if _, notifyErr := sdnotify.Notify(sdnotify.Status("waiting for the database: " + err.Error())); notifyErr != nil {
			a.logger.Warn("notify systemd", "error", notifyErr)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
	if _, err := sdnotify.Notify(sdnotify.Ready + "\n" + sdnotify.Status("committing visits")); err != nil {
		a.logger.Warn("notify systemd", "error", err)
	}
}

// checkDatabase pings the database and checks its schema version.
func (a *Appliance) checkDatabase(ctx context.Context) error {
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.pool.Ping(pingCtx); err != nil {
		return err
	}
	_, err := CheckSchema(pingCtx, a.pool)
	return err
}

// healthy reports an appliance whose NATS server or JetStream stopped.
func (a *Appliance) healthy() error {
	if a.ns == nil || !a.ns.Running() {
		return errors.New("nats server not running")
	}
	if !a.ns.JetStreamEnabled() {
		return errors.New("jetstream disabled")
	}
	return nil
}

// notifyStopping notifies systemd that the appliance is shutting down.
func (a *Appliance) notifyStopping() {
	if _, err := sdnotify.Notify(sdnotify.Stopping); err != nil {
		a.logger.Warn("notify systemd", "error", err)
	}
}
