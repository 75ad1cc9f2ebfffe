package op

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestClientIPBehindTrustedProxies(t *testing.T) {
	l := newIPLimiter(RateLimit{PerSecond: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, time.Now)
	cases := []struct {
		name, remote, xff, want string
	}{
		{"direct client", "203.0.113.7:5000", "", "203.0.113.7"},
		{"an untrusted peer's header is ignored", "203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},
		{"through the proxy", "10.1.2.3:443", "198.51.100.1", "198.51.100.1"},
		{"spoofed left entries are skipped", "10.1.2.3:443", "1.1.1.1, 198.51.100.1, 10.9.9.9", "198.51.100.1"},
		{"garbage stops at the proxy", "10.1.2.3:443", "not-an-ip", "10.1.2.3"},
		{"IPv4 with a port", "10.1.2.3:443", "198.51.100.7:5555", "198.51.100.7"},
		{"IPv6 with a port", "10.1.2.3:443", "[2001:db8::1]:443", "2001:db8::1"},
		{"IPv6 in brackets", "10.1.2.3:443", "[2001:db8::2]", "2001:db8::2"},
		{"ports among the hops", "10.1.2.3:443", "1.1.1.1:1, 198.51.100.8:80, 10.9.9.9:8080", "198.51.100.8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/login", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := l.clientIP(r); got.String() != tc.want {
				t.Errorf("clientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIdleBucketsAreDropped(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newIPLimiter(RateLimit{PerSecond: 1, Burst: 1}, func() time.Time { return now })
	for i := range 100 {
		l.allow(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
	}
	now = now.Add(2 * time.Minute)
	l.allow(netip.MustParseAddr("198.51.100.1"))
	if len(l.buckets) != 1 {
		t.Errorf("%d buckets after every other client went idle, want 1", len(l.buckets))
	}
}
