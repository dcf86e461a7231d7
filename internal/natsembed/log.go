package natsembed

import (
	"fmt"
	"log/slog"
)

// logAdapter sends the embedded server's log lines to slog, so that both
// binaries write one log in one format.
type logAdapter struct {
	logger *slog.Logger
}

func newLogAdapter(logger *slog.Logger) *logAdapter {
	return &logAdapter{logger: logger.With("component", "nats")}
}

func (l *logAdapter) Noticef(format string, v ...any) {
	l.logger.Info(fmt.Sprintf(format, v...))
}

func (l *logAdapter) Warnf(format string, v ...any) {
	l.logger.Warn(fmt.Sprintf(format, v...))
}

// Fatalf is logged as an error. The server calls it for start-up problems it
// cannot recover from, and Start reports those as a failed start.
func (l *logAdapter) Fatalf(format string, v ...any) {
	l.logger.Error(fmt.Sprintf(format, v...))
}

func (l *logAdapter) Errorf(format string, v ...any) {
	l.logger.Error(fmt.Sprintf(format, v...))
}

func (l *logAdapter) Debugf(format string, v ...any) {
	l.logger.Debug(fmt.Sprintf(format, v...))
}

func (l *logAdapter) Tracef(format string, v ...any) {
	l.logger.Debug(fmt.Sprintf(format, v...))
}
