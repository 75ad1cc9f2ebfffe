package admin

import (
	"errors"
	"fmt"
)

// The kinds of refusal an operator can act on. Test with errors.Is; the CLI maps
// them to exit codes. Anything else is an operational failure (storage, socket).
var (
	// ErrNotFound: no client, user or key with that ID.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request can never succeed as given (a redirect URI rule, a
	// lifetime out of range, nothing to change).
	ErrInvalid = errors.New("invalid")
	// ErrStaticClient: the client is defined in the configuration file, so the
	// CLI may not change it.
	ErrStaticClient = errors.New("static client")
	// ErrConflict: the ID is taken.
	ErrConflict = errors.New("conflict")
)

// Error is a refusal of one Kind (one of the Err* values above) with a message for
// a person. Its Message never holds a secret.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap lets errors.Is(err, ErrNotFound) and friends see the kind.
func (e *Error) Unwrap() error { return e.Kind }

func refuse(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// kindNames name the kinds on the wire between Dial and Handler.
var kindNames = map[error]string{
	ErrNotFound:     "not_found",
	ErrInvalid:      "invalid",
	ErrStaticClient: "static_client",
	ErrConflict:     "conflict",
}

func kindName(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if name, ok := kindNames[e.Kind]; ok {
			return name
		}
	}
	return "internal"
}

func kindByName(name string) error {
	for kind, n := range kindNames {
		if n == name {
			return kind
		}
	}
	return nil
}
