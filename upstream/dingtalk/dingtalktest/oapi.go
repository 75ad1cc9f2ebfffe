package dingtalktest

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// oapi.dingtalk.com answers HTTP 200 whatever happened, with errcode 0 for success
// (doc §1.2). The texts are DingTalk's where the doc records them.
const (
	msgOK              = "ok"
	msgBusy            = "系统繁忙"
	msgNoAccessToken   = "缺少access_token参数"
	msgBadCorpSecret   = "不合法的corpid或corpsecret"
	msgTmpCodeNotFound = "不存在的临时授权码"
	msgUserNotFound    = "找不到该用户"
	msgDeptNotFound    = "部门不存在"
	msgInvalidParam    = "无效的参数"
	msgIPNotAllowed    = "访问ip不在白名单之中"
	// The monthly API quota (dingtalk.com/qidian/help-detail-1061621972.html).
	msgMonthlyQuota = "您的企业本月api调用量已超过限制，调用量：10001次，额度：10000次，请登录开发者后台-资源管理-查看用量明细"
)

// oapiMessages fill in an injected Failure's empty ErrMsg or SubMsg.
var oapiMessages = map[int]string{
	-1:    msgBusy,
	40014: msgInvalidToken,
	40078: msgTmpCodeNotFound,
	40089: msgBadCorpSecret,
	41001: msgNoAccessToken,
	60003: msgDeptNotFound,
	60020: msgIPNotAllowed,
	60121: msgUserNotFound,
	90020: msgMonthlyQuota,
}

// writeOAPI writes an old-style answer (/gettoken, /sns/*): fields at the top level,
// no request_id.
func writeOAPI(w http.ResponseWriter, body map[string]any) {
	writeJSON(w, http.StatusOK, body)
}

func writeOAPIError(w http.ResponseWriter, errcode int, errmsg string) {
	writeOAPI(w, map[string]any{"errcode": errcode, "errmsg": errmsg})
}

// writeTopAPI writes a topapi answer, which always carries a request_id (doc §1.2).
func writeTopAPI(w http.ResponseWriter, status int, body map[string]any) {
	id := newOAPIRequestID()
	body["request_id"] = id
	w.Header().Set("x-acs-request-id", id)
	writeJSON(w, status, body)
}

func writeTopAPIResult(w http.ResponseWriter, result map[string]any) {
	writeTopAPI(w, http.StatusOK, map[string]any{"errcode": 0, "errmsg": msgOK, "result": result})
}

func writeTopAPIError(w http.ResponseWriter, errcode int, errmsg string) {
	writeTopAPI(w, http.StatusOK, map[string]any{"errcode": errcode, "errmsg": errmsg})
}

// writeGatewayError is the TOP gateway's wrapping of an error: errcode 88 and the
// real code as a string sub_code (doc §1.2), as a bad app token gets on topapi.
func writeGatewayError(w http.ResponseWriter, subCode, subMsg string) {
	writeTopAPI(w, http.StatusOK, gatewayBody(88, "", subCode, subMsg))
}

func gatewayBody(errcode int, errmsg, subCode, subMsg string) map[string]any {
	if errmsg == "" {
		errmsg = "ding talk error[subcode=" + subCode + ",submsg=" + subMsg + "]"
	}
	return map[string]any{"errcode": errcode, "errmsg": errmsg, "sub_code": subCode, "sub_msg": subMsg}
}

// writeOAPIFailure writes an injected oapi error.
func writeOAPIFailure(w http.ResponseWriter, status int, failure Failure) {
	if failure.SubCode == "" {
		errmsg := failure.ErrMsg
		if errmsg == "" {
			errmsg = oapiMessages[failure.ErrCode]
		}
		writeTopAPI(w, status, map[string]any{"errcode": failure.ErrCode, "errmsg": errmsg})
		return
	}
	subMsg := failure.SubMsg
	if code, err := strconv.Atoi(failure.SubCode); subMsg == "" && err == nil {
		subMsg = oapiMessages[code]
	}
	writeTopAPI(w, status, gatewayBody(failure.ErrCode, failure.ErrMsg, failure.SubCode, subMsg))
}

// newOAPIRequestID looks like oapi's request ids (e.g. "e8krly4vyiln"), shorter
// than the api host's.
func newOAPIRequestID() string { return strings.ToLower(rand.Text()[:12]) }

// errBadBody is a body that is neither JSON nor a form.
var errBadBody = errors.New("body is neither a JSON object nor a form")

