package op

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are parsed once and read-only after init: page.html for every message
// page, inapp.html for the in-app login; they share page.html's "style".
var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// page names what a person is shown; the words live in messages.
type page string

const (
	pageUnknownClient         page = "unknown_client"
	pageRedirectURI           page = "redirect_uri"
	pageBadRequest            page = "bad_request"
	pageLoginExpired          page = "login_expired"
	pageStateInvalid          page = "state_invalid"
	pageUpstreamDown          page = "upstream_unavailable"
	pageUpstreamError         page = "upstream_error"
	pageUpstreamExpired       page = "upstream_expired"
	pageUserDisabled          page = "user_disabled"
	pageNotAllowed            page = "not_allowed"
	pageUpstreamMisconfigured page = "upstream_misconfigured"
	pageChooseConnector       page = "choose_connector"
	pageLoggedOut             page = "logged_out"
	pageLogoutRefused         page = "logout_refused"
	pageLogoutConfirm         page = "logout_confirm"
	pageServerError           page = "server_error"
	pageBusy                  page = "busy"
	pageNotFound              page = "not_found"
	pageDeviceEnter           page = "device_enter"
	pageDeviceInvalid         page = "device_invalid"
	pageDeviceConfirm         page = "device_confirm"
	pageDeviceDone            page = "device_done"
	pageDeviceDenied          page = "device_denied"
	pageConsent               page = "consent"
	pageNotRegistered         page = "not_registered"
	pageAccountAmbiguous      page = "account_ambiguous"
	actionRetry               page = "action_retry"
	actionBackToClient        page = "action_back"
	// Labels of form fields, buttons and facts.
	labelUserCode    page = "label_user_code"
	labelContinue    page = "label_continue"
	labelCancel      page = "label_cancel"
	labelAllow       page = "label_allow"
	labelDeny        page = "label_deny"
	labelApplication page = "label_application"
	labelScopes      page = "label_scopes"
	labelLogOut      page = "label_log_out"
	labelDingTalkID  page = "label_dingtalk_id"
	labelContact     page = "label_contact"
)

// scopeLabel is the message key describing a scope to the person asked for consent.
func scopeLabel(scope string) page { return page("scope_" + scope) }

type message struct{ Title, Body, Hint string }

