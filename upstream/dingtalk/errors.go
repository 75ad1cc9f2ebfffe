package dingtalk

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dingbridge/dingbridge/upstream"
)

// APIError is an error answer from api.dingtalk.com: a non-2xx status with a body like
// {"code":"invalidParameter.authCode.notFound","message":"不合法的临时授权码","requestid":"…"}.
// A body that is not a DingTalk error (a proxy's HTML page, the gateway's per-IP ban)
// still becomes an APIError, with an Excerpt instead of a Code.
//
// errors.Is(err, upstream.ErrUnavailable), upstream.ErrLoginExpired and
// upstream.ErrMisconfigured work on it (see Unwrap).
type APIError struct {
	HTTPStatus int
	Code       string
	Message    string
	// RequestID is what DingTalk support asks for; from the body's "requestid" or the
	// x-acs-request-id header.
	RequestID string
	// RequiredScopes is accessdenieddetail.requiredScopes: permissions the app lacks.
	RequiredScopes []string
	// Excerpt is the start of a body that was not a DingTalk error, made safe to print.
	Excerpt string
	// IPThrottled: the body was the gateway's per-IP ban ({"punish":"deny","wait":5,…}),
	// which DingTalk sends instead of any API answer after too many requests from one IP.
	IPThrottled bool
}

// api.dingtalk.com codes the connector acts on.
const (
	codeAuthCodeNotFound       = "invalidParameter.authCode.notFound"
	codePermissionDenied       = "Forbidden.AccessDenied.AccessTokenPermissionDenied"
	codeIPNotInWhiteList       = "Forbidden.AccessDenied.IpNotInWhiteList"
	codeRateLimitPrefixPerSec  = "Forbidden.AccessDenied.Qps"
	codeRateLimitPrefixPerMin  = "Forbidden.AccessDenied.Qpm"
	codeMonthlyQuota           = "Forbidden.AccessDenied.ApiCountLimitForOrg"
	defaultRequiredPermissions = "Contact.User.Read"
)

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	switch {
	case e.Code != "":
		fmt.Fprintf(&b, " %s", e.Code)
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
	case e.IPThrottled:
		b.WriteString(": DingTalk's gateway is throttling this server's IP address")
	}
	if e.Excerpt != "" {
		fmt.Fprintf(&b, ", body %q", e.Excerpt)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (requestid %s)", e.RequestID)
	}
	if hint := e.operatorHint(); hint != "" {
		b.WriteString("; ")
		b.WriteString(hint)
	}
	return b.String()
}

// Unwrap maps the answer onto the sentinel the server acts on, or nil when the error
// is none of transient, an expired login or a configuration the operator must fix
// (a bug, or a refusal DingTalk does not document).
func (e *APIError) Unwrap() error {
	switch {
	case e.IPThrottled,
		e.HTTPStatus == http.StatusTooManyRequests,
		e.HTTPStatus >= 500,
		strings.HasPrefix(e.Code, codeRateLimitPrefixPerSec),
		strings.HasPrefix(e.Code, codeRateLimitPrefixPerMin):
		return upstream.ErrUnavailable
	case e.Code == codeAuthCodeNotFound:
		return upstream.ErrLoginExpired
	case e.Code == codePermissionDenied, e.Code == codeIPNotInWhiteList, e.Code == codeMonthlyQuota:
		return upstream.ErrMisconfigured
	}
	return nil
}

// operatorHint says what the operator must change when retrying cannot help.
func (e *APIError) operatorHint() string {
	switch e.Code {
	case codePermissionDenied:
		perms := strings.Join(e.RequiredScopes, ", ")
		if perms == "" {
			perms = defaultRequiredPermissions
		}
		return "the DingTalk app lacks a permission: grant " + perms +
			" (通讯录个人信息读权限) to the app in the DingTalk developer console, then publish the app"
	case codeIPNotInWhiteList:
		return "add this server's outgoing IP address to the DingTalk app's server IP whitelist"
	case codeMonthlyQuota:
		return monthlyQuotaHint
	}
	if e.IPThrottled {
		return ipBanHint
	}
	return ""
}

// Hints for the operator when DingTalk's limits, not a person, stop logins.
const (
	monthlyQuotaHint = "the organisation has used up its monthly DingTalk API quota (90020; DingTalk counts calls per calendar month, " +
		"see 开发者后台 → 资源管理 → 用量明细): logins need DingTalk's API until the month ends, unless the DingTalk plan is upgraded " +
		"(专业版/专属版) or an add-on pack (增购包) is bought, which takes effect at once"
	ipBanHint = "DingTalk's gateway has blocked this server's IP address for 5 minutes (more than 10,000 calls from one address " +
		"in 20 seconds): logins fail until the block ends; find what calls DingTalk so often from this address (a loop, " +
		"or other services sharing it) — retrying only prolongs it"
)

