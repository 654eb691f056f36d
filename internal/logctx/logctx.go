// Package logctx carries a delivery's GUID in a context so that every log
// line written for that delivery names it, whichever package writes the
// line, as long as it logs with the context (slog's ...Context methods or
// LogAttrs). Parts below intake, such as the GitHub client, know nothing of
// deliveries; the Handler adds the GUID for them.
package logctx

import (
	"context"
	"log/slog"
)

// Key is the attribute name the delivery GUID is logged under.
const Key = "delivery"

type deliveryKey struct{}

// WithDelivery returns a context that carries the delivery GUID id.
func WithDelivery(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, deliveryKey{}, id)
}

// Delivery returns the delivery GUID ctx carries, or "".
func Delivery(ctx context.Context) string {
	id, _ := ctx.Value(deliveryKey{}).(string)
	return id
}

// Handler wraps next so that a record logged with a context that carries
// a delivery GUID gets it as the Key attribute, unless the logger or the
// record already names one.
func Handler(next slog.Handler) slog.Handler { return handler{next: next} }

type handler struct {
	next slog.Handler
	// named is true once WithAttrs gave the logger a Key attribute.
	named bool
}

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	id := Delivery(ctx)
	if id == "" || h.named {
		return h.next.Handle(ctx, r)
	}
	named := false
	r.Attrs(func(a slog.Attr) bool {
		named = a.Key == Key
		return !named
	})
	if !named {
		r = r.Clone()
		r.AddAttrs(slog.String(Key, id))
	}

	return h.next.Handle(ctx, r)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	named := h.named
	for _, a := range attrs {
		named = named || a.Key == Key
	}

	return handler{next: h.next.WithAttrs(attrs), named: named}
}

// WithGroup keeps knowing whether the logger named the delivery before the
// group; a GUID added from the context lands inside the group, as every
// attribute of a record does.
func (h handler) WithGroup(name string) slog.Handler {
	return handler{next: h.next.WithGroup(name), named: h.named}
}
