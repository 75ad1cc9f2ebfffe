package admin

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/storage"
)

// Provisioning: people an administrator adds before their first login, under a
// subject of the administrator's choosing (the username an app already knows
// them by), keyed by what the administrator knows. The first DingTalk login that
// matches binds the record to the person's unionid (package op decides what
// matches).

// UserSpec is a person to add: users add, or one row of users import.
type UserSpec struct {
	Subject string `json:"subject"`
	UnionID string `json:"unionid,omitempty"`
	UserID  string `json:"userid,omitempty"`
	// CorpID is the organisation UserID belongs to; empty: the one connector's corpID.
	CorpID string `json:"corp,omitempty"`
	Mobile string `json:"mobile,omitempty"` // E.164, or a mainland number (+86 is added)
	Email  string `json:"email,omitempty"`
	Name   string `json:"name,omitempty"`
	// Line is the row of the CSV file the spec came from, for the report.
	Line int `json:"line,omitempty"`
}

// ImportReport says what users import did with each row. When Invalid is not
// empty nothing was added: fix the rows and import the file again.
type ImportReport struct {
	Added        []string        `json:"added"`
	AlreadyThere []string        `json:"alreadyThere"`
	Invalid      []ImportProblem `json:"invalid"`
}

// ImportProblem is a row that cannot be imported, and why.
type ImportProblem struct {
	Line    int    `json:"line"`
	Subject string `json:"subject,omitempty"`
	Reason  string `json:"reason"`
}

// UsersCSVColumns are the columns of users import and users export, in order.
var UsersCSVColumns = []string{"subject", "unionid", "userid", "corp", "mobile", "email", "name"}

// ParseUsersCSV reads a users CSV file: a header naming some of UsersCSVColumns
// (subject is required), then one person a row. Values are checked by
// ImportUsers; this refuses only a file that is not such a table.
func ParseUsersCSV(r io.Reader) ([]UserSpec, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // short rows are reported per row, with their line
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, refuse(ErrInvalid, "the CSV file is empty: its first line names the columns, e.g. %s", strings.Join(UsersCSVColumns, ","))
	}
	if err != nil {
		return nil, refuse(ErrInvalid, "the CSV file cannot be read: %v", err)
	}
	index := map[string]int{}
	for i, name := range header {
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff"))) // a spreadsheet's byte order mark
		if !slices.Contains(UsersCSVColumns, name) {
			return nil, refuse(ErrInvalid, "CSV column %q is unknown: the columns are %s", name, strings.Join(UsersCSVColumns, ", "))
		}
		if _, twice := index[name]; twice {
			return nil, refuse(ErrInvalid, "CSV column %q appears twice", name)
		}
		index[name] = i
	}
	if _, ok := index["subject"]; !ok {
		return nil, refuse(ErrInvalid, "the CSV file has no subject column: every row needs the subject (sub) the person will have")
	}
	var specs []UserSpec
	for {
		record, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return specs, nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, refuse(ErrInvalid, "the CSV file cannot be read: %v", err)
		}
		if len(record) == 1 && strings.TrimSpace(record[0]) == "" {
			continue // a blank line
		}
		field := func(name string) string {
			if i, ok := index[name]; ok && i < len(record) {
				return strings.TrimSpace(record[i])
			}
			return ""
		}
		specs = append(specs, UserSpec{
			Subject: field("subject"), UnionID: field("unionid"), UserID: field("userid"), CorpID: field("corp"),
			Mobile: field("mobile"), Email: field("email"), Name: field("name"), Line: line,
		})
	}
}

