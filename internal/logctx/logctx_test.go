package logctx

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	withID := WithDelivery(context.Background(), "guid-1")
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want []string // the delivery values of the line, in order
	}{
		{"context adds it", func(l *slog.Logger) { l.InfoContext(withID, "x") }, []string{"guid-1"}},
		{"no context, no delivery", func(l *slog.Logger) { l.Info("x") }, nil},
		{"logger already names it", func(l *slog.Logger) {
			l.With(Key, "guid-1").InfoContext(withID, "x")
		}, []string{"guid-1"}},
		{"record already names it", func(l *slog.Logger) {
			l.InfoContext(withID, "x", Key, "other")
		}, []string{"other"}},
		{"in a group, inside it", func(l *slog.Logger) {
			l.WithGroup("g").InfoContext(withID, "x", "k", "v")
		}, []string{"g:guid-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(slog.New(Handler(slog.NewTextHandler(&buf, nil))))
			line := buf.String()
			var got []string
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, Key+"="); ok {
					got = append(got, v)
				}
				if v, ok := strings.CutPrefix(f, "g."+Key+"="); ok {
					got = append(got, "g:"+v)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("line %q has delivery %v, want %v", line, got, tt.want)
			}
		})
	}

	// The JSON handler, as yaci runs by default, gets one key, not two.
	var buf bytes.Buffer
	slog.New(Handler(slog.NewJSONHandler(&buf, nil))).InfoContext(withID, "x")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m[Key] != "guid-1" {
		t.Errorf("json line %s: %v", buf.String(), err)
	}
}
