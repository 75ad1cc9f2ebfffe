package admin

import (
	"github.com/dingbridge/dingbridge/op"

	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// checkRedirectURI refuses a redirect (or post-logout redirect) URI that would
// let a code or token reach someone other than the client, with the rule it
// breaks and the fix. what names the flag in messages.
func checkRedirectURI(what, raw string, public bool) error {
	if strings.Contains(raw, "*") {
		// Wildcards make every URL under a domain a place codes can be sent to.
		return refuse(ErrInvalid, "%s %q contains a wildcard (*): register each URI exactly", what, raw)
	}
	if strings.Contains(raw, "#") {
		// RFC 6749 §3.1.2: the response is added to the URI; a fragment would swallow it.
		return refuse(ErrInvalid, "%s %q has a fragment: remove the # and what follows", what, raw)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return refuse(ErrInvalid, "%s %q is not an absolute URI: write it with its scheme, like https://app.example.com/callback", what, raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return refuse(ErrInvalid, "%s %q has no host: write it like https://app.example.com/callback", what, raw)
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return refuse(ErrInvalid, "%s %q must use https: http is allowed only for 127.0.0.1, [::1] and localhost", what, raw)
		}
	case "javascript", "data", "file", "vbscript", "blob", "about":
		return refuse(ErrInvalid, "%s %q uses the %s scheme, which can never receive a login response", what, raw, u.Scheme)
	default:
		// A custom scheme (com.example.app:/cb) reaches whichever app claimed it on
		// the device, so only a client that has no secret to protect may use one
		// (RFC 8252 §7.1); its PKCE binds the code to the app that started the login.
		if !public {
			return refuse(ErrInvalid, "%s %q uses the custom scheme %q, allowed only for public (native) clients: add --public, or use an https URI", what, raw, u.Scheme)
		}
		return nil
	}
	if u.User != nil {
		return refuse(ErrInvalid, "%s %q contains a user name or password: remove the part before @", what, raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

func checkClientID(id string) error {
	if !clientIDPattern.MatchString(id) {
		// IDs travel in URLs and HTTP Basic auth (where ':' separates id and secret).
		return refuse(ErrInvalid, "client id %q is not allowed: use 1 to 128 letters, digits, '.', '_', '~' or '-'", id)
	}
	return nil
}

// parseGrantTypes checks and normalises the grants a client is given (device_code
// becomes the device grant's URN).
func parseGrantTypes(names []string) ([]string, error) {
	var types []string
	for _, n := range names {
		t, err := op.ParseGrantType(n)
		if err != nil {
			return nil, refuse(ErrInvalid, "%v", err)
		}
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	if len(types) > 0 && !slices.Contains(types, "authorization_code") && !slices.Contains(types, op.GrantTypeDeviceCode) {
		return nil, refuse(ErrInvalid, "grant types %v lack authorization_code and device_code: without one the client can never log anyone in", names)
	}
	return types, nil
}

// redirectsBrowsers reports whether a client with these grants sends people
// back to itself, and so needs a redirect URI: only a device-flow-only client does not.
func redirectsBrowsers(types []string) bool {
	return len(types) == 0 || slices.Contains(types, "authorization_code")
}

func checkScopes(scopes []string) error {
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return refuse(ErrInvalid, "scope %q is not allowed: a scope is one word without spaces or quotes", s)
		}
	}
	return nil
}

// checkLifetime refuses a lifetime out of range. The bound is how long a rotated
// signing key stays published: an id_token must expire before the key that signed
// it leaves the JWKS, and no token of dingbridge's should outlive an id_token.
func checkLifetime(what string, d Duration, max time.Duration) error {
	if d == 0 {
		return nil
	}
	if time.Duration(d) < time.Minute || time.Duration(d) > max {
		return refuse(ErrInvalid, "--%s %s is out of range: use between 1m and %s, or 0 for the configured default", what, d, Duration(max))
	}
	return nil
}