// WriteUsersCSV writes users as users import reads them.
func WriteUsersCSV(w io.Writer, users []User) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(UsersCSVColumns); err != nil {
		return err
	}
	for _, u := range users {
		if err := cw.Write([]string{u.Subject, u.UnionID, u.UserID, u.CorpID, u.Phone, u.Email, u.Nick}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// checkUserSpec normalises spec or says what is wrong with it.
func (s *Service) checkUserSpec(spec UserSpec) (UserSpec, error) {
	spec.Subject = strings.TrimSpace(spec.Subject)
	switch {
	case spec.Subject == "":
		return spec, errors.New("subject is empty: give the sub the person will have (their existing username, or any stable id)")
	case len(spec.Subject) > 255:
		return spec, errors.New("subject is longer than 255 bytes")
	case strings.Contains(spec.Subject, ":"):
		return spec, fmt.Errorf("subject %q contains ':', which dingbridge's tokens use as a separator", spec.Subject)
	case !printable(spec.Subject):
		return spec, fmt.Errorf("subject %q contains spaces or control characters", spec.Subject)
	}
	for _, f := range []struct{ name, value string }{{"unionid", spec.UnionID}, {"userid", spec.UserID}, {"corp", spec.CorpID}} {
		if f.value != "" && (!printable(f.value) || len(f.value) > 128) {
			return spec, fmt.Errorf("%s %q is not a DingTalk id (no spaces, at most 128 bytes)", f.name, f.value)
		}
	}
	if spec.UserID != "" && spec.CorpID == "" {
		spec.CorpID = s.conf().DefaultCorpID
		if spec.CorpID == "" {
			return spec, fmt.Errorf("userid %s needs its organisation: give corp (--corp), since not exactly one connector has a corpID", spec.UserID)
		}
	}
	if spec.UserID == "" && spec.CorpID != "" {
		return spec, errors.New("corp is set without userid: corp names the organisation of the userid")
	}
	if spec.Mobile != "" {
		phone, ok := normalizeMobile(spec.Mobile)
		if !ok {
			return spec, fmt.Errorf("mobile %q is not a phone number: write it like +8613800138000", spec.Mobile)
		}
		spec.Mobile = phone
	}
	if spec.Email != "" {
		addr, err := mail.ParseAddress(spec.Email)
		if err != nil || addr.Address != spec.Email || addr.Name != "" {
			return spec, fmt.Errorf("email %q is not an address like name@example.com", spec.Email)
		}
		spec.Email = strings.ToLower(spec.Email)
	}
	spec.Name = strings.TrimSpace(spec.Name)
	if utf8.RuneCountInString(spec.Name) > 64 || strings.ContainsFunc(spec.Name, unicode.IsControl) {
		return spec, errors.New("name is longer than 64 characters or contains control characters")
	}
	return spec, nil
}

func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// normalizeMobile writes a number as E.164: "+86 138-0013-8000" and
// "13800138000" (a mainland mobile) both become "+8613800138000", the form
// DingTalk's numbers take in user records.
func normalizeMobile(s string) (string, bool) {
	s = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(s)
	switch {
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	case strings.HasPrefix(s, "00"):
		s = s[2:]
	case len(s) == 11 && s[0] == '1':
		s = "86" + s
	default:
		return "", false
	}
	if len(s) < 8 || len(s) > 15 || strings.Trim(s, "0123456789") != "" || s[0] == '0' {
		return "", false
	}
	return "+" + s, true
}

// errUserExists stops UpsertUser from overwriting a user with a provisioned one.
var errUserExists = errors.New("user exists")

// AddUser provisions one person.
func (s *Service) AddUser(ctx context.Context, spec UserSpec) (User, error) {
	spec, err := s.checkUserSpec(spec)
	if err != nil {
		return User{}, refuse(ErrInvalid, "%s", err)
	}
	if err := s.unionIDFree(ctx, spec.UnionID, spec.Subject); err != nil {
		return User{}, err
	}
	u, err := s.provision(ctx, spec)
	if errors.Is(err, errUserExists) {
		return User{}, refuse(ErrConflict, "user %q already exists: `dingbridge users show %s`", spec.Subject, spec.Subject)
	}
	return u, err
}

// unionIDFree refuses a unionid that another record is bound to.
func (s *Service) unionIDFree(ctx context.Context, unionID, subject string) error {
	if unionID == "" {
		return nil
	}
	bound, err := s.conf().Storage.FindUsers(ctx, storage.UserKey{UnionID: unionID})
	if err != nil {
		return fmt.Errorf("look up unionid: %w", err)
	}
	for _, u := range bound {
		if u.Subject != subject {
			return refuse(ErrConflict, "unionid %s is already bound to user %q: `dingbridge users unlink %s` first", unionID, u.Subject, u.Subject)
		}
	}
	return nil
}

func (s *Service) provision(ctx context.Context, spec UserSpec) (User, error) {
	now := s.conf().Now().UTC()
	u, err := s.conf().Storage.UpsertUser(ctx, spec.Subject, func(u storage.User, found bool) (storage.User, error) {
		if found {
			return u, errUserExists
		}
		u = storage.User{
			Subject: spec.Subject, UnionID: spec.UnionID, UserID: spec.UserID, CorpID: spec.CorpID,
			Phone: spec.Mobile, Email: spec.Email, Nick: spec.Name, ProvisionedAt: now,
		}
		if spec.UnionID != "" {
			u.BoundAt = now
		}
		return u, nil
	})
	if err != nil {
		if errors.Is(err, errUserExists) {
			return User{}, err
		}
		return User{}, fmt.Errorf("add user %q: %w", spec.Subject, err)
	}
	return viewUser(u), nil
}

// ImportUsers provisions every row, or none: rows are checked first (values,
// repeats within the file, unionids bound elsewhere), and if any is invalid
// nothing is added. A subject that exists already is reported and left as it
// is, so importing the same file again adds only what is new.
func (s *Service) ImportUsers(ctx context.Context, specs []UserSpec) (ImportReport, error) {
	report := ImportReport{Added: []string{}, AlreadyThere: []string{}, Invalid: []ImportProblem{}}
	var toAdd []UserSpec
	seenSubject, seenUnion := map[string]int{}, map[string]int{}
	for i, spec := range specs {
		line := spec.Line
		if line == 0 {
			line = i + 1
		}
		invalid := func(format string, args ...any) {
			report.Invalid = append(report.Invalid, ImportProblem{Line: line, Subject: spec.Subject, Reason: fmt.Sprintf(format, args...)})
		}
		spec, err := s.checkUserSpec(spec)
		if err != nil {
			invalid("%s", err)
			continue
		}
		if first, ok := seenSubject[spec.Subject]; ok {
			invalid("subject %q is on line %d too", spec.Subject, first)
			continue
		}
		seenSubject[spec.Subject] = line
		if spec.UnionID != "" {
			if first, ok := seenUnion[spec.UnionID]; ok {
				invalid("unionid %s is on line %d too", spec.UnionID, first)
				continue
			}
			seenUnion[spec.UnionID] = line
		}
		_, err = s.conf().Storage.GetUser(ctx, spec.Subject)
		switch {
		case err == nil:
			report.AlreadyThere = append(report.AlreadyThere, spec.Subject)
			continue
		case !errors.Is(err, storage.ErrNotFound):
			return ImportReport{}, fmt.Errorf("look up user %q: %w", spec.Subject, err)
		}
		if err := s.unionIDFree(ctx, spec.UnionID, spec.Subject); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				return ImportReport{}, err
			}
			invalid("%s", e.Message)
			continue
		}
		toAdd = append(toAdd, spec)
	}
	if len(report.Invalid) > 0 {
		report.AlreadyThere = []string{}
		return report, nil
	}
	for _, spec := range toAdd {
		_, err := s.provision(ctx, spec)
		switch {
		case errors.Is(err, errUserExists): // added meanwhile, by a login or another import
			report.AlreadyThere = append(report.AlreadyThere, spec.Subject)
		case err != nil:
			return report, fmt.Errorf("%w (the rows before it were added; importing the file again adds the rest)", err)
		default:
			report.Added = append(report.Added, spec.Subject)
		}
	}
	return report, nil
}

