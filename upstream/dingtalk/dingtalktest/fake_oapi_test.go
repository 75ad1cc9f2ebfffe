package dingtalktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The oapi side of the fake: the legacy SNS login, the in-app flow's app token and
// the organisation's directory.

const (
	corpAppID          = "dingcorpinternalapp" // an internal app of DemoCorp
	corpAppSecret      = "corp-app-secret"
	otherCorpID        = "ding0other0corp0001"
	otherCorpAppID     = "dingothercorpapp" // an internal app of otherCorpID
	otherCorpAppSecret = "other-corp-secret"
	snsAppID           = "dingoalegacysnsapp" // a legacy SNS login app: no organisation
	snsAppSecret       = "sns-app-secret"
	snsRedirect        = "https://sso.example.com/callback/sns"
)

// zhaoliu is a member of the other organisation, not of DemoCorp, who has not
// activated DingTalk.
var zhaoliu = User{UnionID: "Zl6pQr2Ts8VwX1yZaiEiE", OpenID: "Op6zLk2Jh8GfD1sAqiEiE", Nick: "赵六",
	CorpID: otherCorpID, UserID: "zhaoliu", DeptIDs: []int64{1}, Inactive: true}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func (c *clock) set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

func newOAPIServer(t *testing.T, adjust ...func(*Config)) (*Server, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	srv := newTestServer(t, append([]func(*Config){func(c *Config) {
		c.Apps = append(c.Apps,
			App{ClientID: corpAppID, ClientSecret: corpAppSecret, CorpID: DemoCorpID, RedirectURIs: []string{snsRedirect}},
			App{ClientID: otherCorpAppID, ClientSecret: otherCorpAppSecret, CorpID: otherCorpID},
			App{ClientID: snsAppID, ClientSecret: snsAppSecret, RedirectURIs: []string{snsRedirect}},
		)
		c.Users = append(DemoUsers(), zhaoliu)
		c.Corps = []Corp{DemoCorp(), {CorpID: otherCorpID, Name: "另一家公司"}}
		c.Now = clk.Now
	}}, adjust...)...)
	return srv, clk
}

func getToken(t *testing.T, srv *Server, key, secret string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/gettoken?"+url.Values{"appkey": {key}, "appsecret": {secret}}.Encode(), nil)
	return do(t, req)
}

// appToken fetches the app's token at /gettoken.
func appToken(t *testing.T, srv *Server, key, secret string) string {
	t.Helper()
	body := oapiErrcode(t, getToken(t, srv, key, secret), 0)
	token, _ := body["access_token"].(string)
	if token == "" || body["expires_in"] != 7200.0 || body["errmsg"] != "ok" {
		t.Fatalf("gettoken: %v", body)
	}
	return token
}

// callTopAPI posts body as JSON to a topapi method with the app token.
func callTopAPI(t *testing.T, srv *Server, api, token string, body map[string]any) answer {
	t.Helper()
	b, _ := json.Marshal(body)
	return postOAPI(t, srv, api, url.Values{"access_token": {token}}, "application/json", string(b))
}

func postOAPI(t *testing.T, srv *Server, api string, query url.Values, contentType, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/"+api+"?"+query.Encode(), strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	return do(t, req)
}

// oapiErrcode checks oapi's convention, HTTP 200 and the outcome in errcode, and
// returns the body.
func oapiErrcode(t *testing.T, a answer, errcode int) map[string]any {
	t.Helper()
	body := a.json(t)
	if a.status != http.StatusOK || body["errcode"] != float64(errcode) {
		t.Errorf("answer %d %s, want HTTP 200 with errcode %d", a.status, a.body, errcode)
	}
	return body
}

// topapiErrcode also checks the request_id every topapi answer has.
func topapiErrcode(t *testing.T, a answer, errcode int, errmsg string) map[string]any {
	t.Helper()
	body := oapiErrcode(t, a, errcode)
	if id, _ := body["request_id"].(string); id == "" {
		t.Errorf("answer %s has no request_id", a.body)
	}
	if body["errmsg"] != errmsg {
		t.Errorf("errmsg %q, want %q", body["errmsg"], errmsg)
	}
	return body
}

// topapiResult checks a successful topapi answer and returns its result.
func topapiResult(t *testing.T, a answer) map[string]any {
	t.Helper()
	result, _ := topapiErrcode(t, a, 0, "ok")["result"].(map[string]any)
	if result == nil {
		t.Fatalf("answer %s has no result", a.body)
	}
	return result
}

// assertBadToken checks the gateway-wrapped answer to a bad app token, exactly.
func assertBadToken(t *testing.T, a answer) {
	t.Helper()
	body := topapiErrcode(t, a, 88, "ding talk error[subcode=40014,submsg=不合法的access_token]")
	if body["sub_code"] != "40014" || body["sub_msg"] != "不合法的access_token" {
		t.Errorf("sub_code %#v, sub_msg %#v; want the string 40014 and 不合法的access_token", body["sub_code"], body["sub_msg"])
	}
}

func TestGetTokenSameTokenUntilExpiry(t *testing.T) {
	srv, clk := newOAPIServer(t)
	first := appToken(t, srv, corpAppID, corpAppSecret)
	clk.advance(time.Hour)
	if again := appToken(t, srv, corpAppID, corpAppSecret); again != first {
		t.Errorf("within validity: token %q, want the same %q", again, first)
	}
	if other := appToken(t, srv, otherCorpAppID, otherCorpAppSecret); other == first {
		t.Error("another app got the same token")
	}

	// The second fetch extended the token: it outlives its first 7200 s.
	clk.advance(7200*time.Second - time.Hour + time.Minute)
	topapiResult(t, callTopAPI(t, srv, APIGetByUnionID, first, map[string]any{"unionid": DemoUsers()[0].UnionID}))

	clk.advance(time.Hour)
	assertBadToken(t, callTopAPI(t, srv, APIGetByUnionID, first, map[string]any{"unionid": DemoUsers()[0].UnionID}))
	renewed := appToken(t, srv, corpAppID, corpAppSecret)
	if renewed == first {
		t.Error("after expiry: the old token came back")
	}
	topapiResult(t, callTopAPI(t, srv, APIGetByUnionID, renewed, map[string]any{"unionid": DemoUsers()[0].UnionID}))
}