// readParams reads an oapi POST body. DingTalk's own samples post forms and most
// clients JSON; both work (doc §1.2). A JSON number or boolean comes back as its
// text, as the gateway takes "dept_id": 3 and "dept_id": "3" alike. An empty body
// has no parameters.
func readParams(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	params := map[string]string{}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "application/x-www-form-urlencoded" {
		form, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		values, err := url.ParseQuery(string(form))
		if err != nil {
			return nil, errBadBody
		}
		for k, v := range values {
			params[k] = v[0]
		}
		return params, nil
	}
	var body map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	switch err := dec.Decode(&body); {
	case errors.Is(err, io.EOF):
		return params, nil
	case err != nil:
		return nil, errBadBody
	}
	for k, v := range body {
		switch v := v.(type) {
		case string:
			params[k] = v
		case json.Number:
			params[k] = v.String()
		case bool:
			params[k] = strconv.FormatBool(v)
		}
	}
	return params, nil
}

// getToken is GET /gettoken (doc §4.2): an internal app's token for its organisation.
// Within its validity the same token comes back, good for another full lifetime;
// after expiry a new one.
func (f *Fake) getToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	app, known := f.apps[q.Get("appkey")]
	if !known || app.CorpID == "" || subtle.ConstantTimeCompare([]byte(app.ClientSecret), []byte(q.Get("appsecret"))) != 1 {
		writeOAPIError(w, 40089, msgBadCorpSecret)
		return
	}
	now := f.now()
	f.mu.Lock()
	token := ""
	for t, g := range f.appTokens {
		if g.clientID != app.ClientID {
			continue
		}
		if now.Before(g.expires) {
			token = t
		} else {
			delete(f.appTokens, t)
		}
	}
	fresh := token == ""
	if fresh {
		token = newSecret()
	}
	f.appTokens[token] = grant{clientID: app.ClientID, corpID: app.CorpID, expires: now.Add(f.appLifetime)}
	f.mu.Unlock()
	if fresh {
		f.log.Info("fake dingtalk: issued app token", "client_id", app.ClientID, "corp_id", app.CorpID)
	}
	writeOAPI(w, map[string]any{"errcode": 0, "errmsg": msgOK, "access_token": token, "expires_in": int(f.appLifetime.Seconds())})
}

// ExpireAppTokens makes every app token issued so far invalid at once (as if
// DingTalk had expired them early), so the next topapi call answers 88/40014.
func (f *Fake) ExpireAppTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.appTokens)
}

// topapi wraps a topapi method with what all of them share: the app token in the
// query, which decides the organisation whose directory is read, and the body.
func (f *Fake) topapi(method func(w http.ResponseWriter, corpID string, params map[string]string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("access_token")
		if token == "" {
			writeTopAPIError(w, 41001, msgNoAccessToken)
			return
		}
		f.mu.Lock()
		g, ok := f.appTokens[token]
		f.mu.Unlock()
		if !ok || !f.now().Before(g.expires) {
			writeGatewayError(w, "40014", msgInvalidToken)
			return
		}
		params, err := readParams(w, r)
		if err != nil {
			writeTopAPIError(w, 400002, msgInvalidParam)
			return
		}
		method(w, g.corpID, params)
	}
}

// InAppCode stands in for the DingTalk client's JSAPI requestAuthCode: it issues a
// one-time code (5 minutes, single use) for the person with unionID inside corpID,
// to be exchanged by an app of that corp at topapi/v2/user/getuserinfo.
// It returns an error if the person is not a member of corpID.
// Config.CodeLifetime, when set, replaces the 5 minutes.
func (f *Fake) InAppCode(corpID, unionID string) (string, error) {
	u, ok := f.user(unionID)
	if !ok {
		return "", fmt.Errorf("dingtalktest: InAppCode: no user with unionId %q", unionID)
	}
	if !u.member(corpID) {
		return "", fmt.Errorf("dingtalktest: InAppCode: %s (%s) is not a member of organisation %q", u.Nick, unionID, corpID)
	}
	code := newSecret()
	f.mu.Lock()
	f.inAppCodes[code] = grant{unionID: unionID, corpID: corpID, expires: f.now().Add(f.codeLifetime)}
	f.mu.Unlock()
	return code, nil
}

// getUserInfo is topapi/v2/user/getuserinfo (doc §4.4): an in-app code to the person.
// The code is used up by the first attempt, and only the organisation it was issued
// in can exchange it; DingTalk's answer to a foreign code is undocumented, 40078 is
// the one it gives for codes it does not know.
func (f *Fake) getUserInfo(w http.ResponseWriter, corpID string, params map[string]string) {
	g, found := f.take(f.inAppCodes, params["code"])
	if !found || g.corpID != corpID || !f.now().Before(g.expires) {
		writeTopAPIError(w, 40078, msgTmpCodeNotFound)
		return
	}
	u, ok := f.user(g.unionID)
	if !ok || !u.member(corpID) { // the person was a member when the code was issued; cannot happen
		writeTopAPIError(w, 40078, msgTmpCodeNotFound)
		return
	}
	f.log.Info("fake dingtalk: in-app login", "corp_id", corpID, "userid", u.UserID, "nick", u.Nick)
	writeTopAPIResult(w, map[string]any{
		"userid": u.UserID, "unionid": u.UnionID, "name": u.Nick,
		"device_id": strings.ToLower(rand.Text()[:16]), "sys": false, "sys_level": 0,
	})
}

