package dingtalk

import (
	"net"
	"net/http"
	"time"
)

// Bounds on each phase of a DingTalk call. The whole call is bounded by the
// Client's Timeout; these stop one slow phase from using all of it.
const (
	dialTimeout         = 5 * time.Second
	tlsHandshakeTimeout = 5 * time.Second
	// idleConnsPerHost is how many kept-alive connections to each DingTalk host
	// wait for the next call. A login makes two or three calls of a few
	// milliseconds each, so this covers bursts of a few hundred logins a second;
	// http.DefaultTransport keeps two, and under such a burst every other call
	// would dial (and, to the real DingTalk, shake hands) again.
	idleConnsPerHost = 32
	idleConnTimeout  = 90 * time.Second
)

// NewHTTPClient returns the HTTP client for DingTalk calls, meant to be shared
// by every Client and Connector of a process (one pool of kept-alive
// connections): dials and TLS handshakes are bounded, the proxy comes from the
// environment, and redirects are not followed — DingTalk's APIs do not redirect,
// and a redirected call would carry the user's access token header to wherever
// it points.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   tlsHandshakeTimeout,
			MaxIdleConns:          4 * idleConnsPerHost,
			MaxIdleConnsPerHost:   idleConnsPerHost,
			IdleConnTimeout:       idleConnTimeout,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