// OAPIError is an error answer from oapi.dingtalk.com, which says HTTP 200 and puts a
// non-zero errcode in the body. The gateway wraps many errors as errcode 88 with the
// real code, a string, in sub_code:
// {"errcode":88,"sub_code":"40014","sub_msg":"不合法的access_token","errmsg":"…","request_id":"…"}.
//
// errors.Is(err, upstream.ErrUnavailable), upstream.ErrLoginExpired and
// upstream.ErrMisconfigured work on it (see Unwrap).
type OAPIError struct {
	ErrCode   int
	ErrMsg    string
	SubCode   string
	SubMsg    string
	RequestID string
	// Permission is what the called API needs (e.g. qyapi_get_member), named in the
	// operator's hint when DingTalk says the app lacks a permission.
	Permission string
}

// oapi errcodes the connectors act on.
const (
	oapiGatewayWrapped  = 88
	oapiBusy            = -1
	oapiBadAppToken     = 40014 // 不合法的access_token
	oapiAppTokenExpired = 42001 // access_token超时
	oapiAuthCodeGone    = 40078 // 不存在的临时授权码: unknown or used temporary code
	oapiBadAppKey       = 40089 // 不合法的corpid或corpsecret, at gettoken
	oapiNeedsAuth       = 43007 // 需要授权: the app lacks a permission
	oapiNoPermission    = 60011 // 管理员权限不足 / 没有调用该接口的权限
	oapiIPNotAllowed    = 60020
	oapiMonthlyQuota    = 90020 // 您的企业本月api调用量已超过限制
	oapiUserNotFound    = 60121 // 找不到该用户: not in the organisation
	// sns/getuserinfo_bycode refusing the request's signature (shared/dingtalk-api.md §3.4).
	oapiSNSBadTimestamp = 853001
	oapiSNSClockSkew    = 853002
	oapiSNSBadAccessKey = 853003
	oapiSNSBadSignature = 853004
)

// isOAPIRateLimited reports the throttling codes: platform-wide (90002), per corp per
// minute (90005), per app per minute (90006), per app per corp per second (90018),
// third-party app per authorised corp (90019), and the old table's 45009.
func isOAPIRateLimited(code int) bool {
	switch code {
	case 90002, 90005, 90006, 90018, 90019, 45009:
		return true
	}
	return false
}

func (e *OAPIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "errcode %d", e.ErrCode)
	if e.ErrMsg != "" {
		fmt.Fprintf(&b, ": %s", e.ErrMsg)
	}
	if e.SubCode != "" {
		fmt.Fprintf(&b, " (sub_code %s: %s)", e.SubCode, e.SubMsg)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request_id %s)", e.RequestID)
	}
	if hint := e.operatorHint(); hint != "" {
		b.WriteString("; ")
		b.WriteString(hint)
	}
	return b.String()
}

// operatorHint says what the operator must change when retrying cannot help.
func (e *OAPIError) operatorHint() string {
	switch e.code() {
	case oapiIPNotAllowed:
		return "add this server's outgoing IP address to the DingTalk app's server IP whitelist"
	case oapiNoPermission, oapiNeedsAuth:
		if e.Permission == "" {
			return "the DingTalk app lacks a permission for this API: grant it in the DingTalk developer console, then publish the app"
		}
		return "the DingTalk app lacks the " + e.Permission + " permission: grant it in the DingTalk developer console, then publish the app"
	case oapiBadAppKey:
		return "DingTalk refused the app key or secret: check CorpAppKey and CorpAppSecret (in oauth2 mode they default to ClientID and ClientSecret)"
	case oapiSNSBadTimestamp:
		return "DingTalk refused the request's timestamp: check this server's clock"
	case oapiSNSClockSkew:
		return "this server's clock is more than a minute off DingTalk's: fix its time synchronisation (NTP)"
	case oapiSNSBadAccessKey:
		return "DingTalk knows no app with this appid: check ClientID (the legacy login app's appid)"
	case oapiSNSBadSignature:
		return "DingTalk refused the signature: ClientSecret is not the legacy login app's appSecret"
	case oapiMonthlyQuota:
		return monthlyQuotaHint
	}
	return ""
}

// code is the errcode that says what happened: sub_code when the gateway wrapped it.
func (e *OAPIError) code() int {
	if e.ErrCode == oapiGatewayWrapped {
		if sub, err := strconv.Atoi(e.SubCode); err == nil {
			return sub
		}
	}
	return e.ErrCode
}

// Unwrap maps the errcode onto the sentinel the server acts on, or nil.
func (e *OAPIError) Unwrap() error {
	switch code := e.code(); {
	case code == oapiBusy || isOAPIRateLimited(code):
		return upstream.ErrUnavailable
	case code == oapiAuthCodeGone:
		return upstream.ErrLoginExpired
	case code == oapiIPNotAllowed, code == oapiNoPermission, code == oapiNeedsAuth, code == oapiBadAppKey, code == oapiMonthlyQuota,
		code >= oapiSNSBadTimestamp && code <= oapiSNSBadSignature:
		return upstream.ErrMisconfigured
	}
	return nil
}