// messages holds every sentence a person may read, in the two languages offered.
var messages = map[string]map[page]message{
	"en": {
		pageUnknownClient: {"Unknown application", "The application that sent you here is not registered with this login service.",
			"Ask the application's administrator to register it with dingbridge, then try again."},
		pageRedirectURI: {"Address not registered", "The application asked to send you back to an address it has not registered, so you were not sent there.",
			"Ask the application's administrator to register the exact redirect URI."},
		pageBadRequest: {"Invalid login request", "The login request is missing something it needs.",
			"Go back to the application and start the login again."},
		pageLoginExpired: {"This login has expired", "The login took too long or was already finished.",
			"Go back to the application and log in again."},
		pageStateInvalid: {"Login could not be verified", "The answer from DingTalk did not match a login started in this browser, or it was already used. To protect you, it was not accepted.",
			"Go back to the application and log in again in the same browser."},
		pageUpstreamDown: {"DingTalk is not answering", "DingTalk did not answer in time or is busy right now.",
			"Wait a moment and try again."},
		pageUpstreamError: {"DingTalk login failed", "DingTalk returned an error while confirming who you are.",
			"Try again. If it keeps failing, tell your administrator the details below."},
		pageUpstreamExpired: {"The DingTalk login expired", "DingTalk no longer accepts this login (it was used or took too long).",
			"Log in with DingTalk again."},
		pageUserDisabled: {"Account disabled", "Your account has been disabled on this login service.",
			"Contact your administrator if you think this is a mistake."},
		pageNotAllowed: {"Your organisation is not admitted", "DingTalk confirmed who you are, but this login service only admits members of certain organisations.",
			"Log in again and choose the required organisation, or ask your administrator for access."},
		pageUpstreamMisconfigured: {"DingTalk login is not set up correctly", "DingTalk refused this login service's own settings. This is not something you can fix.",
			"Tell your administrator; the details are in the login service's log."},
		pageChooseConnector: {"Log in", "Choose how to log in.", ""},
		pageLoggedOut:       {"You have logged out", "You can close this window.", ""},
		pageLogoutRefused: {"Logout request refused", "The application asked to log you out and send you to an address it has not registered, or sent an invalid request. You are still logged in.",
			"Ask the application's administrator to register the exact post-logout redirect URI."},
		pageLogoutConfirm: {"Log out?", "A page asked to log you out of dingbridge. You will have to log in again in every application that uses it.",
			"If you did not ask to log out, close this page: you stay logged in."},
		pageServerError: {"Something went wrong", "The login service could not complete your request.",
			"Try again later. If it keeps failing, tell your administrator."},
		pageBusy: {"The login service is busy", "Too many logins are in progress right now.",
			"Wait a moment and try again."},
		pageNotFound: {"Page not found", "This address is not a page of this login service.",
			"Log in from the application you were using."},
		pageDeviceEnter: {"Connect a device", "Enter the code your device shows.",
			"Only enter a code shown by a device you are using yourself."},
		pageDeviceInvalid: {"Code not accepted", "This code is unknown, expired or already used.",
			"Check the code on your device, or start again there."},
		pageDeviceConfirm: {"Log in on a device?", "An application on another device asks to log in as you.",
			"Continue only if you started this yourself and the code matches the one on your device: someone may be trying to get access to your account."},
		pageDeviceDone:   {"Device connected", "You are logged in on your device. You can close this window.", ""},
		pageDeviceDenied: {"Device not connected", "The device was not logged in.", "If this was a mistake, start again on the device."},
		pageConsent:      {"Allow access?", "This application asks to receive:", "You are asked once; again only if the application asks for more."},
		pageNotRegistered: {"Your DingTalk account is not bound here", "DingTalk confirmed who you are, but your DingTalk account is not bound to an account at this login service, and it admits only people who have one.",
			"Ask your administrator to add you; give them the DingTalk ID below."},
		pageAccountAmbiguous: {"Your account could not be chosen", "DingTalk confirmed who you are, but more than one account at this login service matches you, so you were not logged in to any of them.",
			"Ask your administrator to bind the right account to your DingTalk ID below."},
		labelDingTalkID:              {Title: "Your DingTalk ID (unionid)"},
		labelContact:                 {Title: "Whom to ask"},
		actionRetry:                  {Title: "Try again"},
		actionBackToClient:           {Title: "Back to the application"},
		labelUserCode:                {Title: "Code"},
		labelContinue:                {Title: "Continue"},
		labelCancel:                  {Title: "Cancel"},
		labelAllow:                   {Title: "Allow"},
		labelDeny:                    {Title: "Deny"},
		labelApplication:             {Title: "Application"},
		labelScopes:                  {Title: "It will receive"},
		labelLogOut:                  {Title: "Log out"},
		scopeLabel("openid"):         {Title: "Who you are at DingTalk (your DingTalk ids)"},
		scopeLabel("profile"):        {Title: "Your name and avatar"},
		scopeLabel("email"):          {Title: "Your email address"},
		scopeLabel("phone"):          {Title: "Your mobile number"},
		scopeLabel("groups"):         {Title: "Your organisation, position and departments"},
		scopeLabel("offline_access"): {Title: "Access while you are away (stays logged in)"},
	},
	"zh": {
		pageUnknownClient: {"未知的应用", "跳转到此处的应用没有在本登录服务中注册。",
			"请联系该应用的管理员在 dingbridge 中完成注册后再试。"},
		pageRedirectURI: {"回调地址未注册", "应用要求将您送回一个未注册的地址，为保护您的安全，没有跳转。",
			"请联系该应用的管理员注册完全一致的回调地址（redirect URI）。"},
		pageBadRequest:   {"登录请求无效", "登录请求缺少必要的参数。", "请返回应用重新登录。"},
		pageLoginExpired: {"登录已过期", "登录用时过长，或已经完成。", "请返回应用重新登录。"},
		pageStateInvalid: {"无法验证此次登录", "钉钉返回的结果与本浏览器发起的登录不匹配，或已被使用过。为保护您的账号，已拒绝。",
			"请返回应用，在同一个浏览器中重新登录。"},
		pageUpstreamDown:    {"钉钉暂时无法响应", "钉钉没有及时响应，或当前繁忙。", "请稍候再试。"},
		pageUpstreamError:   {"钉钉登录失败", "钉钉在确认您的身份时返回了错误。", "请重试。如果一直失败，请将下方信息告诉管理员。"},
		pageUpstreamExpired: {"钉钉登录已失效", "钉钉不再接受此次登录（已被使用或超时）。", "请重新使用钉钉登录。"},
		pageUserDisabled:    {"账号已停用", "您的账号已在本登录服务中停用。", "如有疑问，请联系管理员。"},
		pageNotAllowed: {"您所在的组织无权登录", "钉钉已确认您的身份，但本登录服务只允许特定组织的成员登录。",
			"请重新登录并选择所需的组织，或联系管理员开通权限。"},
		pageUpstreamMisconfigured: {"钉钉登录配置有误", "钉钉拒绝了本登录服务自身的配置，这不是您能解决的问题。",
			"请告诉管理员；详细信息在登录服务的日志中。"},
		pageChooseConnector: {"登录", "请选择登录方式。", ""},
		pageLoggedOut:       {"您已退出登录", "现在可以关闭此窗口。", ""},
		pageLogoutRefused: {"退出请求被拒绝", "应用请求为您退出登录并跳转到一个未注册的地址，或者发送了无效的请求。您仍处于登录状态。",
			"请联系该应用的管理员注册完全一致的退出后跳转地址（post-logout redirect URI）。"},
		pageLogoutConfirm: {"退出登录？", "有页面请求让您退出 dingbridge 登录。退出后，使用它的每个应用都需要重新登录。", "如果不是您本人要求退出，请关闭此页面，您将保持登录状态。"},
		pageServerError:   {"出错了", "登录服务暂时无法完成您的请求。", "请稍后再试。如果一直失败，请联系管理员。"},
		pageBusy:          {"登录服务繁忙", "当前正在进行的登录过多。", "请稍候再试。"},
		pageNotFound:      {"页面不存在", "此地址不是本登录服务的页面。", "请从您正在使用的应用重新登录。"},
		pageDeviceEnter:   {"连接设备", "请输入设备上显示的验证码。", "只输入您本人正在使用的设备上显示的验证码。"},
		pageDeviceInvalid: {"验证码无效", "此验证码不存在、已过期或已被使用。", "请核对设备上的验证码，或在设备上重新开始。"},
		pageDeviceConfirm: {"在设备上登录？", "另一台设备上的应用请求以您的身份登录。",
			"只有在您本人发起、且验证码与设备上显示的一致时才继续：否则可能有人试图获取您的账号。"},
		pageDeviceDone:   {"设备已连接", "您已在设备上登录，现在可以关闭此窗口。", ""},
		pageDeviceDenied: {"设备未连接", "设备没有登录。", "如有误操作，请在设备上重新开始。"},
		pageConsent:      {"允许访问？", "此应用请求获取：", "只会询问您一次；应用请求更多信息时会再次询问。"},
		pageNotRegistered: {"您的钉钉账号未绑定", "钉钉已确认您的身份，但您的钉钉账号没有绑定本登录服务的账号，而本服务只允许已有账号的人员登录。",
			"请联系管理员为您开通账号，并提供下方的钉钉用户标识。"},
		pageAccountAmbiguous: {"无法确定您的账号", "钉钉已确认您的身份，但本登录服务中有多个账号与您匹配，因此没有登录任何一个。",
			"请联系管理员将正确的账号绑定到下方的钉钉用户标识。"},
		labelDingTalkID:              {Title: "您的钉钉用户标识（unionid）"},
		labelContact:                 {Title: "联系人"},
		actionRetry:                  {Title: "重试"},
		actionBackToClient:           {Title: "返回应用"},
		labelUserCode:                {Title: "验证码"},
		labelContinue:                {Title: "继续"},
		labelCancel:                  {Title: "取消"},
		labelAllow:                   {Title: "允许"},
		labelDeny:                    {Title: "拒绝"},
		labelApplication:             {Title: "应用"},
		labelScopes:                  {Title: "将获取"},
		labelLogOut:                  {Title: "退出登录"},
		scopeLabel("openid"):         {Title: "您在钉钉的身份（钉钉用户标识）"},
		scopeLabel("profile"):        {Title: "您的姓名和头像"},
		scopeLabel("email"):          {Title: "您的邮箱地址"},
		scopeLabel("phone"):          {Title: "您的手机号"},
		scopeLabel("groups"):         {Title: "您的组织、职位和部门"},
		scopeLabel("offline_access"): {Title: "在您离开时继续访问（保持登录）"},
	},
}

