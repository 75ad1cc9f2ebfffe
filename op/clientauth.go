package op

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/crypto/bcrypt"

	"github.com/dingbridge/dingbridge/storage"
)

// Client secrets at rest. A generated secret is 32 random bytes: nobody can guess
// it, so what protects it in a stolen database is that the hash cannot be
// reversed, not that it is slow. HMAC-SHA256 is that, and costs a microsecond, so
// a wrong secret costs the server no more than a right one (bcrypt at ~50 ms let
// 16 connections of wrong secrets hold two cores). The HMAC key is derived from
// the token key, which lives in the same storage: it adds domain separation, not
// secrecy. bcrypt hashes written by earlier versions still verify and are
// replaced by the HMAC form on their first success.

const clientSecretHMACPrefix = "hmac-sha256:"

// ClientSecretKey derives the key client secrets are hashed with from the
// provider's token key (keys.Manager.TokenKey), so the admin service and the
// provider agree without another secret to manage.
func ClientSecretKey(tokenKey [32]byte) []byte {
	mac := hmac.New(sha256.New, tokenKey[:])
	mac.Write([]byte("dingbridge client secrets v1"))
	return mac.Sum(nil)
}

// HashClientSecret is how a generated client secret is stored.
func HashClientSecret(key []byte, secret string) string {
	return clientSecretHMACPrefix + base64.RawURLEncoding.EncodeToString(clientSecretMAC(key, secret))
}

func clientSecretMAC(key []byte, secret string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(secret))
	return mac.Sum(nil)
}

// verifyClientSecret checks secret against a stored hash. legacy reports a
// bcrypt hash that matched and should be replaced.
func verifyClientSecret(key []byte, stored, secret string) (ok, legacy bool) {
	if rest, isHMAC := strings.CutPrefix(stored, clientSecretHMACPrefix); isHMAC {
		want, err := base64.RawURLEncoding.DecodeString(rest)
		return err == nil && hmac.Equal(clientSecretMAC(key, secret), want), false
	}
	if strings.HasPrefix(stored, "$2") {
		return bcrypt.CompareHashAndPassword([]byte(stored), []byte(secret)) == nil, true
	}
	return false, false
}

// --- failed client authentication is cheap and limited ---

// clientAuthKey carries a request's clientAuth from the endpoint's wrapper to the
// storage callbacks zitadel makes on the way.
type clientAuthKey struct{}

// clientAuth is what one request to an endpoint that authenticates clients
// learned about itself.
type clientAuth struct {
	mu       sync.Mutex
	failed   bool        // a client secret did not verify
	benign   bool        // an error answer that is no failure (a device still waiting)
	override *oidc.Error // replaces zitadel's error answer, where it names the wrong error
}

func clientAuthFrom(ctx context.Context) *clientAuth {
	a, _ := ctx.Value(clientAuthKey{}).(*clientAuth)
	if a == nil {
		return &clientAuth{} // outside a wrapped endpoint: record into nothing
	}
	return a
}

func (a *clientAuth) set(f func(*clientAuth)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

// failureLimiter bounds failures — wrong secrets, bad codes, unknown tokens — per
// address and per client at every endpoint that authenticates clients (token,
// introspection, revocation, device authorization). Successes are not counted:
// each one spent a code, refresh token or device approval a person produced, so
// Grafana's backend exchanging codes for thousands of people from one address is
// never throttled. A budget spent answers 429 before any verification is done.
type failureLimiter struct {
	off      bool
	ips      *bucketSet[netip.Addr]
	clients  *bucketSet[string]
	clientIP func(*http.Request) netip.Addr
}

func newFailureLimiter(cfg RateLimit, ips *ipLimiter) *failureLimiter {
	return &failureLimiter{
		off:      cfg.PerSecond <= 0,
		ips:      newBucketSet[netip.Addr](cfg.PerSecond, cfg.Burst, ips.now),
		clients:  newBucketSet[string](cfg.PerSecond, cfg.Burst, ips.now),
		clientIP: ips.clientIP,
	}
}

// guardClientAuth wraps an endpoint that authenticates clients. A presented
// secret is checked here, before zitadel looks at codes or tokens: a wrong
// secret is told invalid_client and nothing about the rest of the request.
func (p *Provider) guardClientAuth(next http.Handler) http.Handler {
	l := p.settings().failures
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			httphelper.MarshalJSONWithStatus(w, oidc.ErrInvalidRequest().WithDescription("cannot parse the form"), http.StatusBadRequest)
			return
		}
		ip, clientID := l.clientIP(r), requestClientID(r)
		if !l.off {
			if wait, empty := l.ips.empty(ip); empty {
				p.metrics.RateLimited(routePattern(r))
				tooManyRequests(w, wait, true)
				return
			}
			if wait, empty := l.clients.empty(clientID); clientID != "" && empty {
				p.metrics.RateLimited(routePattern(r))
				tooManyRequests(w, wait, true)
				return
			}
		}
		if id, secret, ok := requestClientSecret(r); ok {
			if err := p.settings().clients.authenticate(r.Context(), id, secret); err != nil {
				p.log.InfoContext(r.Context(), "client authentication failed", "client", id, "reason", err.Error())
				l.charge(ip, clientID)
				oauthError(w, oidc.ErrInvalidClient().WithDescription("client authentication failed"))
				return
			}
		}
		auth := &clientAuth{}
		out := &outcomeWriter{ResponseWriter: w, auth: auth}
		next.ServeHTTP(out, r.WithContext(context.WithValue(r.Context(), clientAuthKey{}, auth)))
		auth.mu.Lock()
		failed := auth.failed || (out.status >= 400 && out.status < 500 && !auth.benign)
		auth.mu.Unlock()
		if failed {
			l.charge(ip, clientID)
		}
	})
}