// appTokenRejected reports an answer saying the app access token is invalid or expired.
func appTokenRejected(err error) bool {
	var oapiErr *OAPIError
	if !errors.As(err, &oapiErr) {
		return false
	}
	code := oapiErr.code()
	return code == oapiBadAppToken || code == oapiAppTokenExpired
}

// hasOAPICode reports an *OAPIError in err's chain with this code (sub_code when wrapped).
func hasOAPICode(err error, code int) bool {
	var oapiErr *OAPIError
	return errors.As(err, &oapiErr) && oapiErr.code() == code
}

// rawResponse is one HTTP answer, read in full (up to maxResponseBytes).
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// decodeAPI turns an api.dingtalk.com answer into out (2xx) or an *APIError.
// sensitive values (secret, code, tokens) are cut from anything DingTalk echoes back.
func decodeAPI(raw rawResponse, out any, sensitive []string) error {
	if raw.Status < 200 || raw.Status > 299 || isIPThrottle(raw.Body) {
		return newAPIError(raw, sensitive)
	}
	if err := json.Unmarshal(raw.Body, out); err != nil {
		return fmt.Errorf("malformed JSON in HTTP %d answer%s: %w",
			raw.Status, requestIDSuffix("requestid", raw.Header.Get("x-acs-request-id")), err)
	}
	return nil
}

func newAPIError(raw rawResponse, sensitive []string) *APIError {
	e := &APIError{HTTPStatus: raw.Status, RequestID: safeText(raw.Header.Get("x-acs-request-id"), 80)}
	var body struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"requestid"`
		Detail    struct {
			RequiredScopes []string `json:"requiredScopes"`
		} `json:"accessdenieddetail"`
	}
	if err := json.Unmarshal(raw.Body, &body); err == nil && body.Code != "" {
		e.Code = safeText(scrub(body.Code, sensitive), 120)
		e.Message = safeText(scrub(body.Message, sensitive), 200)
		if body.RequestID != "" {
			e.RequestID = safeText(body.RequestID, 80)
		}
		for _, s := range body.Detail.RequiredScopes {
			e.RequiredScopes = append(e.RequiredScopes, safeText(scrub(s, sensitive), 80))
		}
		return e
	}
	e.IPThrottled = isIPThrottle(raw.Body)
	e.Excerpt = safeText(scrub(string(raw.Body), sensitive), 120)
	return e
}

// decodeOAPI turns an oapi.dingtalk.com answer into out (errcode 0) or an *OAPIError.
// Non-200 statuses come from proxies and the gateway, not the API: they become an *APIError.
func decodeOAPI(raw rawResponse, out any, sensitive []string) error {
	if raw.Status != http.StatusOK || isIPThrottle(raw.Body) {
		return newAPIError(raw, sensitive)
	}
	var envelope struct {
		ErrCode   *int   `json:"errcode"`
		ErrMsg    string `json:"errmsg"`
		SubCode   string `json:"sub_code"`
		SubMsg    string `json:"sub_msg"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(raw.Body, &envelope); err != nil {
		return fmt.Errorf("malformed JSON in HTTP %d answer: %w", raw.Status, err)
	}
	if envelope.ErrCode == nil {
		return fmt.Errorf("answer has no errcode%s", requestIDSuffix("request_id", envelope.RequestID))
	}
	if *envelope.ErrCode != 0 {
		return &OAPIError{
			ErrCode:   *envelope.ErrCode,
			ErrMsg:    safeText(scrub(envelope.ErrMsg, sensitive), 200),
			SubCode:   safeText(scrub(envelope.SubCode, sensitive), 40),
			SubMsg:    safeText(scrub(envelope.SubMsg, sensitive), 200),
			RequestID: safeText(envelope.RequestID, 80),
		}
	}
	if err := json.Unmarshal(raw.Body, out); err != nil {
		return fmt.Errorf("malformed JSON in answer%s: %w", requestIDSuffix("request_id", envelope.RequestID), err)
	}
	return nil
}

// isIPThrottle recognises the gateway's per-IP ban, which replaces any API answer.
func isIPThrottle(body []byte) bool {
	var ban struct {
		Punish string `json:"punish"`
	}
	return json.Unmarshal(body, &ban) == nil && ban.Punish != ""
}

func requestIDSuffix(name, id string) string {
	if id == "" {
		return ""
	}
	return " (" + name + " " + safeText(id, 80) + ")"
}

// scrub removes secrets the upstream might echo back (a message quoting the request).
func scrub(s string, sensitive []string) string {
	for _, secret := range sensitive {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// safeText makes upstream text fit for an error string or a log line: valid UTF-8,
// no control characters, whitespace collapsed, at most maxRunes runes.
func safeText(s string, maxRunes int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " ")
	if utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	return string([]rune(s)[:maxRunes]) + "…"
}
