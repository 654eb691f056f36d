package webhook

import (
	"context"
	"log/slog"
)

// loggerKey is the context key for the logger; a private type keeps other
// packages from colliding with it.
type loggerKey struct{}

// WithLogger returns a copy of ctx that carries l. Intake uses it to hand
// each worker a logger that already names the delivery, so that every log
// line written while handling a delivery can be traced back to it.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// LoggerFrom returns the logger carried by ctx, or slog.Default() when ctx
// carries none, so callers never need a nil check.
func LoggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}

	return slog.Default()
}
