package op

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
)

// settings are the part of the configuration a running provider can change:
// Reconfigure builds a new one and swaps it in whole. Everything else (issuer,
// storage, keys) is fixed for the provider's life, and every record a login,
// session or token lives on is in storage, so a swap loses none of them.
type settings struct {
	connectors []Connector
	clients    *clients
	claims     ClaimsPolicy
	lifetimes  Lifetimes
	register   Registration
	branding   Branding
	limiter    *ipLimiter
	failures   *failureLimiter
	// upstreamOrigins are where the connectors' login pages are, for the
	// policy of a form whose answer may send the person there.
	upstreamOrigins []string
}

// settings returns the configuration in force. A request that reads it more
// than once may see a reload in between, which is as good as arriving later.
func (p *Provider) settings() *settings { return p.current.Load() }

// Reconfigure replaces the provider's connectors, static clients, claims
// policy, lifetimes, registration policy, branding and rate limit with cfg's; the other
// fields of cfg (and Membership's timings) are ignored. Logins in flight, sessions and tokens carry on: they are in storage.
// Per-IP rate-limit buckets start afresh. The device flow's code lifetime and
// poll interval are zitadel's and keep the values the provider was built with.
// On error nothing changes.
func (p *Provider) Reconfigure(cfg Config) error {
	if len(cfg.Connectors) == 0 {
		return errors.New("op: no connector configured")
	}
	seen := make(map[string]bool, len(cfg.Connectors))
	for _, c := range cfg.Connectors {
		if c.ID == "" || c.Connector == nil || seen[c.ID] {
			return errors.New("op: every connector needs an ID of its own and an upstream connector")
		}
		seen[c.ID] = true
	}
	s := &settings{
		connectors: cfg.Connectors,
		claims:     cfg.Claims,
		lifetimes:  cfg.Lifetimes.withDefaults(),
		register:   cfg.Registration,
		branding:   cfg.Branding,
		limiter:    newIPLimiter(cfg.RateLimit, p.now),
	}
	s.failures = newFailureLimiter(cfg.RateLimit, s.limiter)
	if s.claims.Subject == "" {
		s.claims.Subject = "unionid"
	}
	if s.claims.PreferredUsername == "" {
		s.claims.PreferredUsername = UsernamePinyin
	}
	for _, c := range cfg.Connectors {
		target, err := c.Connector.LoginURL("state", p.issuer+"/callback/"+c.ID)
		if err != nil {
			return fmt.Errorf("op: connector %s: %w", c.ID, err)
		}
		if origin := cspOrigin(target); origin != "" && !slices.Contains(s.upstreamOrigins, origin) {
			s.upstreamOrigins = append(s.upstreamOrigins, origin)
		}
	}
	s.clients = newClients(cfg.StaticClients, p.store, s.lifetimes, func(id string) string {
		return p.issuerPath + "/login?authRequestID=" + url.QueryEscape(id)
	}, p.clientSecretKey, p.log)
	p.current.Store(s)
	return nil
}