func TestAppTokenLifetime(t *testing.T) {
	srv, clk := newOAPIServer(t, func(c *Config) { c.AppTokenLifetime = 10 * time.Minute })
	a := getToken(t, srv, corpAppID, corpAppSecret)
	body := oapiErrcode(t, a, 0)
	if body["expires_in"] != 600.0 {
		t.Errorf("expires_in %v, want 600", body["expires_in"])
	}
	clk.advance(10 * time.Minute)
	assertBadToken(t, callTopAPI(t, srv, APIDepartmentGet, body["access_token"].(string), map[string]any{"dept_id": 1}))
}

func TestGetTokenBadCredentials(t *testing.T) {
	srv, _ := newOAPIServer(t)
	for _, tt := range []struct{ name, key, secret string }{
		{"wrong secret", corpAppID, "wrong"},
		{"no secret", corpAppID, ""},
		{"unknown app", "dingnosuchapp", corpAppSecret},
		{"no key", "", ""},
		{"an app without an organisation", snsAppID, snsAppSecret},
		{"the login app of the tests above", appID, appSecret},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := oapiErrcode(t, getToken(t, srv, tt.key, tt.secret), 40089)
			if body["errmsg"] != "不合法的corpid或corpsecret" {
				t.Errorf("errmsg %q", body["errmsg"])
			}
			if _, ok := body["access_token"]; ok {
				t.Errorf("refused, yet a token: %v", body)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/gettoken?appkey="+corpAppID+"&appsecret="+corpAppSecret, nil)
	if a := do(t, req); a.status != http.StatusNotFound {
		t.Errorf("POST /gettoken: %d, want 404", a.status)
	}
}

func TestTopAPIRefusesBadTokens(t *testing.T) {
	srv, clk := newOAPIServer(t)
	bodies := map[string]map[string]any{
		APIGetUserInfo:   {"code": "whatever"},
		APIGetByUnionID:  {"unionid": DemoUsers()[0].UnionID},
		APIUserGet:       {"userid": "zhangsan"},
		APIDepartmentGet: {"dept_id": 1},
	}
	userToken := exchangeCode(t, srv, appID, appSecret, approve(t, srv, authParams(), DemoUsers()[0].UnionID)).json(t)["accessToken"].(string)
	for api, body := range bodies {
		t.Run(api, func(t *testing.T) {
			topapiErrcode(t, callTopAPI(t, srv, api, "", body), 41001, "缺少access_token参数")
			assertBadToken(t, callTopAPI(t, srv, api, "not-a-token", body))
			assertBadToken(t, callTopAPI(t, srv, api, userToken, body)) // a person's token is no app token
		})
	}

	token := appToken(t, srv, corpAppID, corpAppSecret)
	topapiResult(t, callTopAPI(t, srv, APIDepartmentGet, token, bodies[APIDepartmentGet]))
	srv.ExpireAppTokens()
	for api, body := range bodies {
		assertBadToken(t, callTopAPI(t, srv, api, token, body))
	}
	renewed := appToken(t, srv, corpAppID, corpAppSecret)
	if renewed == token {
		t.Error("after ExpireAppTokens /gettoken gave the expired token again")
	}
	topapiResult(t, callTopAPI(t, srv, APIDepartmentGet, renewed, bodies[APIDepartmentGet]))

	clk.advance(7200 * time.Second)
	assertBadToken(t, callTopAPI(t, srv, APIDepartmentGet, renewed, bodies[APIDepartmentGet]))
}

func TestUnknownTopAPIMethod(t *testing.T) {
	srv, _ := newOAPIServer(t)
	token := appToken(t, srv, corpAppID, corpAppSecret)
	topapiErrcode(t, callTopAPI(t, srv, "topapi/app/remove_auth", token, nil), 22, "Invalid method[submsg=不合法ApiName]")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/"+APIUserGet+"?access_token="+token, nil)
	topapiErrcode(t, do(t, req), 22, "Invalid method[submsg=不合法ApiName]")
}

func TestInAppLogin(t *testing.T) {
	srv, _ := newOAPIServer(t)
	zhangsan := DemoUsers()[0]
	token := appToken(t, srv, corpAppID, corpAppSecret)
	code, err := srv.InAppCode(DemoCorpID, zhangsan.UnionID)
	if err != nil || code == "" {
		t.Fatalf("InAppCode: %q, %v", code, err)
	}
	result := topapiResult(t, callTopAPI(t, srv, APIGetUserInfo, token, map[string]any{"code": code}))
	want := map[string]any{"userid": "zhangsan", "unionid": zhangsan.UnionID, "name": "张三", "sys": false, "sys_level": 0.0}
	for k, v := range want {
		if result[k] != v {
			t.Errorf("getuserinfo %s = %v, want %v", k, result[k], v)
		}
	}
	if id, _ := result["device_id"].(string); id == "" {
		t.Errorf("getuserinfo has no device_id: %v", result)
	}

	// Single use.
	topapiErrcode(t, callTopAPI(t, srv, APIGetUserInfo, token, map[string]any{"code": code}), 40078, "不存在的临时授权码")
	topapiErrcode(t, callTopAPI(t, srv, APIGetUserInfo, token, map[string]any{"code": "never-issued"}), 40078, "不存在的临时授权码")
	topapiErrcode(t, callTopAPI(t, srv, APIGetUserInfo, token, map[string]any{}), 40078, "不存在的临时授权码")
}

func TestInAppCodeIsBoundToItsOrganisation(t *testing.T) {
	srv, _ := newOAPIServer(t)
	lisi := DemoUsers()[1]
	code, _ := srv.InAppCode(DemoCorpID, lisi.UnionID)
	foreign := appToken(t, srv, otherCorpAppID, otherCorpAppSecret)
	topapiErrcode(t, callTopAPI(t, srv, APIGetUserInfo, foreign, map[string]any{"code": code}), 40078, "不存在的临时授权码")
	// The failed attempt used the code up, as every code of the fake.
	token := appToken(t, srv, corpAppID, corpAppSecret)
	topapiErrcode(t, callTopAPI(t, srv, APIGetUserInfo, token, map[string]any{"code": code}), 40078, "不存在的临时授权码")

	code, _ = srv.InAppCode(otherCorpID, zhaoliu.UnionID)
	if got := topapiResult(t, callTopAPI(t, srv, APIGetUserInfo, foreign, map[string]any{"code": code}))["userid"]; got != "zhaoliu" {
		t.Errorf("other organisation's own code: userid %v", got)
	}

	for _, tt := range []struct{ corpID, unionID string }{
		{DemoCorpID, DemoUsers()[2].UnionID}, // 王五: in no organisation
		{otherCorpID, lisi.UnionID},          // 李四: in DemoCorp only
		{DemoCorpID, zhaoliu.UnionID},
		{DemoCorpID, "nobody"},
		{"", DemoUsers()[2].UnionID},
	} {
		if code, err := srv.InAppCode(tt.corpID, tt.unionID); err == nil || code != "" {
			t.Errorf("InAppCode(%q, %q) = %q, %v; want an error", tt.corpID, tt.unionID, code, err)
		}
	}
}

func TestInAppCodeExpires(t *testing.T) {
	srv, clk := newOAPIServer(t)
	token := appToken(t, srv, corpAppID, corpAppSecret)
	code, _ := srv.InAppCode(DemoCorpID, DemoUsers()[0].UnionID)
	clk.advance(5*time.Minute - time.Second)
	topapiResult(t, callTopAPI(t, srv, APIGetUserInfo, token, map[string]any{"code": code}))
	code, _ = srv.InAppCode(DemoCorpID, DemoUsers()[0].UnionID)
	clk.advance(5 * time.Minute)
	topapiErrcode(t, callTopAPI(t, srv, APIGetUserInfo, token, map[string]any{"code": code}), 40078, "不存在的临时授权码")
}

func TestGetByUnionID(t *testing.T) {
	srv, _ := newOAPIServer(t)
	token := appToken(t, srv, corpAppID, corpAppSecret)
	result := topapiResult(t, callTopAPI(t, srv, APIGetByUnionID, token, map[string]any{"unionid": DemoUsers()[1].UnionID}))
	if result["userid"] != "lisi" || result["contact_type"] != 0.0 {
		t.Errorf("getbyunionid for 李四: %v, want userid lisi, contact_type 0", result)
	}
	for _, outsider := range []string{DemoUsers()[2].UnionID, zhaoliu.UnionID, "nobody", ""} {
		topapiErrcode(t, callTopAPI(t, srv, APIGetByUnionID, token, map[string]any{"unionid": outsider}), 60121, "找不到该用户")
	}
	// 赵六 is found with his own organisation's token.
	foreign := appToken(t, srv, otherCorpAppID, otherCorpAppSecret)
	if got := topapiResult(t, callTopAPI(t, srv, APIGetByUnionID, foreign, map[string]any{"unionid": zhaoliu.UnionID}))["userid"]; got != "zhaoliu" {
		t.Errorf("userid %v, want zhaoliu", got)
	}
	topapiErrcode(t, callTopAPI(t, srv, APIGetByUnionID, foreign, map[string]any{"unionid": DemoUsers()[1].UnionID}), 60121, "找不到该用户")
}

func TestUserGet(t *testing.T) {
	srv, _ := newOAPIServer(t)
	lisi := DemoUsers()[1]
	token := appToken(t, srv, corpAppID, corpAppSecret)
	a := callTopAPI(t, srv, APIUserGet, token, map[string]any{"userid": "lisi", "language": "zh_CN"})
	result := topapiResult(t, a)
	want := map[string]any{
		"userid": "lisi", "unionid": lisi.UnionID, "name": "李四", "mobile": "13800138000", "state_code": "86",
		"email": "lisi@example.com", "org_email": "lisi@corp.example.com", "title": "产品经理", "job_number": "A0002",
		"active": true, "admin": false,
	}
	for k, v := range want {
		if result[k] != v {
			t.Errorf("user/get %s = %v, want %v", k, result[k], v)
		}
	}
	if !strings.Contains(a.body, `"dept_id_list":[2,4]`) {
		t.Errorf("user/get: %s, want dept_id_list [2,4]", a.body)
	}

	result = topapiResult(t, callTopAPI(t, srv, APIUserGet, token, map[string]any{"userid": "zhangsan"}))
	for _, absent := range []string{"mobile", "state_code", "avatar"} {
		if v, ok := result[absent]; ok {
			t.Errorf("user/get for 张三 has %s = %v; want it left out", absent, v)
		}
	}

	foreign := appToken(t, srv, otherCorpAppID, otherCorpAppSecret)
	if got := topapiResult(t, callTopAPI(t, srv, APIUserGet, foreign, map[string]any{"userid": "zhaoliu"}))["active"]; got != false {
		t.Errorf("user/get for 赵六 (inactive): active %v, want false", got)
	}
	topapiErrcode(t, callTopAPI(t, srv, APIUserGet, token, map[string]any{"userid": "zhaoliu"}), 60121, "找不到该用户")
	topapiErrcode(t, callTopAPI(t, srv, APIUserGet, foreign, map[string]any{"userid": "lisi"}), 60121, "找不到该用户")
	topapiErrcode(t, callTopAPI(t, srv, APIUserGet, token, map[string]any{"userid": "nobody"}), 60121, "找不到该用户")
	topapiErrcode(t, callTopAPI(t, srv, APIUserGet, token, map[string]any{}), 60121, "找不到该用户")
}

func TestDepartmentGet(t *testing.T) {
	srv, _ := newOAPIServer(t)
	token := appToken(t, srv, corpAppID, corpAppSecret)
	dept := func(id any) map[string]any {
		t.Helper()
		return topapiResult(t, callTopAPI(t, srv, APIDepartmentGet, token, map[string]any{"dept_id": id, "language": "zh_CN"}))
	}
	root := dept(1)
	if root["dept_id"] != 1.0 || root["name"] != "示例科技有限公司" {
		t.Errorf("root department: %v", root)
	}
	if p, ok := root["parent_id"]; ok && p != 0.0 {
		t.Errorf("root department has parent_id %v", p)
	}
	for id, want := range map[int64]struct {
		name   string
		parent float64
	}{2: {"研发部", 1}, 3: {"后端组", 2}, 4: {"市场部", 1}} {
		if got := dept(id); got["dept_id"] != float64(id) || got["name"] != want.name || got["parent_id"] != want.parent {
			t.Errorf("department %d: %v, want %s under %v", id, got, want.name, want.parent)
		}
	}
	topapiErrcode(t, callTopAPI(t, srv, APIDepartmentGet, token, map[string]any{"dept_id": 99}), 60003, "部门不存在")
	topapiErrcode(t, callTopAPI(t, srv, APIDepartmentGet, token, map[string]any{"dept_id": "后端组"}), 400002, "无效的参数")
	topapiErrcode(t, callTopAPI(t, srv, APIDepartmentGet, token, map[string]any{}), 400002, "无效的参数")

	srv.RenameDepartment(DemoCorpID, 3, "平台组")
	if got := dept(3)["name"]; got != "平台组" {
		t.Errorf("after RenameDepartment: name %v, want 平台组", got)
	}
	srv.RenameDepartment(DemoCorpID, 1, "示例集团")
	if got := dept(1)["name"]; got != "示例集团" {
		t.Errorf("after renaming the root: name %v, want 示例集团", got)
	}

	// Another organisation has its own root, named after it, and nothing of DemoCorp.
	foreign := appToken(t, srv, otherCorpAppID, otherCorpAppSecret)
	if got := topapiResult(t, callTopAPI(t, srv, APIDepartmentGet, foreign, map[string]any{"dept_id": 1}))["name"]; got != "另一家公司" {
		t.Errorf("other organisation's root: %v", got)
	}
	topapiErrcode(t, callTopAPI(t, srv, APIDepartmentGet, foreign, map[string]any{"dept_id": 3}), 60003, "部门不存在")

	defer func() {
		if recover() == nil {
			t.Error("RenameDepartment of a department that does not exist did not panic")
		}
	}()
	srv.RenameDepartment(DemoCorpID, 99, "x")
}

func TestDepartmentsAsConfigured(t *testing.T) {
	srv, _ := newOAPIServer(t, func(c *Config) {
		c.Corps = append(c.Corps, Corp{CorpID: "dingthirdcorp", Name: "第三公司", Departments: []Department{
			{ID: 1, Name: "总部"}, {ID: 7, Name: "七部", ParentID: 1},
		}})
		c.Apps = append(c.Apps, App{ClientID: "dingthirdapp", ClientSecret: "third", CorpID: "dingthirdcorp"})
	})
	token := appToken(t, srv, "dingthirdapp", "third")
	if got := topapiResult(t, callTopAPI(t, srv, APIDepartmentGet, token, map[string]any{"dept_id": 1}))["name"]; got != "总部" {
		t.Errorf("a listed root keeps its name: %v", got)
	}
	if got := topapiResult(t, callTopAPI(t, srv, APIDepartmentGet, token, map[string]any{"dept_id": 7}))["parent_id"]; got != 1.0 {
		t.Errorf("department 7: parent_id %v", got)
	}
}

func TestTopAPIBodies(t *testing.T) {
	srv, _ := newOAPIServer(t)
	token := appToken(t, srv, corpAppID, corpAppSecret)
	query := url.Values{"access_token": {token}}
	form := "application/x-www-form-urlencoded"

	a := postOAPI(t, srv, APIGetByUnionID, query, form, url.Values{"unionid": {DemoUsers()[0].UnionID}}.Encode())
	if got := topapiResult(t, a)["userid"]; got != "zhangsan" {
		t.Errorf("form body: userid %v", got)
	}
	a = postOAPI(t, srv, APIDepartmentGet, query, form+"; charset=utf-8", "dept_id=3&language=zh_CN")
	if got := topapiResult(t, a)["name"]; got != "后端组" {
		t.Errorf("form body: department %v", got)
	}
	a = postOAPI(t, srv, APIDepartmentGet, query, "application/json;charset=utf-8", `{"dept_id":"4"}`)
	if got := topapiResult(t, a)["name"]; got != "市场部" {
		t.Errorf("JSON body with a string dept_id: department %v", got)
	}
	code, _ := srv.InAppCode(DemoCorpID, DemoUsers()[1].UnionID)
	a = postOAPI(t, srv, APIGetUserInfo, query, form, "code="+url.QueryEscape(code))
	if got := topapiResult(t, a)["userid"]; got != "lisi" {
		t.Errorf("form body: getuserinfo userid %v", got)
	}
	topapiErrcode(t, postOAPI(t, srv, APIUserGet, query, "application/json", `{"userid":`), 400002, "无效的参数")
	topapiErrcode(t, postOAPI(t, srv, APIUserGet, query, "application/json", `["lisi"]`), 400002, "无效的参数")
}

// The legacy SNS login.

func snsParams() url.Values {
	return url.Values{
		"appid":         {snsAppID},
		"redirect_uri":  {snsRedirect},
		"response_type": {"code"},
		"scope":         {"snsapi_login"},
		"state":         {"sns-state"},
	}
}

var snsPaths = []string{"/connect/qrconnect", "/connect/oauth2/sns_authorize"}

func getSNS(t *testing.T, srv *Server, path string, params url.Values) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path+"?"+params.Encode(), nil)
	return do(t, req)
}

