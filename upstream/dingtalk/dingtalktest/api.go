package dingtalktest

import (
	"crypto/subtle"
	"encoding/json"
	"mime"
	"net/http"
	"time"
)

// writeAPIError writes api.dingtalk.com's error shape: {"code","message","requestid"}
// (note the lower-case requestid) and the same id in x-acs-request-id.
func writeAPIError(w http.ResponseWriter, status int, code, message string, extra map[string]any) {
	body := map[string]any{"code": code, "message": message}
	for k, v := range extra {
		body[k] = v
	}
	requestID := newRequestID()
	body["requestid"] = requestID
	w.Header().Set("x-acs-request-id", requestID)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("Server", "DingTalk/1.0.0")
	if w.Header().Get("x-acs-request-id") == "" {
		w.Header().Set("x-acs-request-id", newRequestID())
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body) // the client may be gone; nothing to do then
}

const (
	msgAuthCodeNotFound = "不合法的临时授权码"
	msgInvalidToken     = "不合法的access_token"
)

// userAccessToken is POST /v1.0/oauth2/userAccessToken (doc §2.4, §2.6).
func (f *Fake) userAccessToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
		Code         string `json:"code"`
		RefreshToken string `json:"refreshToken"`
		GrantType    string `json:"grantType"`
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if mediaType != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil {
		writeAPIError(w, http.StatusBadRequest, "Missingbody", "body is mandatory for this action", nil)
		return
	}
	// camelCase only: a snake_case body (client_id, …) arrives as a missing clientId.
	if req.ClientID == "" {
		writeAPIError(w, http.StatusBadRequest, "MissingclientId", "clientId is mandatory for this action", nil)
		return
	}

	// A code or refresh token is used up by the first attempt, even one that fails
	// below (doc §6.2), so replays always fail.
	var g grant
	var found bool
	switch req.GrantType {
	case "authorization_code":
		g, found = f.take(f.codes, req.Code)
	case "refresh_token":
		g, found = f.take(f.refresh, req.RefreshToken)
	default:
		writeAPIError(w, http.StatusBadRequest, "unsupported.grant.type", "grantType must be authorization_code or refresh_token", nil)
		return
	}

	app, known := f.apps[req.ClientID]
	if !known || subtle.ConstantTimeCompare([]byte(app.ClientSecret), []byte(req.ClientSecret)) != 1 {
		// DingTalk's real code for this is undocumented (doc §8); this one is distinct.
		writeAPIError(w, http.StatusUnauthorized, "invalidClientIdOrSecret", "无效的clientId或clientSecret", nil)
		return
	}
	if !found || g.clientID != req.ClientID || !f.now().Before(g.expires) {
		writeAPIError(w, http.StatusBadRequest, "invalidParameter.authCode.notFound", msgAuthCodeNotFound, nil)
		return
	}

	access, refresh := newSecret(), newSecret()
	f.mu.Lock()
	f.tokens[access] = grant{clientID: g.clientID, unionID: g.unionID, corpID: g.corpID, expires: f.now().Add(accessTokenLifetime)}
	f.refresh[refresh] = grant{clientID: g.clientID, unionID: g.unionID, corpID: g.corpID, expires: f.now().Add(30 * 24 * time.Hour)}
	f.mu.Unlock()
	f.log.Info("fake dingtalk: issued user token", "client_id", g.clientID, "union_id", g.unionID, "grant_type", req.GrantType)

	answer := map[string]any{"accessToken": access, "refreshToken": refresh, "expireIn": int(accessTokenLifetime.Seconds())}
	if g.corpID != "" {
		answer["corpId"] = g.corpID
	}
	writeJSON(w, http.StatusOK, answer)
}

// take removes key from m and returns what it stood for.
func (f *Fake) take(m map[string]grant, key string) (grant, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := m[key]
	delete(m, key)
	return g, ok
}

// usersMe is GET /v1.0/contact/users/me (doc §2.5).
func (f *Fake) usersMe(w http.ResponseWriter, r *http.Request) {
	token := r.Header.Get("x-acs-dingtalk-access-token")
	f.mu.Lock()
	g, ok := f.tokens[token]
	f.mu.Unlock()
	if token == "" || !ok || !f.now().Before(g.expires) {
		writeAPIError(w, http.StatusBadRequest, "InvalidAuthentication", msgInvalidToken, nil)
		return
	}
	if f.apps[g.clientID].NoContactUserRead {
		writeAPIError(w, http.StatusForbidden, "Forbidden.AccessDenied.AccessTokenPermissionDenied",
			"没有调用该接口的权限，接口权限申请参考：https://open.dingtalk.com/document/orgapp/add-api-permission",
			map[string]any{"accessdenieddetail": map[string]any{"requiredScopes": []string{"Contact.User.Read"}}})
		return
	}
	u, ok := f.user(g.unionID)
	if !ok { // the user was in Config when the token was issued; cannot happen
		writeAPIError(w, http.StatusBadRequest, "InvalidAuthentication", msgInvalidToken, nil)
		return
	}
	answer := map[string]any{"nick": u.Nick, "unionId": u.UnionID, "openId": u.OpenID, "visitor": false}
	for key, value := range map[string]string{"avatarUrl": u.AvatarURL, "email": u.Email, "mobile": u.Mobile, "stateCode": u.StateCode} {
		if value != "" {
			answer[key] = value
		}
	}
	writeJSON(w, http.StatusOK, answer)
}
