package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/op"
)

// Remote is the API of a running dingbridge, reached through its admin socket.
type Remote struct {
	path string
	http *http.Client
}

var _ API = (*Remote)(nil)

// Dial returns the API served on the admin socket at path. It connects per call;
// Ping says whether anyone answers.
func Dial(path string) *Remote {
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		// One CLI command makes one or two calls; nothing to keep alive for.
		DisableKeepAlives: true,
	}
	return &Remote{path: path, http: &http.Client{Transport: transport}}
}

// Ping checks that a dingbridge answers on the socket.
func (c *Remote) Ping(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/v1/ping", nil, nil)
}

func (c *Remote) AddClient(ctx context.Context, spec ClientSpec) (ClientWithSecret, error) {
	var out ClientWithSecret
	err := c.call(ctx, http.MethodPost, "/v1/clients", spec, &out)
	return out, err
}

func (c *Remote) ListClients(ctx context.Context) ([]Client, error) {
	var out []Client
	err := c.call(ctx, http.MethodGet, "/v1/clients", nil, &out)
	return out, err
}

func (c *Remote) GetClient(ctx context.Context, id string) (Client, error) {
	var out Client
	err := c.call(ctx, http.MethodGet, "/v1/clients/"+url.PathEscape(id), nil, &out)
	return out, err
}

func (c *Remote) UpdateClient(ctx context.Context, id string, u ClientUpdate) (Client, error) {
	var out Client
	err := c.call(ctx, http.MethodPatch, "/v1/clients/"+url.PathEscape(id), u, &out)
	return out, err
}

func (c *Remote) DeleteClient(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/clients/"+url.PathEscape(id), nil, nil)
}

func (c *Remote) RotateClientSecret(ctx context.Context, id string) (ClientWithSecret, error) {
	var out ClientWithSecret
	err := c.call(ctx, http.MethodPost, "/v1/clients/"+url.PathEscape(id)+"/secret", nil, &out)
	return out, err
}

func (c *Remote) ListKeys(ctx context.Context) ([]keys.SigningKeyInfo, error) {
	var out []keys.SigningKeyInfo
	err := c.call(ctx, http.MethodGet, "/v1/keys", nil, &out)
	return out, err
}

func (c *Remote) RotateKeys(ctx context.Context) (keys.SigningKeyInfo, error) {
	var out keys.SigningKeyInfo
	err := c.call(ctx, http.MethodPost, "/v1/keys/rotate", nil, &out)
	return out, err
}

func (c *Remote) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	err := c.call(ctx, http.MethodGet, "/v1/users", nil, &out)
	return out, err
}

func (c *Remote) GetUser(ctx context.Context, subject string) (User, error) {
	var out User
	err := c.call(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(subject), nil, &out)
	return out, err
}

func (c *Remote) DisableUser(ctx context.Context, subject string) (User, error) {
	var out User
	err := c.call(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(subject)+"/disable", nil, &out)
	return out, err
}

func (c *Remote) EnableUser(ctx context.Context, subject string) (User, error) {
	var out User
	err := c.call(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(subject)+"/enable", nil, &out)
	return out, err
}

func (c *Remote) AddUser(ctx context.Context, spec UserSpec) (User, error) {
	var out User
	err := c.call(ctx, http.MethodPost, "/v1/users", spec, &out)
	return out, err
}

func (c *Remote) ImportUsers(ctx context.Context, specs []UserSpec) (ImportReport, error) {
	var out ImportReport
	err := c.call(ctx, http.MethodPost, "/v1/users/import", specs, &out)
	return out, err
}

func (c *Remote) LinkUser(ctx context.Context, subject, unionID string) (User, error) {
	var out User
	err := c.call(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(subject)+"/link", linkQuery{UnionID: unionID}, &out)
	return out, err
}

func (c *Remote) UnlinkUser(ctx context.Context, subject string) (User, error) {
	var out User
	err := c.call(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(subject)+"/unlink", nil, &out)
	return out, err
}

func (c *Remote) SyncUsers(ctx context.Context, apply bool) (op.SyncReport, error) {
	var out op.SyncReport
	err := c.call(ctx, http.MethodPost, "/v1/users/sync", syncQuery{Apply: apply}, &out)
	return out, err
}

func (c *Remote) Claims(ctx context.Context, clientID, subject string, scopes []string) (ClaimsPreview, error) {
	var out ClaimsPreview
	err := c.call(ctx, http.MethodPost, "/v1/claims", claimsQuery{ClientID: clientID, Subject: subject, Scopes: scopes}, &out)
	return out, err
}

// call sends in (if not nil) as JSON and decodes the answer into out (if not
// nil). A refusal comes back as the *Error the server's API returned.
func (c *Remote) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin socket: encode request: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.refusal(resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return c.fail("read answer", err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin socket %s: decode answer: %w", c.path, err)
	}
	return nil
}

// callTimeout bounds an ordinary call; a backup streams for as long as it takes.
const callTimeout = time.Minute

// send makes one request; the caller closes the answer's body.
func (c *Remote) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	// The host is never resolved: DialContext always connects to the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://dingbridge-admin"+path, body)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.fail("", err)
	}
	return resp, nil
}

// fail wraps a transport error; "Post http://dingbridge-admin/…" means nothing
// to an operator, so the URL is dropped.
func (c *Remote) fail(what string, err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	if what != "" {
		return fmt.Errorf("admin socket %s: %s: %w", c.path, what, err)
	}
	return fmt.Errorf("admin socket %s: %w", c.path, err)
}

// refusal rebuilds the error of a non-200 answer.
func (c *Remote) refusal(resp *http.Response) error {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return c.fail("read answer", err)
	}
	var we wireError
	if json.Unmarshal(raw, &we) != nil || we.Error.Message == "" {
		return fmt.Errorf("admin socket %s: HTTP %d: %.200s", c.path, resp.StatusCode, raw)
	}
	if kind := kindByName(we.Error.Kind); kind != nil {
		return &Error{Kind: kind, Message: we.Error.Message}
	}
	return fmt.Errorf("dingbridge server: %s", we.Error.Message)
}