func postSNS(t *testing.T, srv *Server, path string, params url.Values) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

// snsLogin logs unionID in through the page's POST and returns the redirect's query.
func snsLogin(t *testing.T, srv *Server, path string, params url.Values, unionID string) url.Values {
	t.Helper()
	params.Set("unionId", unionID)
	a := postSNS(t, srv, path, params)
	if a.status != http.StatusFound {
		t.Fatalf("SNS approve: %d %s", a.status, a.body)
	}
	loc, _ := url.Parse(a.header.Get("Location"))
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != snsRedirect {
		t.Errorf("redirected to %s, want %s", got, snsRedirect)
	}
	return loc.Query()
}

func TestSNSAuthorizeRejectsBadRequests(t *testing.T) {
	tests := []struct {
		name   string
		paths  []string
		adjust func(url.Values)
		reason string
	}{
		{"unknown appid", snsPaths, func(p url.Values) { p.Set("appid", "dingnosuchapp") }, "unknown appid"},
		{"no appid", snsPaths, func(p url.Values) { p.Del("appid") }, "unknown appid"},
		{"client_id instead of appid", snsPaths, func(p url.Values) { p.Set("client_id", p.Get("appid")); p.Del("appid") }, "unknown appid"},
		{"unregistered redirect", snsPaths, func(p url.Values) { p.Set("redirect_uri", "https://evil.example.com/cb") }, "not registered"},
		{"other app's redirect", snsPaths, func(p url.Values) { p.Set("redirect_uri", redirectURI) }, "not registered"},
		{"response type token", snsPaths, func(p url.Values) { p.Set("response_type", "token") }, "response_type must be code"},
		{"scope openid", snsPaths, func(p url.Values) { p.Set("scope", "openid") }, "scope must be snsapi_login"},
		{"no scope", snsPaths, func(p url.Values) { p.Del("scope") }, "scope must be snsapi_login"},
		{"snsapi_auth on the QR page", snsPaths[:1], func(p url.Values) { p.Set("scope", "snsapi_auth") }, "scope must be snsapi_login"},
	}
	for _, tt := range tests {
		for _, path := range tt.paths {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				t.Run(tt.name+" "+path+" "+method, func(t *testing.T) {
					srv, _ := newOAPIServer(t)
					srv.AutoApprove(DemoUsers()[0].UnionID) // must not bypass the checks
					params := snsParams()
					tt.adjust(params)
					var a answer
					if method == http.MethodGet {
						a = getSNS(t, srv, path, params)
					} else {
						params.Set("unionId", DemoUsers()[0].UnionID)
						a = postSNS(t, srv, path, params)
					}
					if a.status != http.StatusBadRequest || a.header.Get("Location") != "" {
						t.Errorf("answer %d, Location %q; want 400 and no redirect", a.status, a.header.Get("Location"))
					}
					if !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(a.body, tt.reason) ||
						!strings.Contains(a.body, "登录请求有误") {
						t.Errorf("error page lacks %q:\n%s", tt.reason, a.body)
					}
				})
			}
		}
	}
}

