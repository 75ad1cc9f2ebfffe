package op

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// The access log: one line per request at info, so that a slow DingTalk or a
// misbehaving client shows without debug logging. It names the route pattern
// (/callback/{connector}), never the URL: queries and bodies carry codes,
// states and tokens.

// requestNotes is what handlers learn about a request that the access log wants.
type requestNotes struct {
	clientID string
}

type requestNotesKey struct{}

// noteClient records the OAuth client a request is for, when a handler learns it.
func noteClient(r *http.Request, clientID string) {
	if n, ok := r.Context().Value(requestNotesKey{}).(*requestNotes); ok && clientID != "" {
		n.clientID = clientID
	}
}

// maxLoggedClientID keeps a client_id someone made up from filling the log.
const maxLoggedClientID = 128

func (p *Provider) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		notes := &requestNotes{}
		r = r.WithContext(context.WithValue(r.Context(), requestNotesKey{}, notes))
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		route := routePattern(r)
		level := slog.LevelInfo
		if route == "/healthz" || route == "/readyz" {
			level = slog.LevelDebug // probes every few seconds
		}
		if !p.log.Enabled(r.Context(), level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)),
		}
		if notes.clientID != "" {
			id := notes.clientID
			if len(id) > maxLoggedClientID {
				id = id[:maxLoggedClientID] + "…"
			}
			attrs = append(attrs, slog.String("client", id))
		}
		p.log.LogAttrs(r.Context(), level, "http request", attrs...)
	})
}

// routePattern is the chi route that served r ("/callback/{connector}"), or
// "unmatched" when none did. zitadel's handler is a chi router of its own that
// matches the whole path again where we route to it, so a pattern repeated
// right after itself is one route, and a bare "/*" is our mount of zitadel
// with nothing matched inside.
func routePattern(r *http.Request) string {
	rc := chi.RouteContext(r.Context())
	if rc == nil {
		return "unmatched"
	}
	var pattern strings.Builder
	for i, p := range rc.RoutePatterns {
		if i > 0 && p == rc.RoutePatterns[i-1] {
			continue
		}
		pattern.WriteString(p)
	}
	route := pattern.String()
	for strings.Contains(route, "/*/") {
		route = strings.ReplaceAll(route, "/*/", "/")
	}
	if route == "" || route == "/*" {
		return "unmatched"
	}
	return route
}
