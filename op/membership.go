package op

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/upstream"
)

// Offboarding: someone who leaves the company leaves its DingTalk organisation,
// but a session at dingbridge and a refresh token would keep working for weeks.
// So for connectors that admit members only (corpID + requireMembership), the
// organisation's directory is asked again when a session is reused for SSO and
// when a refresh token is used — at most once per Recheck per person. A leaver
// is disabled, with when and why on their record; their sessions and tokens are
// deleted and the apps they were logged in to get back-channel logouts. When
// DingTalk cannot be asked, the last confirmation stands for Grace, so an outage
// at DingTalk does not log everyone out.

// Membership says how often membership is asked again.
type Membership struct {
	Recheck time.Duration // 15m
	Grace   time.Duration // 24h: how long the last confirmation stands while DingTalk fails
}

const (
	defaultMembershipRecheck = 15 * time.Minute
	defaultMembershipGrace   = 24 * time.Hour
	// membershipCheckTimeout bounds one re-check: a person's refresh or SSO waits for it.
	membershipCheckTimeout = 5 * time.Second
	// membershipRetryAfterFailure: while DingTalk fails, a person is asked about at
	// most this often, so an outage does not make every request wait for a timeout.
	membershipRetryAfterFailure = time.Minute
	// disabledByDirectoryPrefix starts the DisabledReason of people the directory
	// no longer lists; only those are re-enabled by a later login that finds them
	// a member again. An administrator's disable stays.
	disabledByDirectoryPrefix = "directory: "
)

var (
	// errOffboarded: the person left the organisation and was logged out.
	errOffboarded = errors.New("no longer a member of the organisation")
	// errMembershipUnknown: DingTalk has not answered for longer than the grace.
	errMembershipUnknown = errors.New("membership could not be confirmed")
)

type membershipChecks struct {
	recheck, grace time.Duration

	mu       sync.Mutex
	inFlight map[string]*membershipCall // by subject: one question at a time per person
	failedAt map[string]time.Time       // last failed question per person

	// kept counts the requests let through on an old confirmation because
	// DingTalk could not be asked.
	kept atomic.Int64
}

type membershipCall struct {
	done chan struct{}
	err  error
}

func newMembershipChecks(m Membership) *membershipChecks {
	if m.Recheck <= 0 {
		m.Recheck = defaultMembershipRecheck
	}
	if m.Grace <= 0 {
		m.Grace = defaultMembershipGrace
	}
	return &membershipChecks{recheck: m.Recheck, grace: m.Grace,
		inFlight: map[string]*membershipCall{}, failedAt: map[string]time.Time{}}
}

// MembershipKept is how often a session or refresh was let through on an older
// confirmation of membership because DingTalk could not be asked.
func (p *Provider) MembershipKept() int64 { return p.membership.kept.Load() }

// requiresMembership reports whether conn admits members only and can re-check.
func requiresMembership(conn Connector) bool {
	mc, ok := conn.Connector.(upstream.MembershipChecker)
	return ok && mc.RequiresMembership()
}

func disabledByDirectory(u storage.User) bool {
	return u.Disabled && strings.HasPrefix(u.DisabledReason, disabledByDirectoryPrefix)
}

// stillMember re-checks u's membership when it is due. nil: the person may go
// on. errOffboarded: they left, and have been disabled and logged out.
// errMembershipUnknown: DingTalk has failed for longer than the grace.
func (p *Provider) stillMember(ctx context.Context, u storage.User) error {
	conn, ok := p.connector(u.ConnectorID)
	if !ok || !requiresMembership(conn) || u.UnionID == "" {
		return nil
	}
	m := p.membership
	now := p.now()
	last := u.MembershipCheckedAt
	if last.IsZero() {
		last = u.LastLogin // recorded before re-checks existed: the login checked it
	}
	if now.Sub(last) < m.recheck {
		return nil
	}
	m.mu.Lock()
	failed, recently := m.failedAt[u.Subject]
	recently = recently && now.Sub(failed) < membershipRetryAfterFailure
	call, waiting := m.inFlight[u.Subject]
	if !waiting && !recently {
		call = &membershipCall{done: make(chan struct{})}
		m.inFlight[u.Subject] = call
	}
	m.mu.Unlock()

	var err error
	switch {
	case waiting:
		select {
		case <-call.done:
			err = call.err
		case <-ctx.Done():
			return ctx.Err()
		}
	case recently:
		err = errors.New("dingtalk did not answer the last membership check")
	default:
		err = p.askMembership(ctx, conn, u)
		m.mu.Lock()
		if err != nil && !errors.Is(err, upstream.ErrNotAllowed) {
			m.failedAt[u.Subject] = p.now()
		} else {
			delete(m.failedAt, u.Subject)
		}
		delete(m.inFlight, u.Subject)
		m.mu.Unlock()
		call.err = err
		close(call.done)
	}

	switch {
	case err == nil:
		return nil
	case errors.Is(err, upstream.ErrNotAllowed):
		return errOffboarded
	case now.Sub(last) < m.grace:
		kept := m.kept.Add(1)
		p.log.WarnContext(ctx, "membership re-check failed; keeping the last confirmation within the grace",
			"subject", u.Subject, "connector", conn.ID, "confirmed", last.UTC().Format(time.RFC3339),
			"graceEnds", last.Add(m.grace).UTC().Format(time.RFC3339), "keptTotal", kept, "err", err)
		return nil
	default:
		p.log.ErrorContext(ctx, "membership re-check failed and the grace is over; refusing until DingTalk answers",
			"subject", u.Subject, "connector", conn.ID, "confirmed", last.UTC().Format(time.RFC3339), "err", err)
		return errMembershipUnknown
	}
}

