package dingtalk

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/upstream"
)

func TestAPIErrorClassification(t *testing.T) {
	tests := []struct {
		err  APIError
		want error
	}{
		{APIError{HTTPStatus: 400, Code: "invalidParameter.authCode.notFound"}, upstream.ErrLoginExpired},
		{APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.QpsLimitForApi"}, upstream.ErrUnavailable},
		{APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}, upstream.ErrUnavailable},
		{APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi"}, upstream.ErrUnavailable},
		{APIError{HTTPStatus: 429}, upstream.ErrUnavailable},
		{APIError{HTTPStatus: 500, Code: "InternalError"}, upstream.ErrUnavailable},
		{APIError{HTTPStatus: 504, Excerpt: "<html>"}, upstream.ErrUnavailable},
		{APIError{HTTPStatus: 200, IPThrottled: true}, upstream.ErrUnavailable},
		{APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.AccessTokenPermissionDenied"}, upstream.ErrMisconfigured},
		{APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.IpNotInWhiteList"}, upstream.ErrMisconfigured},
		{APIError{HTTPStatus: 400, Code: "InvalidAuthentication"}, nil},
		{APIError{HTTPStatus: 404, Code: "InvalidAction.NotFound"}, nil},
	}
	for _, tt := range tests {
		if got := tt.err.Unwrap(); got != tt.want {
			t.Errorf("%v: Unwrap() = %v, want %v", &tt.err, got, tt.want)
		}
	}
}

func TestAPIErrorHints(t *testing.T) {
	noScopes := &APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.AccessTokenPermissionDenied"}
	withScopes := &APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.AccessTokenPermissionDenied", RequiredScopes: []string{"Contact.User.mobile"}}
	ipList := &APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.IpNotInWhiteList"}
	for err, want := range map[*APIError]string{
		noScopes:   "grant Contact.User.Read",
		withScopes: "grant Contact.User.mobile",
		ipList:     "whitelist",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestDecodeAPI(t *testing.T) {
	header := http.Header{"X-Acs-Request-Id": {"hdr-id"}}
	t.Run("error body", func(t *testing.T) {
		raw := rawResponse{Status: 403, Header: header, Body: []byte(`{"code":"Forbidden.AccessDenied.AccessTokenPermissionDenied",` +
			`"message":"没有调用该接口的权限","requestid":"body-id","accessdenieddetail":{"requiredScopes":["Contact.User.Read"]}}`)}
		var apiErr *APIError
		if err := decodeAPI(raw, &struct{}{}, nil); !errors.As(err, &apiErr) {
			t.Fatalf("decodeAPI = %v, want *APIError", err)
		}
		want := APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.AccessTokenPermissionDenied",
			Message: "没有调用该接口的权限", RequestID: "body-id", RequiredScopes: []string{"Contact.User.Read"}}
		if apiErr.Error() != want.Error() {
			t.Errorf("got  %v\nwant %v", apiErr, &want)
		}
	})
	t.Run("request id from header only", func(t *testing.T) {
		raw := rawResponse{Status: 400, Header: header, Body: []byte(`{"code":"Missingbody","message":"body is mandatory for this action"}`)}
		var apiErr *APIError
		if err := decodeAPI(raw, &struct{}{}, nil); !errors.As(err, &apiErr) || apiErr.RequestID != "hdr-id" {
			t.Errorf("decodeAPI = %v, want requestid hdr-id", err)
		}
	})
	t.Run("non-json error body", func(t *testing.T) {
		page := "<html>\n<body>\x00" + strings.Repeat("拒绝访问 ", 100) + "</body></html>"
		raw := rawResponse{Status: 405, Header: http.Header{}, Body: []byte(page)}
		var apiErr *APIError
		if err := decodeAPI(raw, &struct{}{}, nil); !errors.As(err, &apiErr) {
			t.Fatalf("decodeAPI = %v, want *APIError", err)
		}
		if apiErr.HTTPStatus != 405 || apiErr.Code != "" || !strings.HasPrefix(apiErr.Excerpt, "<html> <body> 拒绝访问") {
			t.Errorf("got %+v", apiErr)
		}
		if n := len([]rune(apiErr.Excerpt)); n > 121 {
			t.Errorf("excerpt is %d runes long", n)
		}
	})
	t.Run("success", func(t *testing.T) {
		var out struct {
			UnionID string `json:"unionId"`
		}
		raw := rawResponse{Status: 200, Header: http.Header{}, Body: []byte(`{"unionId":"u1","newField":true}`)}
		if err := decodeAPI(raw, &out, nil); err != nil || out.UnionID != "u1" {
			t.Errorf("decodeAPI = %v, out %+v", err, out)
		}
	})
	t.Run("trailing garbage is malformed", func(t *testing.T) {
		raw := rawResponse{Status: 200, Header: http.Header{}, Body: []byte(`{"unionId":"u1"} <html>`)}
		if err := decodeAPI(raw, &struct{}{}, nil); err == nil || !strings.Contains(err.Error(), "malformed JSON") {
			t.Errorf("decodeAPI = %v, want malformed JSON", err)
		}
	})
}

func TestDecodeOAPI(t *testing.T) {
	type result struct {
		UserID string `json:"userid"`
	}
	tests := []struct {
		name     string
		status   int
		body     string
		want     error  // sentinel; nil: none
		wantText string // in the error; "" with want nil: success
	}{
		{"success", 200, `{"errcode":0,"errmsg":"ok","request_id":"r1","result":{"userid":"manager4220"}}`, nil, ""},
		{"direct error", 200, `{"errcode":40078,"errmsg":"不存在的临时授权码"}`, upstream.ErrLoginExpired, "errcode 40078: 不存在的临时授权码"},
		{"gateway-wrapped bad token", 200,
			`{"errcode":88,"sub_code":"40014","sub_msg":"不合法的access_token","errmsg":"ding talk error[subcode=40014,submsg=不合法的access_token]","request_id":"r2"}`,
			nil, "(sub_code 40014: 不合法的access_token) (request_id r2)"},
		{"busy", 200, `{"errcode":-1,"errmsg":"系统繁忙"}`, upstream.ErrUnavailable, "系统繁忙"},
		{"rate limit 90002", 200, `{"errcode":90002,"errmsg":"x"}`, upstream.ErrUnavailable, "90002"},
		{"rate limit 90005", 200, `{"errcode":90005,"errmsg":"x"}`, upstream.ErrUnavailable, "90005"},
		{"rate limit 90006", 200, `{"errcode":90006,"errmsg":"x"}`, upstream.ErrUnavailable, "90006"},
		{"rate limit 90018", 200, `{"errcode":90018,"errmsg":"x"}`, upstream.ErrUnavailable, "90018"},
		{"rate limit 90019", 200, `{"errcode":90019,"errmsg":"x"}`, upstream.ErrUnavailable, "90019"},
		{"wrapped rate limit", 200, `{"errcode":88,"sub_code":"90018","sub_msg":"x","errmsg":"y"}`, upstream.ErrUnavailable, "sub_code 90018"},
		{"ip whitelist", 200, `{"errcode":60020,"errmsg":"访问ip不在白名单之中,request ip=203.0.113.7"}`, nil, "whitelist"},
		{"not a member", 200, `{"errcode":60121,"errmsg":"找不到该用户","request_id":"r3"}`, nil, "errcode 60121"},
		{"no errcode", 200, `{"result":{}}`, nil, "no errcode"},
		{"malformed", 200, `{"errcode":0,`, nil, "malformed JSON"},
		{"gateway 502", 502, `<html>Bad Gateway</html>`, upstream.ErrUnavailable, "Bad Gateway"},
		{"ip ban", 200, `{"status":1111,"wait":5,"punish":"deny"}`, upstream.ErrUnavailable, "throttling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out result
			err := decodeOAPI(rawResponse{Status: tt.status, Header: http.Header{}, Body: []byte(tt.body)}, &out, nil)
			if tt.want == nil && tt.wantText == "" {
				if err != nil || out.UserID != "" {
					// topapi results sit under "result"; out reads top-level fields only.
					t.Errorf("decodeOAPI = %v, out %+v", err, out)
				}
				return
			}
			if err == nil {
				t.Fatal("decodeOAPI: no error")
			}
			for _, sentinel := range []error{upstream.ErrUnavailable, upstream.ErrLoginExpired, upstream.ErrAccessDenied} {
				if got := errors.Is(err, sentinel); got != (sentinel == tt.want) {
					t.Errorf("errors.Is(%q, %q) = %v", err, sentinel, got)
				}
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q lacks %q", err, tt.wantText)
			}
		})
	}
}

func TestDecodeOAPIFillsResult(t *testing.T) {
	var out struct {
		Result struct {
			UserID  string `json:"userid"`
			UnionID string `json:"unionid"`
		} `json:"result"`
	}
	body := `{"errcode":0,"errmsg":"ok","request_id":"e8krly4vyiln","result":{"userid":"manager4220","unionid":"gliiW0xxxx"}}`
	if err := decodeOAPI(rawResponse{Status: 200, Body: []byte(body)}, &out, nil); err != nil {
		t.Fatal(err)
	}
	if out.Result.UserID != "manager4220" || out.Result.UnionID != "gliiW0xxxx" {
		t.Errorf("result = %+v", out.Result)
	}
}

func TestDecodersRedactSensitiveValues(t *testing.T) {
	const secret, code = "app-secret-123456", "tmp-code-abcdef"
	sensitive := []string{secret, code}
	errs := []error{
		decodeAPI(rawResponse{Status: 400, Header: http.Header{}, Body: []byte(`{"code":"x","message":"secret ` + secret + ` code ` + code + `"}`)}, nil, sensitive),
		decodeAPI(rawResponse{Status: 502, Header: http.Header{}, Body: []byte(`<p>` + secret + `</p>`)}, nil, sensitive),
		decodeOAPI(rawResponse{Status: 200, Body: []byte(`{"errcode":40078,"errmsg":"code ` + code + `","sub_msg":"` + secret + `"}`)}, nil, sensitive),
	}
	for _, err := range errs {
		if err == nil || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), code) {
			t.Errorf("error %v: want one without the secret and the code", err)
		}
	}
}

func TestSafeText(t *testing.T) {
	tests := []struct {
		in       string
		maxRunes int
		want     string
	}{
		{"plain", 10, "plain"},
		{"  line1\r\n\tline2  ", 20, "line1 line2"},
		{"bell\x07and\x1b[31mescape", 30, "bell and [31mescape"},
		{"bad \xff utf8", 20, "bad \uFFFD utf8"},
		{"一二三四五六", 4, "一二三四…"},
	}
	for _, tt := range tests {
		if got := safeText(tt.in, tt.maxRunes); got != tt.want {
			t.Errorf("safeText(%q, %d) = %q, want %q", tt.in, tt.maxRunes, got, tt.want)
		}
	}
}

func TestPhoneE164(t *testing.T) {
	tests := []struct{ mobile, stateCode, want string }{
		{"13800138000", "86", "+8613800138000"},
		{"13800138000", "", "+8613800138000"}, // DingTalk may omit stateCode for mainland numbers
		{"91234567", "852", "+85291234567"},
		{"91234567", "+852", "+85291234567"},
		{"138-0013-8000", "86", "+8613800138000"},
		{"", "86", ""},
		{"", "", ""},
		{"138****8000", "86", ""}, // masked: no claim rather than a wrong one
		{"1234567890123456", "86", ""},
	}
	for _, tt := range tests {
		if got := phoneE164(tt.mobile, tt.stateCode); got != tt.want {
			t.Errorf("phoneE164(%q, %q) = %q, want %q", tt.mobile, tt.stateCode, got, tt.want)
		}
	}
}

func TestEndpointsDefaults(t *testing.T) {
	got, err := Endpoints{API: "http://127.0.0.1:8080/"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoints{Login: DefaultLoginURL, API: "http://127.0.0.1:8080", OAPI: DefaultOAPIURL, JSAPI: DefaultJSAPIURL,
		FrameLogin: DefaultFrameLoginURL, SNSFrameLogin: DefaultSNSFrameLoginURL}
	if got != want {
		t.Errorf("withDefaults = %+v, want %+v", got, want)
	}
}
