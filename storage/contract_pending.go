package storage

// Temporary: the contract's new names until the storage contract lands on main.

import (
	"errors"
)

var (
	ErrRevoked  = errors.New("storage: grant revoked")
	ErrCapacity = errors.New("storage: at capacity")
)

type Login struct {
	Subject          string
	Update           func(u User, found bool) (User, error)
	Session          Session
	ReplaceSessionID string
}

type RecordCounts struct {
	AuthRequests, AuthCodes, AccessTokens, RefreshTokens, Sessions, Users, Clients, UpstreamStates, Devices, Consents int
}
