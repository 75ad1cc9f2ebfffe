package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dingbridge/dingbridge/upstream"
)

// The in-app login (免登, flow C, shared/dingtalk-api.md §4): a page opened inside the
// DingTalk client asks the client's JSAPI (requestAuthCode, with CorpID and the corp
// app's key) for a one-time code and posts it back; the corp app's token turns it
// into the person (topapi/v2/user/getuserinfo), the directory into the rest
// (topapi/v2/user/get, departments). The flow gives no openid.

// InAppLogin reports whether r comes from inside the DingTalk client (its
// User-Agent says "DingTalk") and the connector has an organisation's internal app
// to log people in there; if so, what the page needs.
func (c *Connector) InAppLogin(r *http.Request) (upstream.InAppLogin, bool) {
	if c.corp == nil || !strings.Contains(strings.ToLower(r.UserAgent()), "dingtalk") {
		return upstream.InAppLogin{}, false
	}
	return upstream.InAppLogin{CorpID: c.corpID, ClientID: c.corp.clientID, ScriptURL: c.jsapi}, true
}

// HandleInAppCode turns the code from the page's requestAuthCode into an Identity.
// A used or expired code gives an error matching upstream.ErrLoginExpired.
func (c *Connector) HandleInAppCode(ctx context.Context, code string) (upstream.Identity, error) {
	id, err := c.inAppIdentity(ctx, code)
	if err != nil {
		return upstream.Identity{}, err
	}
	return untrustedIdentity(id)
}

func (c *Connector) inAppIdentity(ctx context.Context, code string) (upstream.Identity, error) {
	if c.corp == nil {
		return upstream.Identity{}, errors.New("dingtalk in-app login: the connector has no CorpID")
	}
	if code == "" {
		return upstream.Identity{}, errors.New("dingtalk in-app login: empty code")
	}
	if err := c.checkOrganisation(c.corpID); err != nil {
		return upstream.Identity{}, err // New refuses this configuration; kept as a guard
	}
	who, err := c.corp.InAppUser(ctx, code)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("exchange dingtalk in-app code: %w", err)
	}
	id := upstream.Identity{
		UnionID: who.UnionID,
		UserID:  who.UserID,
		CorpID:  c.corpID,
		Nick:    who.Name,
		Method:  upstream.MethodInApp,
	}
	user, err := c.corp.DirectoryUser(ctx, who.UserID)
	if errors.Is(err, ErrNotInDirectory) {
		return c.notMember(id)
	}
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("read dingtalk directory: %w", err)
	}
	return c.member(ctx, id, user)
}