func TestSNSAuthorizePage(t *testing.T) {
	srv, _ := newOAPIServer(t)
	for _, path := range snsPaths {
		a := getSNS(t, srv, path, snsParams())
		if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: answer %d %s", path, a.status, a.header.Get("Content-Type"))
		}
		wants := []string{
			"钉钉登录（模拟）", "legacy SNS login",
			`<form method="post" action="` + path + `">`,
			`<input type="hidden" name="appid" value="` + snsAppID + `">`,
			`<input type="hidden" name="state" value="sns-state">`,
			`name="deny" value="1"`,
		}
		for _, u := range DemoUsers() {
			wants = append(wants, u.Nick, `name="unionId" value="`+u.UnionID+`"`)
		}
		for _, want := range wants {
			if !strings.Contains(a.body, want) {
				t.Errorf("%s: page lacks %s", path, want)
			}
		}
	}
	// The DingTalk client's own scope is accepted where the client uses it.
	params := snsParams()
	params.Set("scope", "snsapi_auth")
	if a := getSNS(t, srv, "/connect/oauth2/sns_authorize", params); a.status != http.StatusOK {
		t.Errorf("sns_authorize with snsapi_auth: answer %d", a.status)
	}
	if got := srv.Calls(APIQRConnect); got != 3 {
		t.Errorf("Calls(connect/qrconnect) = %d, want 3 for both paths", got)
	}
}

