package admin

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dingbridge/dingbridge/config"
	"github.com/dingbridge/dingbridge/op"
)

// checkRedirectURI refuses a redirect (or post-logout redirect) URI that would
// let a code or token reach someone other than the client, by the rule `config
// check` applies to static clients. what names the flag in messages.
func checkRedirectURI(what, raw string, public bool) error {
	if problem := config.RedirectURIProblem(raw, public); problem != "" {
		return refuse(ErrInvalid, "%s %q %s", what, raw, problem)
	}
	return nil
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