// getByUnionID is topapi/user/getbyunionid (doc §4.6): 60121 is how DingTalk says
// the person is not in the token's organisation.
func (f *Fake) getByUnionID(w http.ResponseWriter, corpID string, params map[string]string) {
	u, ok := f.user(params["unionid"])
	if !ok || !u.member(corpID) {
		writeTopAPIError(w, 60121, msgUserNotFound)
		return
	}
	writeTopAPIResult(w, map[string]any{"contact_type": 0, "userid": u.UserID})
}

// userGet is topapi/v2/user/get (doc §4.7). Unset strings are left out, as DingTalk
// does for an email nobody configured or a default avatar.
func (f *Fake) userGet(w http.ResponseWriter, corpID string, params map[string]string) {
	userID := params["userid"]
	var u User
	var found bool
	for _, candidate := range f.users {
		if candidate = f.current(candidate); candidate.member(corpID) && candidate.UserID == userID {
			u, found = candidate, true
			break
		}
	}
	if !found {
		writeTopAPIError(w, 60121, msgUserNotFound)
		return
	}
	depts := u.DeptIDs
	if depts == nil {
		depts = []int64{} // DingTalk sends a list, never null
	}
	result := map[string]any{
		"userid": u.UserID, "unionid": u.UnionID, "name": u.Nick,
		"dept_id_list": depts, "active": !u.Inactive,
		"admin": false, "boss": false, "senior": false, "hide_mobile": false,
	}
	for key, value := range map[string]string{"avatar": u.AvatarURL, "mobile": u.Mobile, "state_code": u.StateCode,
		"email": u.Email, "org_email": u.OrgEmail, "title": u.Title, "job_number": u.JobNumber} {
		if value != "" {
			result[key] = value
		}
	}
	writeTopAPIResult(w, result)
}

// corp is an organisation's directory as the fake keeps it; f.mu guards it, since
// RenameDepartment changes it while requests read it.
type corp struct {
	depts []Department // the root (1) first; ParentID 0 only for the root
}

// newCorp copies c, making the root explicit and every other parent too.
func newCorp(c Corp) *corp {
	cc := &corp{}
	root := Department{ID: 1, Name: c.Name}
	for _, d := range c.Departments {
		if d.ID == 1 {
			root.Name = cmp.Or(d.Name, c.Name)
		}
	}
	cc.depts = append(cc.depts, root)
	for _, d := range c.Departments {
		if d.ID == 1 {
			continue
		}
		if d.ParentID == 0 {
			d.ParentID = 1
		}
		cc.depts = append(cc.depts, d)
	}
	return cc
}

// RenameDepartment changes a department's name, as an admin would in DingTalk.
// The next topapi/v2/department/get shows the new name. It panics if corpID has no
// such department: a test asking for one has a bug.
func (f *Fake) RenameDepartment(corpID string, id int64, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.corps[corpID]; ok {
		for i := range c.depts {
			if c.depts[i].ID == id {
				c.depts[i].Name = name
				return
			}
		}
	}
	panic(fmt.Sprintf("dingtalktest: RenameDepartment: organisation %q has no department %d", corpID, id))
}

// departmentGet is topapi/v2/department/get (doc §4.8), in the token's organisation.
// The root department has no parent_id.
func (f *Fake) departmentGet(w http.ResponseWriter, corpID string, params map[string]string) {
	raw, ok := params["dept_id"]
	id, err := strconv.ParseInt(raw, 10, 64)
	if !ok || err != nil {
		writeTopAPIError(w, 400002, msgInvalidParam)
		return
	}
	var dept Department
	var order int
	found := false
	f.mu.Lock()
	if c, ok := f.corps[corpID]; ok {
		for i, d := range c.depts {
			if d.ID == id {
				dept, order, found = d, i, true
				break
			}
		}
	}
	f.mu.Unlock()
	if !found {
		writeTopAPIError(w, 60003, msgDeptNotFound)
		return
	}
	result := map[string]any{"dept_id": dept.ID, "name": dept.Name, "order": order,
		"create_dept_group": false, "auto_add_user": false}
	if dept.ParentID != 0 {
		result["parent_id"] = dept.ParentID
	}
	writeTopAPIResult(w, result)
}