func TestSNSApproveAndDeny(t *testing.T) {
	srv, _ := newOAPIServer(t)
	for _, path := range snsPaths {
		q := snsLogin(t, srv, path, snsParams(), DemoUsers()[0].UnionID)
		if q.Get("code") == "" || q.Has("authCode") || q.Get("state") != "sns-state" {
			t.Errorf("%s approve: query %v, want code and state, no authCode", path, q)
		}
		params := snsParams()
		params.Set("deny", "1")
		a := postSNS(t, srv, path, params)
		loc, _ := url.Parse(a.header.Get("Location"))
		q = loc.Query()
		if a.status != http.StatusFound || q.Get("error") == "" || q.Get("state") != "sns-state" || q.Has("code") {
			t.Errorf("%s deny: answer %d to %s; want 302 with error and state, no code", path, a.status, loc)
		}
	}

	params := snsParams()
	params.Set("unionId", "nobody")
	if a := postSNS(t, srv, snsPaths[0], params); a.status != http.StatusBadRequest || a.header.Get("Location") != "" {
		t.Errorf("unknown user: answer %d, Location %q", a.status, a.header.Get("Location"))
	}

	location := func() url.Values {
		a := getSNS(t, srv, snsPaths[0], snsParams())
		loc, _ := url.Parse(a.header.Get("Location"))
		return loc.Query()
	}
	srv.AutoApprove(DemoUsers()[1].UnionID)
	if q := location(); q.Get("code") == "" || q.Has("authCode") {
		t.Errorf("AutoApprove: query %v, want a code", q)
	}
	srv.AutoDeny(true)
	if q := location(); q.Get("error") == "" || q.Has("code") {
		t.Errorf("AutoDeny: query %v, want an error", q)
	}
}

// sign is DingTalk's signature for sns/getuserinfo_bycode, written here from doc
// §3.4 rather than taken from the fake.
func sign(secret, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func signedQuery(accessKey, secret string, at time.Time) url.Values {
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	return url.Values{"accessKey": {accessKey}, "timestamp": {ts}, "signature": {sign(secret, ts)}}
}

func snsUserInfo(t *testing.T, srv *Server, query url.Values, code string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"tmp_auth_code": code})
	return postOAPI(t, srv, APISNSUserInfo, query, "application/json", string(body))
}