// LinkUser binds subject to the DingTalk account unionID, as a first login would.
func (s *Service) LinkUser(ctx context.Context, subject, unionID string) (User, error) {
	unionID = strings.TrimSpace(unionID)
	if unionID == "" || !printable(unionID) {
		return User{}, refuse(ErrInvalid, "--unionid %q is not a DingTalk unionid", unionID)
	}
	if err := s.unionIDFree(ctx, unionID, subject); err != nil {
		return User{}, err
	}
	now := s.conf().Now().UTC()
	var boundElsewhere string
	u, err := s.conf().Storage.UpsertUser(ctx, subject, func(u storage.User, found bool) (storage.User, error) {
		switch {
		case !found:
			return u, errNoSuchUser
		case u.UnionID == unionID:
			return u, nil
		case u.UnionID != "":
			boundElsewhere = u.UnionID
			return u, errUserExists
		}
		u.UnionID, u.BoundAt = unionID, now
		return u, nil
	})
	switch {
	case errors.Is(err, errNoSuchUser):
		return User{}, userNotFound(subject)
	case errors.Is(err, errUserExists):
		return User{}, refuse(ErrConflict, "user %q is bound to unionid %s: `dingbridge users unlink %s` first", subject, boundElsewhere, subject)
	case err != nil:
		return User{}, fmt.Errorf("link user %q: %w", subject, err)
	}
	return viewUser(u), nil
}

// UnlinkUser forgets the DingTalk account bound to subject, and what it said
// (staff id, mobile, addresses), so the next login of that account does not bind
// it again; its sessions and tokens are deleted. The record waits, as a
// provisioned one, for `users link`.
func (s *Service) UnlinkUser(ctx context.Context, subject string) (User, error) {
	now := s.conf().Now().UTC()
	u, err := s.conf().Storage.UpsertUser(ctx, subject, func(u storage.User, found bool) (storage.User, error) {
		if !found {
			return u, errNoSuchUser
		}
		u.UnionID, u.OpenID, u.BoundAt = "", "", time.Time{}
		u.UserID, u.CorpID, u.Phone, u.Email, u.OrgEmail = "", "", "", "", ""
		if u.ProvisionedAt.IsZero() {
			u.ProvisionedAt = now
		}
		return u, nil
	})
	if errors.Is(err, errNoSuchUser) {
		return User{}, userNotFound(subject)
	}
	if err != nil {
		return User{}, fmt.Errorf("unlink user %q: %w", subject, err)
	}
	if err := s.conf().Storage.RevokeSubject(ctx, subject); err != nil {
		return viewUser(u), fmt.Errorf("revoke tokens and sessions of %q: %w", subject, err)
	}
	return viewUser(u), nil
}

// MembershipSyncer asks the organisations' directories about every user:
// op.Provider.SyncMembership.
type MembershipSyncer interface {
	SyncMembership(ctx context.Context, apply bool) (op.SyncReport, error)
}

// SyncUsers reports (and with apply, offboards) users the directory no longer admits.
func (s *Service) SyncUsers(ctx context.Context, apply bool) (op.SyncReport, error) {
	if s.conf().Membership == nil {
		return op.SyncReport{}, errors.New("admin: no connector to ask about membership")
	}
	return s.conf().Membership.SyncMembership(ctx, apply)
}