// charge counts one failure against the address and the client it named.
func (l *failureLimiter) charge(ip netip.Addr, clientID string) {
	if l.off {
		return
	}
	l.ips.take(ip)
	if clientID != "" {
		l.clients.take(clientID)
	}
}

// requestClientID is the client a request names: HTTP Basic's user (form-encoded,
// RFC 6749 §2.3.1) or the client_id parameter.
func requestClientID(r *http.Request) string {
	if user, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(user); err == nil {
			return id
		}
		return user
	}
	return r.Form.Get("client_id")
}

// requestClientSecret is the client id and secret a request authenticates with
// (client_secret_basic or client_secret_post).
func requestClientSecret(r *http.Request) (id, secret string, ok bool) {
	if user, pass, basic := r.BasicAuth(); basic {
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return user, pass, true // fails authentication as it stands
		}
		return id, secret, true
	}
	if secret := r.PostForm.Get("client_secret"); secret != "" {
		return r.PostForm.Get("client_id"), secret, true
	}
	return "", "", false
}

// outcomeWriter notes the status an endpoint answered and, where a storage
// callback set an override, answers that error instead of zitadel's.
type outcomeWriter struct {
	http.ResponseWriter
	auth      *clientAuth
	status    int
	swallowed bool
}

func (o *outcomeWriter) WriteHeader(code int) {
	if o.status != 0 {
		return
	}
	o.auth.mu.Lock()
	override, failed := o.auth.override, o.auth.failed
	o.auth.mu.Unlock()
	status := http.StatusBadRequest
	if failed {
		// zitadel says unauthorized_client (400) at introspection and revocation
		// and "invalid client_id / client_secret" at the token endpoint; RFC 6749
		// §5.2 has one answer for all: invalid_client, 401. Whether the client
		// exists is not told.
		override, status = oidc.ErrInvalidClient().WithDescription("client authentication failed"), http.StatusUnauthorized
	}
	if override != nil && code >= 400 {
		o.status, o.swallowed = status, true
		o.ResponseWriter.Header().Del("Content-Length")
		httphelper.MarshalJSONWithStatus(o.ResponseWriter, override, status)
		return
	}
	o.status = code
	o.ResponseWriter.WriteHeader(code)
}

func (o *outcomeWriter) Write(b []byte) (int, error) {
	if o.status == 0 {
		o.WriteHeader(http.StatusOK)
	}
	if o.swallowed {
		return len(b), nil
	}
	return o.ResponseWriter.Write(b)
}

func (o *outcomeWriter) Unwrap() http.ResponseWriter { return o.ResponseWriter }

// dummySecretHash is verified against when there is no client to verify
// against, so an unknown client id costs what a wrong secret costs and the
// answers cannot be told apart by their time.
var dummySecretHash = HashClientSecret([]byte("no client"), "no secret")

func (cs *clients) dummyVerify(secret string) {
	verifyClientSecret(cs.secretKey, dummySecretHash, secret)
}

// authenticate checks a confidential client's secret in constant time. Every
// refusal is the same error to the client; the reason is for the log.
func (cs *clients) authenticate(ctx context.Context, id, secret string) error {
	c, err := cs.get(ctx, id)
	if errors.Is(err, errUnknownClient) {
		cs.dummyVerify(secret)
		return err
	}
	if err != nil {
		return err
	}
	if c.Public {
		cs.dummyVerify(secret)
		return errors.New("public client presented a secret")
	}
	if c.static {
		sum := sha256.Sum256([]byte(secret))
		cs.dummyVerify(secret) // as long as a stored client's check
		if subtle.ConstantTimeCompare(sum[:], c.staticSecret[:]) != 1 {
			return errors.New("wrong client secret")
		}
		return nil
	}
	ok, legacy := verifyClientSecret(cs.secretKey, c.SecretHash, secret)
	if !ok {
		return errors.New("wrong client secret")
	}
	if legacy {
		cs.upgradeSecretHash(ctx, c.ID, c.SecretHash, secret)
	}
	return nil
}

// upgradeSecretHash replaces a bcrypt hash that just verified with the HMAC
// form, unless the secret was rotated meanwhile.
func (cs *clients) upgradeSecretHash(ctx context.Context, id, old, secret string) {
	hash := HashClientSecret(cs.secretKey, secret)
	err := cs.store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
		if c.SecretHash == old {
			c.SecretHash = hash
		}
		return c, nil
	})
	if err != nil {
		cs.log.WarnContext(ctx, "upgrade client secret hash", "client", id, "err", err)
	}
}