// oapiError checks an old-style error: HTTP 200, errcode, an errmsg.
func oapiError(t *testing.T, a answer, errcode int) {
	t.Helper()
	if body := oapiErrcode(t, a, errcode); body["errmsg"] == "" || body["errmsg"] == nil {
		t.Errorf("answer %s has no errmsg", a.body)
	}
}

func TestSignatureKnownVector(t *testing.T) {
	const want = "DyeWC1B0VlhcI42PODOd3x5nhYxkoQkAYkwXgQD1t3I="
	if got := sign("testappSecret", "1587046137901"); got != want {
		t.Fatalf("sign = %s, want %s", got, want)
	}
	// The fake takes the vector, percent-encoded as doc §3.4 shows it.
	srv, clk := newOAPIServer(t, func(c *Config) {
		c.Apps = append(c.Apps, App{ClientID: "testapp", ClientSecret: "testappSecret", RedirectURIs: []string{snsRedirect}})
	})
	clk.set(time.UnixMilli(1587046137901 + 30_000))
	params := snsParams()
	params.Set("appid", "testapp")
	code := snsLogin(t, srv, snsPaths[0], params, DemoUsers()[0].UnionID).Get("code")
	req, _ := http.NewRequest(http.MethodPost,
		srv.URL+"/sns/getuserinfo_bycode?accessKey=testapp&timestamp=1587046137901&signature=DyeWC1B0VlhcI42PODOd3x5nhYxkoQkAYkwXgQD1t3I%3D",
		strings.NewReader(`{"tmp_auth_code":"`+code+`"}`))
	req.Header.Set("Content-Type", "application/json")
	oapiErrcode(t, do(t, req), 0)
}

func TestSNSUserInfo(t *testing.T) {
	srv, clk := newOAPIServer(t)
	lisi := DemoUsers()[1]
	code := snsLogin(t, srv, snsPaths[0], snsParams(), lisi.UnionID).Get("code")
	a := snsUserInfo(t, srv, signedQuery(snsAppID, snsAppSecret, clk.Now()), code)
	body := oapiErrcode(t, a, 0)
	if body["errmsg"] != "ok" {
		t.Errorf("errmsg %v", body["errmsg"])
	}
	if _, ok := body["request_id"]; ok {
		t.Errorf("sns/getuserinfo_bycode has a request_id: %s", a.body)
	}
	info, _ := body["user_info"].(map[string]any)
	want := map[string]any{"nick": "李四", "unionid": lisi.UnionID, "openid": lisi.OpenID, "main_org_auth_high_level": false}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("user_info.%s = %v, want %v", k, info[k], v)
		}
	}
	if id, _ := info["dingId"].(string); !strings.HasPrefix(id, "$:LWCP_v1:$") || len(id) <= len("$:LWCP_v1:$") {
		t.Errorf("user_info.dingId = %q", id)
	}
	// Single use.
	oapiError(t, snsUserInfo(t, srv, signedQuery(snsAppID, snsAppSecret, clk.Now()), code), 40078)
}

func TestSNSUserInfoChecksTheSignature(t *testing.T) {
	srv, clk := newOAPIServer(t)
	code := snsLogin(t, srv, snsPaths[1], snsParams(), DemoUsers()[0].UnionID).Get("code")
	now := clk.Now()
	with := func(key, value string) url.Values {
		q := signedQuery(snsAppID, snsAppSecret, now)
		q.Set(key, value)
		return q
	}
	for _, tt := range []struct {
		name    string
		query   url.Values
		errcode int
	}{
		{"unknown accessKey", signedQuery("dingnosuchapp", snsAppSecret, now), 853003},
		{"no accessKey", with("accessKey", ""), 853003},
		{"timestamp not a number", with("timestamp", "now"), 853001},
		{"no timestamp", with("timestamp", ""), 853001},
		{"timestamp with a sign", with("timestamp", "+"+strconv.FormatInt(now.UnixMilli(), 10)), 853001},
		{"timestamp a float", with("timestamp", strconv.FormatInt(now.UnixMilli(), 10)+".0"), 853001},
		{"61 s old", signedQuery(snsAppID, snsAppSecret, now.Add(-61*time.Second)), 853002},
		{"61 s ahead", signedQuery(snsAppID, snsAppSecret, now.Add(61*time.Second)), 853002},
		{"in seconds, not ms", signedQuery(snsAppID, snsAppSecret, time.UnixMilli(now.Unix())), 853002},
		{"signed with another secret", signedQuery(snsAppID, otherSecret, now), 853004},
		{"another app's signature", with("signature", signedQuery(corpAppID, corpAppSecret, now).Get("signature")), 853004},
		{"no signature", with("signature", ""), 853004},
		{"signature of another timestamp", with("signature", sign(snsAppSecret, "1587046137901")), 853004},
	} {
		t.Run(tt.name, func(t *testing.T) {
			oapiError(t, snsUserInfo(t, srv, tt.query, code), tt.errcode)
		})
	}
	// None of that used the code up; a minute's skew either way is fine.
	oapiErrcode(t, snsUserInfo(t, srv, signedQuery(snsAppID, snsAppSecret, now.Add(-59*time.Second)), code), 0)
	code = snsLogin(t, srv, snsPaths[1], snsParams(), DemoUsers()[0].UnionID).Get("code")
	oapiErrcode(t, snsUserInfo(t, srv, signedQuery(snsAppID, snsAppSecret, now.Add(59*time.Second)), code), 0)
}

