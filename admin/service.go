package admin

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/storage"
)

// Config is what a Service needs. Online it must hold the running provider's own
// storage and key manager, so a rotation is in the JWKS at once.
type Config struct {
	Storage       storage.Storage
	Keys          *keys.Manager
	StaticClients []op.StaticClient
	Claims        op.ClaimsPolicy
	Issuer        string
	// IDTokenLifetime is the configured default, for the claims preview.
	IDTokenLifetime time.Duration
	// MaxTokenLifetime bounds per-client lifetimes: the time a retired signing
	// key stays published (keys.Options.RetainFor).
	MaxTokenLifetime time.Duration
	// DefaultCorpID is the organisation a provisioned userid belongs to when
	// none is given: the corpID of the one connector that has one.
	DefaultCorpID string
	// Membership asks the directories for users sync; nil: sync is refused.
	Membership MembershipSyncer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service implements API over storage.
type Service struct {
	// current is the configuration in force; Reconfigure swaps it whole.
	current atomic.Pointer[serviceConfig]
}

// serviceConfig is a Config with its defaults filled in and static clients indexed.
type serviceConfig struct {
	Config
	static map[string]op.StaticClient
}

var _ API = (*Service)(nil)

// NewService returns a Service over cfg.
func NewService(cfg Config) (*Service, error) {
	s := &Service{}
	if err := s.Reconfigure(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Reconfigure makes cfg the service's configuration, as a server's reload does
// (static clients, claims, lifetimes); on error nothing changes.
func (s *Service) Reconfigure(cfg Config) error {
	if cfg.Storage == nil || cfg.Keys == nil {
		return errors.New("admin: storage and keys are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IDTokenLifetime <= 0 {
		cfg.IDTokenLifetime = time.Hour
	}
	if cfg.MaxTokenLifetime <= 0 {
		cfg.MaxTokenLifetime = 24 * time.Hour
	}
	c := &serviceConfig{Config: cfg, static: make(map[string]op.StaticClient, len(cfg.StaticClients))}
	for _, sc := range cfg.StaticClients {
		c.static[sc.ID] = sc
	}
	s.current.Store(c)
	return nil
}

func (s *Service) conf() *serviceConfig { return s.current.Load() }