// askMembership asks the connector and acts on the answer: a confirmation is
// recorded, a leaver offboarded. It returns the connector's answer.
func (p *Provider) askMembership(ctx context.Context, conn Connector, u storage.User) error {
	ctx, cancel := context.WithTimeout(ctx, membershipCheckTimeout)
	defer cancel()
	err := conn.Connector.(upstream.MembershipChecker).CheckMembership(ctx, u.UnionID)
	var pe *upstream.PolicyError
	switch {
	case err == nil:
		now := p.now().UTC()
		_, uerr := p.store.UpsertUser(context.WithoutCancel(ctx), u.Subject, func(u storage.User, found bool) (storage.User, error) {
			if !found {
				return u, errNoSuchUser
			}
			u.MembershipCheckedAt = now
			return u, nil
		})
		if uerr != nil {
			p.log.ErrorContext(ctx, "record membership check", "subject", u.Subject, "err", uerr)
		}
		return nil
	case errors.As(err, &pe):
		reason := disabledByDirectoryPrefix + pe.Error()
		p.log.InfoContext(ctx, "offboarding: the directory no longer admits the person", "subject", u.Subject,
			"connector", conn.ID, "reason", pe.Error())
		if _, oerr := p.Offboard(context.WithoutCancel(ctx), u.Subject, reason); oerr != nil {
			p.log.ErrorContext(ctx, "offboard", "subject", u.Subject, "err", oerr)
		}
		return err
	}
	return err
}

var errNoSuchUser = errors.New("no such user")

// Offboard disables the person with reason, deletes their sessions, access and
// refresh tokens, and sends back-channel logouts to the apps they were logged
// in to through those sessions. Disabling first means no new session can start
// while the old ones are being removed.
func (p *Provider) Offboard(ctx context.Context, subject, reason string) (storage.User, error) {
	now := p.now().UTC()
	u, err := p.store.UpsertUser(ctx, subject, func(u storage.User, found bool) (storage.User, error) {
		if !found {
			return u, errNoSuchUser
		}
		if !u.Disabled {
			u.Disabled, u.DisabledAt, u.DisabledReason = true, now, reason
		}
		return u, nil
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("disable %s: %w", subject, err)
	}
	sessions, err := p.store.SessionsOf(ctx, subject)
	if err != nil {
		return u, fmt.Errorf("sessions of %s: %w", subject, err)
	}
	if err := p.store.RevokeSubject(ctx, subject); err != nil {
		return u, fmt.Errorf("revoke tokens and sessions of %s: %w", subject, err)
	}
	for _, sess := range sessions {
		p.notifyLogout(ctx, sess)
	}
	p.log.InfoContext(ctx, "offboarded", "subject", subject, "sessions", len(sessions), "reason", u.DisabledReason)
	return u, nil
}

// SyncReport is what SyncMembership found: every user of a connector that
// admits members only, asked once.
type SyncReport struct {
	Checked int          `json:"checked"`
	Leavers []SyncLeaver `json:"leavers"`
	// Unknown are people DingTalk could not answer for; nothing was done to them.
	Unknown []SyncFailure `json:"unknown"`
	// Applied: leavers were disabled and logged out (else it was a dry run).
	Applied bool `json:"applied"`
}

// SyncLeaver is a person the directory no longer admits.
type SyncLeaver struct {
	Subject string `json:"subject"`
	Nick    string `json:"nick,omitempty"`
	Reason  string `json:"reason"`
}

// SyncFailure is a person whose membership could not be asked.
type SyncFailure struct {
	Subject string `json:"subject"`
	Error   string `json:"error"`
}

// SyncMembership asks the directory about every enabled user of a connector that
// admits members only. With apply, leavers are offboarded; without, only reported.
func (p *Provider) SyncMembership(ctx context.Context, apply bool) (SyncReport, error) {
	users, err := p.store.ListUsers(ctx)
	if err != nil {
		return SyncReport{}, fmt.Errorf("list users: %w", err)
	}
	report := SyncReport{Leavers: []SyncLeaver{}, Unknown: []SyncFailure{}, Applied: apply}
	for _, u := range users {
		conn, ok := p.connector(u.ConnectorID)
		if u.Disabled || u.UnionID == "" || !ok || !requiresMembership(conn) {
			continue
		}
		report.Checked++
		askCtx, cancel := context.WithTimeout(ctx, membershipCheckTimeout)
		err := conn.Connector.(upstream.MembershipChecker).CheckMembership(askCtx, u.UnionID)
		cancel()
		var pe *upstream.PolicyError
		switch {
		case err == nil:
		case errors.As(err, &pe):
			report.Leavers = append(report.Leavers, SyncLeaver{Subject: u.Subject, Nick: u.Nick, Reason: pe.Error()})
			if apply {
				if _, err := p.Offboard(ctx, u.Subject, disabledByDirectoryPrefix+pe.Error()); err != nil {
					return report, err
				}
			}
		default:
			if ctx.Err() != nil {
				return report, ctx.Err()
			}
			report.Unknown = append(report.Unknown, SyncFailure{Subject: u.Subject, Error: err.Error()})
		}
	}
	return report, nil
}