// A signature holding "+" must be percent-encoded: unencoded, the query decodes it to
// a space, and DingTalk refuses the signature.
func TestSNSSignatureMustBeEscaped(t *testing.T) {
	srv, clk := newOAPIServer(t)
	var ts, sig string
	for i := range 1000 {
		ts = strconv.FormatInt(clk.Now().UnixMilli()-int64(i), 10)
		if sig = sign(snsAppSecret, ts); strings.Contains(sig, "+") {
			break
		}
	}
	if !strings.Contains(sig, "+") {
		t.Fatal("no signature with a + in 1000 timestamps")
	}
	code := snsLogin(t, srv, snsPaths[0], snsParams(), DemoUsers()[0].UnionID).Get("code")
	raw := "accessKey=" + snsAppID + "&timestamp=" + ts + "&signature="
	post := func(query string) answer {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/sns/getuserinfo_bycode?"+query, strings.NewReader(`{"tmp_auth_code":"`+code+`"}`))
		req.Header.Set("Content-Type", "application/json")
		return do(t, req)
	}
	oapiError(t, post(raw+sig), 853004)
	oapiErrcode(t, post(raw+url.QueryEscape(sig)), 0)
}

func TestSNSCodeIsBoundToItsApp(t *testing.T) {
	srv, clk := newOAPIServer(t)
	// corpAppID registered snsRedirect too: an internal app may use the SNS login.
	params := snsParams()
	params.Set("appid", corpAppID)
	code := snsLogin(t, srv, snsPaths[0], params, DemoUsers()[0].UnionID).Get("code")
	oapiError(t, snsUserInfo(t, srv, signedQuery(snsAppID, snsAppSecret, clk.Now()), code), 40078)
	oapiError(t, snsUserInfo(t, srv, signedQuery(corpAppID, corpAppSecret, clk.Now()), code), 40078) // used up

	code = snsLogin(t, srv, snsPaths[0], params, DemoUsers()[0].UnionID).Get("code")
	oapiErrcode(t, snsUserInfo(t, srv, signedQuery(corpAppID, corpAppSecret, clk.Now()), code), 0)

	// A flow A authCode is not an SNS code, nor the other way round.
	authCode := approve(t, srv, authParams(), DemoUsers()[0].UnionID)
	oapiError(t, snsUserInfo(t, srv, signedQuery(snsAppID, snsAppSecret, clk.Now()), authCode), 40078)
	snsCode := snsLogin(t, srv, snsPaths[0], snsParams(), DemoUsers()[0].UnionID).Get("code")
	assertAPIError(t, exchangeCode(t, srv, appID, appSecret, snsCode), 400, "invalidParameter.authCode.notFound")

	oapiError(t, snsUserInfo(t, srv, signedQuery(snsAppID, snsAppSecret, clk.Now()), "never-issued"), 40078)
	oapiError(t, snsUserInfo(t, srv, signedQuery(snsAppID, snsAppSecret, clk.Now()), ""), 40078)
}

func TestSNSCodeExpires(t *testing.T) {
	srv, clk := newOAPIServer(t, func(c *Config) { c.CodeLifetime = time.Minute })
	code := snsLogin(t, srv, snsPaths[0], snsParams(), DemoUsers()[0].UnionID).Get("code")
	clk.advance(time.Minute)
	oapiError(t, snsUserInfo(t, srv, signedQuery(snsAppID, snsAppSecret, clk.Now()), code), 40078)
}

