package gateway

import (
	"context"
	"errors"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/visitrelay/visitrelay/internal/sdnotify"
)

// notifySystemd sends READY=1, which the caller does only after Start has
// returned: NATS accepts connections, JetStream responds, the streams exist
// and the HTTP listener is open. It then pings the systemd watchdog while
// the gateway is healthy, until ctx ends.
func (g *Gateway) notifySystemd(ctx context.Context) {
	if _, err := sdnotify.Notify(sdnotify.Ready + "\n" + sdnotify.Status("serving on "+g.URL())); err != nil {
		g.logger.Warn("notify systemd", "error", err)
	}
	go sdnotify.RunWatchdog(ctx, g.logger, g.healthy)
}

// healthy reports a gateway that can no longer accept visits.
func (g *Gateway) healthy() error {
	if g.ns == nil || !g.ns.Running() {
		return errors.New("nats server not running")
	}
	if !g.ns.JetStreamEnabled() {
		return errors.New("jetstream disabled")
	}
	return nil
}

// notifyStopping notifies systemd that the gateway is shutting down.
func (g *Gateway) notifyStopping() {
	if _, err := sdnotify.Notify(sdnotify.Stopping); err != nil {
		g.logger.Warn("notify systemd", "error", err)
	}
}

// hashPassword reads a site's leafnode password from the first line of
// stdin and writes its bcrypt hash, for nats.sites[].passwordHash.
func hashPassword(stdin io.Reader, stdout io.Writer) error {
	data, err := io.ReadAll(io.LimitReader(stdin, 4096))
	if err != nil {
		return err
	}
	password, _, _ := strings.Cut(string(data), "\n")
	password = strings.TrimRight(password, "\r")
	if len(password) < 16 {
		return errors.New("hash-password: the password must have at least 16 characters; pipe it in, such as: openssl rand -base64 24 | tee site.password | visitrelay-gateway hash-password")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, string(hash)+"\n")
	return err
}
