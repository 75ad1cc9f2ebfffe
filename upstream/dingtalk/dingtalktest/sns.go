package dingtalktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// snsAuthorize is oapi's /connect/qrconnect (the QR page) and
// /connect/oauth2/sns_authorize (the account page, and the DingTalk client's): the
// same person-picking page as /oauth2/auth, redirecting with the code as code (doc §3.1, §3.2).
func (f *Fake) snsAuthorize(w http.ResponseWriter, r *http.Request) {
	if tmp := r.URL.Query().Get("loginTmpCode"); tmp != "" {
		f.snsAuthorizeTmpCode(w, r, tmp)
		return
	}
	f.login(w, r, f.checkSNSRequest)
}

// snsAuthorizeTmpCode is sns_authorize with the loginTmpCode the legacy frame
// posted: no page, the login happened in the frame; redirect with the code.
func (f *Fake) snsAuthorizeTmpCode(w http.ResponseWriter, r *http.Request, tmp string) {
	req, problems := f.checkSNSRequest(r.URL.Path, r.URL.Query())
	if len(problems) > 0 {
		f.showProblems(w, problems)
		return
	}
	g, found := f.take(f.loginTmpCodes, tmp)
	if !found || g.clientID != req.app.ClientID || !f.now().Before(g.expires) {
		f.showProblems(w, []problem{{"loginTmpCode 无效或已使用", "loginTmpCode is unknown, used or expired"}})
		return
	}
	f.approve(w, r, req, g.unionID)
}

func (f *Fake) checkSNSRequest(path string, params url.Values) (authRequest, []problem) {
	req := authRequest{
		redirectURI: params.Get("redirect_uri"),
		state:       params.Get("state"),
		scope:       params.Get("scope"),
		params:      params,
		sns:         true,
		path:        path,
	}
	var problems []problem
	req.app, problems = f.checkAppAndRedirect("appid", params)
	// Inside the DingTalk client sns_authorize is called with snsapi_auth (doc §3.1).
	scopes := []string{"snsapi_login"}
	if path == "/connect/oauth2/sns_authorize" {
		scopes = append(scopes, "snsapi_auth")
	}
	if !slices.Contains(scopes, req.scope) {
		problems = append(problems, problem{"scope 必须是 " + quote(scopes[0]) + "（收到 " + quote(req.scope) + "）",
			"scope must be snsapi_login, got " + quote(req.scope)})
	}
	return req, problems
}

// sns/getuserinfo_bycode refuses a request's signature with these (doc §3.4). DingTalk
// documents the codes, not its texts; these say what each code means.
const (
	msgBadTimestamp = "timestamp参数格式不正确，应为当前时间的毫秒数"
	msgClockSkew    = "timestamp与服务器时间相差超过1分钟"
	msgBadAccessKey = "accessKey不是已存在的appId"
	msgBadSignature = "签名不匹配"
)

// snsMaxSkew is how far the timestamp may be from DingTalk's clock.
const snsMaxSkew = time.Minute

// snsUserInfo is POST /sns/getuserinfo_bycode (doc §3.4): the app proves itself with
// an HMAC-SHA256 of the timestamp under its secret instead of a token, then trades
// the SNS login's code for the person. The code stays unused if the signature fails.
func (f *Fake) snsUserInfo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query() // decodes the signature's %2B, %2F, %3D
	app, known := f.apps[q.Get("accessKey")]
	if !known {
		writeOAPIError(w, 853003, msgBadAccessKey)
		return
	}
	timestamp := q.Get("timestamp")
	ms, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || !allDigits(timestamp) {
		writeOAPIError(w, 853001, msgBadTimestamp)
		return
	}
	if skew := f.now().Sub(time.UnixMilli(ms)); skew > snsMaxSkew || skew < -snsMaxSkew {
		writeOAPIError(w, 853002, msgClockSkew)
		return
	}
	mac := hmac.New(sha256.New, []byte(app.ClientSecret))
	mac.Write([]byte(timestamp))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(q.Get("signature"))) {
		writeOAPIError(w, 853004, msgBadSignature)
		return
	}

	params, err := readParams(w, r)
	if err != nil {
		writeOAPIError(w, 400002, msgInvalidParam)
		return
	}
	// Used up by the first attempt, like every code here; another app's code fails.
	g, found := f.take(f.snsCodes, params["tmp_auth_code"])
	if !found || g.clientID != app.ClientID || !f.now().Before(g.expires) {
		writeOAPIError(w, 40078, msgTmpCodeNotFound)
		return
	}
	u, ok := f.user(g.unionID)
	if !ok { // the user was in Config when the code was issued; cannot happen
		writeOAPIError(w, 40078, msgTmpCodeNotFound)
		return
	}
	f.log.Info("fake dingtalk: SNS code exchanged", "client_id", app.ClientID, "union_id", u.UnionID)
	writeOAPI(w, map[string]any{"errcode": 0, "errmsg": msgOK, "user_info": map[string]any{
		"nick": u.Nick, "unionid": u.UnionID, "openid": u.OpenID,
		"main_org_auth_high_level": false, "dingId": dingID(u.UnionID),
	}})
}

// dingID is the undocumented dingId of live answers: stable per person.
func dingID(unionID string) string {
	sum := sha256.Sum256([]byte(unionID))
	return "$:LWCP_v1:$" + base64.StdEncoding.EncodeToString(sum[:18])
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
