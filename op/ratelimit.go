package op

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/time/rate"
)

// RateLimit bounds how often one client IP may use the browser endpoints (authorize,
// login, callback, device, consent) and how many failures an address or a client
// may have at the endpoints that authenticate clients: enough for people and busy
// relying parties, too little for credential stuffing, for filling the database
// with abandoned logins, or for exhausting DingTalk's quota on our behalf.
type RateLimit struct {
	PerSecond float64 // sustained requests per second per IP; 0 turns limiting off
	Burst     int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed;
	// without them every request would seem to come from the proxy.
	TrustedProxies []netip.Prefix
}

// bucketSet hands out a token bucket per key. Buckets idle long enough to have
// refilled are dropped, so memory follows the active keys.
type bucketSet[K comparable] struct {
	perSecond float64
	burst     int
	now       func() time.Time

	mu      sync.Mutex
	buckets map[K]*rate.Limiter
	swept   time.Time
}

func newBucketSet[K comparable](perSecond float64, burst int, now func() time.Time) *bucketSet[K] {
	if burst < 1 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &bucketSet[K]{perSecond: perSecond, burst: burst, now: now, buckets: make(map[K]*rate.Limiter)}
}

// take spends one token of key's bucket; when there is none it spends nothing
// and says how long until there is.
func (b *bucketSet[K]) take(key K) (time.Duration, bool) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.bucket(key, now)
	res := l.ReserveN(now, 1)
	if delay := res.DelayFrom(now); delay > 0 {
		res.CancelAt(now)
		return delay, false
	}
	return 0, true
}

// empty reports whether key's bucket has no token left, and until when,
// without spending one.
func (b *bucketSet[K]) empty(key K) (time.Duration, bool) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.buckets[key]
	if !ok {
		return 0, false
	}
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / b.perSecond * float64(time.Second)), true
}

func (b *bucketSet[K]) bucket(key K, now time.Time) *rate.Limiter {
	b.sweep(now)
	l, ok := b.buckets[key]
	if !ok {
		l = rate.NewLimiter(rate.Limit(b.perSecond), b.burst)
		b.buckets[key] = l
	}
	return l
}

// sweep drops full buckets at most once a minute.
func (b *bucketSet[K]) sweep(now time.Time) {
	if now.Sub(b.swept) < time.Minute {
		return
	}
	b.swept = now
	for k, l := range b.buckets {
		if l.TokensAt(now) >= float64(b.burst) {
			delete(b.buckets, k)
		}
	}
}

// ipLimiter counts every request per client IP, for the endpoints a browser uses.
type ipLimiter struct {
	cfg RateLimit
	*bucketSet[netip.Addr]
}

func newIPLimiter(cfg RateLimit, now func() time.Time) *ipLimiter {
	return &ipLimiter{cfg: cfg, bucketSet: newBucketSet[netip.Addr](cfg.PerSecond, cfg.Burst, now)}
}

func (l *ipLimiter) allow(ip netip.Addr) (time.Duration, bool) { return l.take(ip) }

// limit answers 429 with Retry-After once an IP has used its burst.
func (l *ipLimiter) limit(next http.Handler) http.Handler {
	if l.cfg.PerSecond <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, ok := l.allow(l.clientIP(r)); !ok {
			tooManyRequests(w, wait, false)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tooManyRequests answers 429 with Retry-After in whole seconds; as a page's
// plain text, or as an OAuth error where a program is asking.
func tooManyRequests(w http.ResponseWriter, wait time.Duration, oauth bool) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	if oauth {
		httphelper.MarshalJSONWithStatus(w, &oidc.Error{ErrorType: "slow_down", Description: "too many failed requests: slow down and try again later"}, http.StatusTooManyRequests)
		return
	}
	http.Error(w, "too many requests: slow down and try again later", http.StatusTooManyRequests)
}

// clientIP is the peer's address, or — when the peer is a trusted proxy — the
// rightmost X-Forwarded-For address that is not one. Proxies that add the
// client's port (`198.51.100.7:5555`, `[2001:db8::1]:443`) are understood.
func (l *ipLimiter) clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	ip = ip.Unmap()
	if !l.trusted(ip) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseForwardedHop(hops[i])
		if !ok {
			return ip
		}
		if !l.trusted(hop) {
			return hop
		}
	}
	return ip
}

// parseForwardedHop reads one X-Forwarded-For entry: an address, with or
// without a port, IPv6 with or without brackets.
func parseForwardedHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if ip, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return ip.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func (l *ipLimiter) trusted(ip netip.Addr) bool {
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
