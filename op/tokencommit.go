package op

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"sync/atomic"

	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// A token answer may go out only once its tokens are committed: a refresh
// token the client holds must survive a crash. But zitadel asks storage for the
// tokens first and signs the ID token after, so the signature (about a
// millisecond of RSA) would wait for the commit's fsyncs, and the commit for
// nothing. answerAfterCommit lets the two overlap: the tokens' commit starts in
// its own goroutine while zitadel signs and writes its answer, which is held
// back until the commit is through. A commit that fails replaces the held
// answer with its OAuth error, mapped by the same code as before
// (oidcStorage.issued), so the client sees exactly what it saw when the commit
// came first.
//
// The overlap is for a machine with a CPU to spare while the commit waits for
// the disk. With as many token requests already in flight as the process has
// CPUs, there is none (the other requests fill them), and the overlap would
// only add a goroutine's hand-offs to each request: the commit then runs in
// line, as zitadel calls it.

type tokenCommitKey struct{}

// tokenCommit is the commit of one token request's tokens, running while
// zitadel finishes the answer.
type tokenCommit struct {
	// request is the token request's own context. The commit runs under it,
	// not under the context zitadel hands to storage: zitadel cancels its own
	// (the device grant's has a timeout) as soon as its handler returns, which
	// may be before the commit is through.
	request context.Context
	started bool
	done    chan struct{}
	err     error // valid once done is closed
}

// answerAfterCommit wraps zitadel's token endpoint: see above.
func answerAfterCommit(log *slog.Logger, next http.Handler) http.Handler {
	var inFlight atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		if n > int64(runtime.GOMAXPROCS(0)) {
			next.ServeHTTP(w, r)
			return
		}
		c := &tokenCommit{request: r.Context(), done: make(chan struct{})}
		held := &heldAnswer{header: make(http.Header)}
		next.ServeHTTP(held, r.WithContext(context.WithValue(r.Context(), tokenCommitKey{}, c)))
		if c.started {
			<-c.done
			if c.err != nil && held.status < http.StatusBadRequest {
				zop.RequestError(w, r, c.err, log)
				return
			}
		}
		held.sendTo(w)
	})
}

// commitTokens runs commit, which stores a token request's tokens and maps what
// storage answered to the client's error. Within a token request that
// answerAfterCommit overlaps, it runs in its own goroutine and commitTokens
// returns nil at once: the request's answer waits for it. Otherwise, or for a
// second commit in one request, it runs before commitTokens returns, under ctx.
func commitTokens(ctx context.Context, commit func(context.Context) error) error {
	c, ok := ctx.Value(tokenCommitKey{}).(*tokenCommit)
	if !ok || c.started {
		return commit(ctx)
	}
	c.started = true
	go func() {
		defer close(c.done)
		c.err = commit(c.request)
	}()
	return nil
}