var languageMatcher = language.NewMatcher([]language.Tag{language.English, language.SimplifiedChinese})

// pageLanguage picks zh or en: from the login's ui_locales (what the app asked
// for, in its order) if one of them is offered, else from Accept-Language;
// English when nothing matches. uiLocales are the stored request's, or nil,
// when the ui_locales parameter of r itself (at /authorize) is used.
func pageLanguage(r *http.Request, uiLocales []string) string {
	if uiLocales == nil {
		uiLocales = strings.Fields(r.FormValue("ui_locales"))
	}
	tag, _ := language.MatchStrings(languageMatcher, append(slices.Clone(uiLocales), r.Header.Get("Accept-Language"))...)
	if base, _ := tag.Base(); base.String() == "zh" {
		return "zh"
	}
	return "en"
}

type link struct {
	Label, URL string
	Primary    bool
}

type pageData struct {
	Lang              string
	Title, Body, Hint string
	Detail            string
	Facts             []fact
	ListTitle         string
	List              []string
	Form              *formData
	Actions, Choices  []link
}

type fact struct{ Label, Value string }

type formData struct {
	Action  string
	Hidden  []hiddenField
	Input   *inputField
	Buttons []button
}

type hiddenField struct{ Name, Value string }

type inputField struct{ Name, Label, Value string }

