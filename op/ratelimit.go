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

	"golang.org/x/time/rate"
)

// RateLimit bounds how often one client IP may hit the login, callback and token
// endpoints: enough for people and busy relying parties, too little for credential
// stuffing or for exhausting DingTalk's quota on our behalf.
type RateLimit struct {
	PerSecond float64 // sustained requests per second per IP; 0 turns limiting off
	Burst     int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed;
	// without them every request would seem to come from the proxy.
	TrustedProxies []netip.Prefix
}

// ipLimiter hands out a token bucket per client IP. Buckets idle long enough to
// have refilled are dropped, so memory follows the active clients.
type ipLimiter struct {
	cfg RateLimit
	now func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*rate.Limiter
	swept   time.Time
}

func newIPLimiter(cfg RateLimit, now func() time.Time) *ipLimiter {
	if cfg.Burst < 1 {
		cfg.Burst = max(1, int(math.Ceil(cfg.PerSecond)))
	}
	return &ipLimiter{cfg: cfg, now: now, buckets: make(map[netip.Addr]*rate.Limiter)}
}

// limit answers 429 with Retry-After once an IP has used its burst.
func (l *ipLimiter) limit(next http.Handler) http.Handler {
	if l.cfg.PerSecond <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, ok := l.allow(l.clientIP(r)); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			http.Error(w, "too many requests: slow down and try again later", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (l *ipLimiter) allow(ip netip.Addr) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, ok := l.buckets[ip]
	if !ok {
		b = rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)
		l.buckets[ip] = b
	}
	res := b.ReserveN(now, 1)
	if delay := res.DelayFrom(now); delay > 0 {
		res.CancelAt(now)
		return delay, false
	}
	return 0, true
}

// sweep drops full buckets at most once a minute.
func (l *ipLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	for ip, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.cfg.Burst) {
			delete(l.buckets, ip)
		}
	}
}

// clientIP is the peer's address, or — when the peer is a trusted proxy — the
// rightmost X-Forwarded-For address that is not one.
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
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip
		}
		if hop = hop.Unmap(); !l.trusted(hop) {
			return hop
		}
	}
	return ip
}

func (l *ipLimiter) trusted(ip netip.Addr) bool {
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