func TestSNSUserInfoFormBody(t *testing.T) {
	srv, clk := newOAPIServer(t)
	code := snsLogin(t, srv, snsPaths[0], snsParams(), DemoUsers()[2].UnionID).Get("code")
	a := postOAPI(t, srv, APISNSUserInfo, signedQuery(snsAppID, snsAppSecret, clk.Now()),
		"application/x-www-form-urlencoded", url.Values{"tmp_auth_code": {code}}.Encode())
	if info, _ := oapiErrcode(t, a, 0)["user_info"].(map[string]any); info["nick"] != "王五" {
		t.Errorf("form body: user_info %v", info)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/sns/getuserinfo_bycode?"+signedQuery(snsAppID, snsAppSecret, clk.Now()).Encode(), nil)
	if a := do(t, req); a.status != http.StatusNotFound {
		t.Errorf("GET sns/getuserinfo_bycode: %d, want 404", a.status)
	}
}

// Every oapi API can be made to answer DingTalk's busy and rate-limit errors, the
// gateway-wrapped form, and the IP ban's non-DingTalk body.
func TestOAPIInjectedFailures(t *testing.T) {
	calls := map[string]func(*testing.T, *Server) answer{
		APIGetToken: func(t *testing.T, srv *Server) answer { return getToken(t, srv, corpAppID, corpAppSecret) },
		APIGetUserInfo: func(t *testing.T, srv *Server) answer {
			return callTopAPI(t, srv, APIGetUserInfo, "x", map[string]any{"code": "x"})
		},
		APIGetByUnionID: func(t *testing.T, srv *Server) answer {
			return callTopAPI(t, srv, APIGetByUnionID, "x", map[string]any{"unionid": "x"})
		},
		APIUserGet: func(t *testing.T, srv *Server) answer {
			return callTopAPI(t, srv, APIUserGet, "x", map[string]any{"userid": "x"})
		},
		APIDepartmentGet: func(t *testing.T, srv *Server) answer {
			return callTopAPI(t, srv, APIDepartmentGet, "x", map[string]any{"dept_id": 1})
		},
		APISNSUserInfo: func(t *testing.T, srv *Server) answer {
			return snsUserInfo(t, srv, url.Values{}, "x")
		},
		APIQRConnect: func(t *testing.T, srv *Server) answer { return getSNS(t, srv, snsPaths[1], snsParams()) },
	}
	const ipBan = `{"status":1111,"wait":5,"source":"x5","punish":"deny","uuid":"0b0e2c1b"}`
	for api, call := range calls {
		t.Run(api, func(t *testing.T) {
			srv, _ := newOAPIServer(t)

			srv.Fail(api, Failure{ErrCode: -1, Times: 1})
			topapiErrcode(t, call(t, srv), -1, "系统繁忙")

			srv.Fail(api, Failure{ErrCode: 90018, ErrMsg: "当前企业调用该接口超过限制", Times: 2})
			topapiErrcode(t, call(t, srv), 90018, "当前企业调用该接口超过限制")
			topapiErrcode(t, call(t, srv), 90018, "当前企业调用该接口超过限制")

			srv.Fail(api, Failure{ErrCode: 90002, ErrMsg: "服务器繁忙"}) // until cleared
			for range 2 {
				body := topapiErrcode(t, call(t, srv), 90002, "服务器繁忙")
				if _, ok := body["sub_code"]; ok {
					t.Errorf("direct error with a sub_code: %v", body)
				}
			}

			srv.Fail(api, Failure{ErrCode: 88, SubCode: "40014"})
			body := topapiErrcode(t, call(t, srv), 88, "ding talk error[subcode=40014,submsg=不合法的access_token]")
			if body["sub_code"] != "40014" || body["sub_msg"] != "不合法的access_token" {
				t.Errorf("gateway-wrapped: %v", body)
			}
			srv.Fail(api, Failure{ErrCode: 88, ErrMsg: "ding talk error[subcode=60020]", SubCode: "60020", SubMsg: "访问ip不在白名单之中,request ip=203.0.113.9"})
			body = topapiErrcode(t, call(t, srv), 88, "ding talk error[subcode=60020]")
			if body["sub_code"] != "60020" || body["sub_msg"] != "访问ip不在白名单之中,request ip=203.0.113.9" {
				t.Errorf("gateway-wrapped with texts: %v", body)
			}

			srv.Fail(api, Failure{Body: ipBan, Times: 1})
			if a := call(t, srv); a.status != http.StatusOK || a.body != ipBan {
				t.Errorf("IP ban: %d %q", a.status, a.body)
			}
			srv.Fail(api, Failure{Status: http.StatusForbidden, Body: ipBan, Times: 1})
			if a := call(t, srv); a.status != http.StatusForbidden || a.body != ipBan {
				t.Errorf("IP ban, 403: %d %q", a.status, a.body)
			}
			srv.Fail(api, Failure{Status: http.StatusBadGateway, ErrCode: -1, Times: 1})
			if a := call(t, srv); a.status != http.StatusBadGateway || a.json(t)["errcode"] != -1.0 {
				t.Errorf("Status with ErrCode: %d %s", a.status, a.body)
			}

			srv.ClearFailures()
			if a := call(t, srv); strings.Contains(a.body, "90002") {
				t.Errorf("after ClearFailures: still failing: %s", a.body)
			}
			if got := srv.Calls(api); got != 11 {
				t.Errorf("Calls(%s) = %d, want 11", api, got)
			}
		})
	}
}

func TestFailAcceptsEveryAPI(t *testing.T) {
	fake := New(Config{})
	for _, api := range []string{APIAuthorize, APIUserAccessToken, APIUsersMe, APIGetToken, APIGetUserInfo,
		APIGetByUnionID, APIUserGet, APIDepartmentGet, APIQRConnect, APISNSUserInfo} {
		fake.Fail(api, Failure{ErrCode: -1}) // panics on an unknown api
	}
	defer func() {
		if recover() == nil {
			t.Error("Fail with an unknown api did not panic")
		}
	}()
	fake.Fail("topapi/v2/user/list", Failure{})
}

func TestDemoCorp(t *testing.T) {
	c := DemoCorp()
	if c.CorpID != DemoCorpID || c.Name == "" {
		t.Errorf("DemoCorp: %+v", c)
	}
	ids := map[int64]bool{1: true}
	for _, d := range c.Departments {
		ids[d.ID] = true
	}
	for _, u := range DemoUsers() {
		if u.UserID == "" {
			if u.CorpID != "" || len(u.DeptIDs) > 0 {
				t.Errorf("%s: departments or an organisation without a userid", u.Nick)
			}
			continue
		}
		if u.CorpID != DemoCorpID || len(u.DeptIDs) == 0 || u.Title == "" || u.JobNumber == "" || u.OrgEmail == "" {
			t.Errorf("%s: incomplete directory entry %+v", u.Nick, u)
		}
		for _, id := range u.DeptIDs {
			if !ids[id] {
				t.Errorf("%s is in department %d, which DemoCorp lacks", u.Nick, id)
			}
		}
	}
	if !slices.ContainsFunc(DemoUsers(), func(u User) bool { return u.Nick == "王五" && u.UserID == "" && u.CorpID == "" }) {
		t.Error("王五 should stay outside any organisation")
	}
}

// The in-app flow and the directory from many goroutines at once, with the admin
// renaming departments and DingTalk expiring tokens meanwhile (run with -race).
func TestConcurrentDirectoryUse(t *testing.T) {
	srv, _ := newOAPIServer(t)
	post := func(api, token string, body string) (map[string]any, error) {
		resp, err := http.Post(srv.URL+"/"+api+"?access_token="+url.QueryEscape(token), "application/json", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		return m, json.NewDecoder(resp.Body).Decode(&m)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			resp, err := http.Get(srv.URL + "/gettoken?appkey=" + corpAppID + "&appsecret=" + corpAppSecret)
			if err != nil {
				t.Error(err)
				return
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			err = json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			if err != nil {
				t.Error(err)
				return
			}
			code, err := srv.InAppCode(DemoCorpID, DemoUsers()[i%2].UnionID)
			if err != nil {
				t.Error(err)
				return
			}
			for _, call := range []struct{ api, body string }{
				{APIGetUserInfo, `{"code":"` + code + `"}`},
				{APIDepartmentGet, `{"dept_id":3}`},
			} {
				m, err := post(call.api, tok.AccessToken, call.body)
				// ExpireAppTokens may come first; anything else is a bug.
				if err != nil || (m["errcode"] != 0.0 && m["sub_code"] != "40014") {
					t.Errorf("%s: %v, %v", call.api, m, err)
				}
			}
		})
		wg.Go(func() {
			srv.RenameDepartment(DemoCorpID, 3, "后端组"+strconv.Itoa(i))
			srv.ExpireAppTokens()
			srv.Fail(APIUserGet, Failure{ErrCode: -1, Times: 1})
			_ = srv.Calls(APIGetToken)
		})
	}
	wg.Wait()
	if got := srv.Calls(APIGetToken); got != 8 {
		t.Errorf("Calls(gettoken) = %d, want 8", got)
	}
}
