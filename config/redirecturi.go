package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// RedirectURIProblem judges a redirect (or post-logout redirect) URI: "" when the
// authorization server may send a browser there with a code or after logout,
// otherwise what is wrong and how to fix it, worded to follow the quoted URI in
// a message ("https://x.example/* contains a wildcard …"). `config check` (for
// staticClients) and `client add`/`client update` (through package admin) both
// ask this one function, so a URI one accepts the other accepts too.
func RedirectURIProblem(raw string, public bool) string {
	if raw == "" {
		return "is empty: set it to a URL"
	}
	if strings.Contains(raw, "*") {
		// Wildcards make every URL under a domain a place codes can be sent to.
		return "contains a wildcard (*): register each URI exactly"
	}
	if strings.Contains(raw, "#") {
		// RFC 6749 §3.1.2: the response is added to the URI; a fragment would swallow it.
		return "has a fragment: remove the # and what follows"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "is not an absolute URL: write it with its scheme, e.g. https://app.example.com/callback"
	}
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "https", "http":
		if u.Host == "" {
			return "has no host: write it like https://app.example.com/callback"
		}
		if u.User != nil {
			return "contains a user name or password: remove the part before @"
		}
		if port := u.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Sprintf("has port %s: a port is a number from 1 to 65535", port)
			}
		} else if strings.HasSuffix(u.Host, ":") {
			return "has an empty port: remove the colon or add the port"
		}
		if scheme == "http" && !isLoopback(u.Hostname()) {
			return "must use https: http is allowed only for 127.0.0.1, [::1] and localhost"
		}
		return ""
	case "javascript", "data", "file", "vbscript", "blob", "about", "ftp", "ws", "wss":
		return fmt.Sprintf("uses the %s scheme, which can never receive a login response", u.Scheme)
	default:
		// A custom scheme (com.example.app:/cb) reaches whichever app claimed it on
		// the device, so only a client with no secret to protect may use one
		// (RFC 8252 §7.1); its PKCE binds the code to the app that started the login.
		if !public {
			return fmt.Sprintf("uses the custom scheme %s, allowed only for public (native) clients: make the client public, or use an https URL", u.Scheme)
		}
		if u.Opaque == "" && u.Path == "" && u.Host == "" {
			return "has nothing after the scheme: write it like com.example.app:/callback"
		}
		return ""
	}
}