type button struct {
	Name, Value, Label string
	Primary            bool
}

// pageView is one page about to be rendered.
type pageView struct {
	page      page
	status    int
	detail    string // safe, technical: an error code or DingTalk request id
	facts     []factView
	list      []page // shown as a bullet list, under listTitle if set
	listTitle page
	// locales are the login's ui_locales, when the page belongs to one.
	locales []string
	// formTargets are the origins the page's form may lead on to, beyond this
	// server (contentSecurityPolicy).
	formTargets []string
	form        *formView
	actions     []action
	choices     []link
}

type factView struct {
	label page
	value string
}

// formView is a form posting back to us; labels are looked up in messages.
type formView struct {
	action  string
	hidden  []hiddenField
	input   *inputView
	buttons []buttonView
}

type inputView struct {
	name  string
	label page
	value string
}

type buttonView struct {
	name, value string
	label       page
}

// action is a button on a page: its label is looked up in messages.
type action struct {
	label page
	url   string
}

// render writes a page in the person's language. Pages are never cached: they
// describe one request.
func (p *Provider) render(w http.ResponseWriter, r *http.Request, v *pageView) {
	lang := pageLanguage(r, v.locales)
	m := messages[lang][v.page]
	data := pageData{Lang: lang, Title: m.Title, Body: m.Body, Hint: m.Hint, Detail: v.detail, Choices: v.choices}
	if lang == "zh" {
		data.Lang = "zh-CN"
	}
	label := func(key page) string {
		if m, ok := messages[lang][key]; ok {
			return m.Title
		}
		return strings.TrimPrefix(string(key), "scope_") // a scope we have no words for

	}
	for i, a := range v.actions {
		if a.url == "" {
			continue // nowhere to go: a device flow has no application page to return to
		}
		data.Actions = append(data.Actions, link{Label: label(a.label), URL: a.url, Primary: i == 0})
	}
	for _, f := range v.facts {
		data.Facts = append(data.Facts, fact{Label: label(f.label), Value: f.value})
	}
	if v.listTitle != "" {
		data.ListTitle = label(v.listTitle)
	}
	for _, item := range v.list {
		data.List = append(data.List, label(item))
	}
	if f := v.form; f != nil {
		data.Form = &formData{Action: f.action, Hidden: f.hidden}
		if f.input != nil {
			data.Form.Input = &inputField{Name: f.input.name, Label: label(f.input.label), Value: f.input.value}
		}
		for i, b := range f.buttons {
			data.Form.Buttons = append(data.Form.Buttons, button{Name: b.name, Value: b.value, Label: label(b.label), Primary: i == 0})
		}
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "page.html", data); err != nil {
		p.log.ErrorContext(r.Context(), "render page", "page", string(v.page), "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Language", data.Lang)
	if len(v.formTargets) > 0 {
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy("", v.formTargets))
	}
	if v.status == 0 {
		v.status = http.StatusOK
	}
	w.WriteHeader(v.status)
	_, _ = w.Write(buf.Bytes())
}
