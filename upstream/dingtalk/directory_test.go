package dingtalk_test

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

func TestOAuth2LoginReadsTheDirectory(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, inCorp)
	got, err := e.callback(e.login(zhangsan().UnionID))
	if err != nil {
		t.Fatalf("HandleCallback: %v", err)
	}
	want := upstream.Identity{
		UnionID: zhangsan().UnionID, OpenID: zhangsan().OpenID, UserID: "zhangsan", CorpID: dingtalktest.DemoCorpID,
		Nick: "张三", Email: "zhangsan@example.com",
		Title: "后端工程师", JobNumber: "A0001", OrgEmail: "zhangsan@corp.example.com",
		DirectoryEmail: "zhangsan@example.com", Groups: []string{"后端组"}, Method: upstream.MethodOAuth2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("identity = %+v\nwant       %+v", got, want)
	}
}

func TestOutsider(t *testing.T) {
	t.Run("refused with RequireMembership", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, inCorp, func(c *dingtalk.Config) { c.RequireMembership = true })
		_, err := e.callback(e.login(wangwu().UnionID))
		assertSentinel(t, err, upstream.ErrNotAllowed)
		var policy *upstream.PolicyError
		if !errors.As(err, &policy) {
			t.Fatalf("err = %v, want a *PolicyError", err)
		}
		want := upstream.PolicyError{Reason: upstream.NotMember, Allowed: []string{dingtalktest.DemoCorpID}}
		if !reflect.DeepEqual(*policy, want) {
			t.Errorf("policy error = %+v, want %+v", *policy, want)
		}
	})
	t.Run("in sns mode too", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, snsMode, withCorpApp, func(c *dingtalk.Config) { c.RequireMembership = true })
		_, err := e.callback(e.login(wangwu().UnionID))
		var policy *upstream.PolicyError
		if !errors.As(err, &policy) || policy.Reason != upstream.NotMember {
			t.Fatalf("err = %v, want a PolicyError NotMember", err)
		}
	})
	t.Run("let in without corp fields otherwise", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, inCorp)
		got, err := e.callback(e.login(wangwu().UnionID))
		if err != nil {
			t.Fatalf("HandleCallback: %v", err)
		}
		want := upstream.Identity{UnionID: wangwu().UnionID, OpenID: wangwu().OpenID, Nick: "王五", Method: upstream.MethodOAuth2}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("identity = %+v\nwant       %+v (Groups nil)", got, want)
		}
		if n := e.fake.Calls(dingtalktest.APIUserGet); n != 0 {
			t.Errorf("user/get called %d times for an outsider", n)
		}
	})
	t.Run("an external contact is no member", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, inCorp, func(c *dingtalk.Config) { c.RequireMembership = true })
		r := e.login(zhangsan().UnionID)
		e.fake.Fail(dingtalktest.APIGetByUnionID, dingtalktest.Failure{
			Body: `{"errcode":0,"errmsg":"ok","result":{"contact_type":1,"userid":"ext01"},"request_id":"r1"}`})
		_, err := e.callback(r)
		var policy *upstream.PolicyError
		if !errors.As(err, &policy) || policy.Reason != upstream.NotMember {
			t.Fatalf("err = %v, want a PolicyError NotMember", err)
		}
	})
}

func TestGroupFormats(t *testing.T) {
	// A member of the root department too: the organisation itself.
	users := dingtalktest.DemoUsers()
	users[1].DeptIDs = []int64{3, 4, 1}
	tests := []struct {
		format string
		want   []string
	}{
		{"", []string{"后端组", "市场部", "示例科技有限公司"}},
		{dingtalk.GroupsName, []string{"后端组", "市场部", "示例科技有限公司"}},
		{dingtalk.GroupsID, []string{"3", "4", "1"}},
		{dingtalk.GroupsPath, []string{"研发部/后端组", "市场部", "示例科技有限公司"}},
	}
	for _, tt := range tests {
		t.Run("format "+tt.format, func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{Users: users}, inCorp, func(c *dingtalk.Config) { c.Groups = tt.format })
			id, err := e.callback(e.login(users[1].UnionID))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(id.Groups, tt.want) {
				t.Errorf("groups = %q, want %q", id.Groups, tt.want)
			}
			if tt.format == dingtalk.GroupsID {
				if n := e.fake.Calls(dingtalktest.APIDepartmentGet); n != 0 {
					t.Errorf("department/get called %d times for ids", n)
				}
			}
		})
	}
	t.Run("no department", func(t *testing.T) {
		users := dingtalktest.DemoUsers()
		users[0].DeptIDs = nil
		e := newEnv(t, dingtalktest.Config{Users: users}, inCorp)
		id, err := e.callback(e.login(users[0].UnionID))
		if err != nil {
			t.Fatal(err)
		}
		if id.Groups == nil || len(id.Groups) != 0 {
			t.Errorf("groups = %#v, want empty but not nil (the directory was read)", id.Groups)
		}
	})
}

func TestDepartmentNamesAreCached(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	e := newEnv(t, dingtalktest.Config{Now: clock.Now}, inCorp, func(c *dingtalk.Config) {
		c.Now = clock.Now
		c.Groups = dingtalk.GroupsPath
		c.DirectoryCacheTTL = time.Minute
	})
	login := func() []string {
		t.Helper()
		id, err := e.callback(e.login(zhangsan().UnionID))
		if err != nil {
			t.Fatal(err)
		}
		return id.Groups
	}
	calls := func() (userGet, deptGet int) {
		return e.fake.Calls(dingtalktest.APIUserGet), e.fake.Calls(dingtalktest.APIDepartmentGet)
	}

	if got := login(); !slices.Equal(got, []string{"研发部/后端组"}) {
		t.Fatalf("groups = %q", got)
	}
	userGet0, deptGet0 := calls()
	if deptGet0 != 2 {
		t.Errorf("department/get called %d times for a two-level path, want 2", deptGet0)
	}

	e.fake.RenameDepartment(dingtalktest.DemoCorpID, 2, "工程部")
	clock.Advance(59 * time.Second)
	if got := login(); !slices.Equal(got, []string{"研发部/后端组"}) {
		t.Errorf("within the TTL: groups = %q, want the cached names", got)
	}
	if userGet, deptGet := calls(); userGet != userGet0+1 || deptGet != deptGet0 {
		t.Errorf("repeat login: user/get +%d, department/get +%d; want +1 and +0", userGet-userGet0, deptGet-deptGet0)
	}

	clock.Advance(2 * time.Second)
	if got := login(); !slices.Equal(got, []string{"工程部/后端组"}) {
		t.Errorf("after the TTL: groups = %q, want the new name", got)
	}
}

func TestDirectoryPermissionErrors(t *testing.T) {
	tests := []struct {
		name    string
		api     string
		failure dingtalktest.Failure
		want    string
	}{
		{"getbyunionid 60011", dingtalktest.APIGetByUnionID, dingtalktest.Failure{ErrCode: 60011, ErrMsg: "没有调用该接口的权限"}, "qyapi_get_member"},
		{"user/get 88/60011", dingtalktest.APIUserGet, dingtalktest.Failure{ErrCode: 88, SubCode: "60011", SubMsg: "没有调用该接口的权限"}, "qyapi_get_member"},
		{"user/get 43007", dingtalktest.APIUserGet, dingtalktest.Failure{ErrCode: 43007, ErrMsg: "需要授权"}, "qyapi_get_member"},
		{"department/get 60011", dingtalktest.APIDepartmentGet, dingtalktest.Failure{ErrCode: 60011, ErrMsg: "没有调用该接口的权限"}, "qyapi_get_department_list"},
		{"ip whitelist", dingtalktest.APIGetByUnionID, dingtalktest.Failure{ErrCode: 60020}, "whitelist"},
		{"ip whitelist at gettoken", dingtalktest.APIGetToken, dingtalktest.Failure{ErrCode: 88, SubCode: "60020"}, "whitelist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{}, inCorp)
			r := e.login(zhangsan().UnionID)
			e.fake.Fail(tt.api, tt.failure)
			_, err := e.callback(r)
			assertSentinel(t, err, upstream.ErrMisconfigured)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestAllowedOrganisations(t *testing.T) {
	t.Run("another organisation is refused before any directory call", func(t *testing.T) {
		allowed := []string{"dingallowedcorp0001", "dingallowedcorp0002"}
		e := newEnv(t, dingtalktest.Config{}, func(c *dingtalk.Config) { c.AllowedCorpIDs = allowed })
		_, err := e.callback(e.login(zhangsan().UnionID))
		assertSentinel(t, err, upstream.ErrNotAllowed)
		var policy *upstream.PolicyError
		if !errors.As(err, &policy) {
			t.Fatalf("err = %v, want a *PolicyError", err)
		}
		want := upstream.PolicyError{Reason: upstream.WrongOrganisation, CorpID: dingtalktest.DemoCorpID, Allowed: allowed}
		if !reflect.DeepEqual(*policy, want) {
			t.Errorf("policy error = %+v, want %+v", *policy, want)
		}
		for _, api := range []string{dingtalktest.APIUsersMe, dingtalktest.APIGetToken, dingtalktest.APIGetByUnionID} {
			if n := e.fake.Calls(api); n != 0 {
				t.Errorf("%s called %d times for a refused organisation", api, n)
			}
		}
	})
	t.Run("a person who picks no organisation is refused", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, func(c *dingtalk.Config) { c.AllowedCorpIDs = []string{dingtalktest.DemoCorpID} })
		_, err := e.callback(e.login(wangwu().UnionID))
		var policy *upstream.PolicyError
		if !errors.As(err, &policy) || policy.Reason != upstream.WrongOrganisation || policy.CorpID != "" {
			t.Errorf("err = %v, want a PolicyError WrongOrganisation without CorpID", err)
		}
	})
	t.Run("an allowed organisation logs in", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, inCorp, func(c *dingtalk.Config) {
			c.AllowedCorpIDs = []string{"dingothercorp", dingtalktest.DemoCorpID}
		})
		id, err := e.callback(e.login(lisi().UnionID))
		if err != nil || id.CorpID != dingtalktest.DemoCorpID || id.UserID != "lisi" {
			t.Errorf("HandleCallback = %+v, %v", id, err)
		}
	})
}

func TestAllowedCorpIDsAddCorpidToTheScope(t *testing.T) {
	for scope, want := range map[string]string{
		"":                         "openid corpid",
		"openid Contact.User.Read": "openid Contact.User.Read corpid",
		"corpid openid":            "corpid openid",
	} {
		e := newEnv(t, dingtalktest.Config{}, func(c *dingtalk.Config) {
			c.Scope = scope
			c.AllowedCorpIDs = []string{dingtalktest.DemoCorpID}
		})
		raw, err := e.conn.LoginURL(testState, testCallback)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(raw)
		if got := u.Query().Get("scope"); got != want {
			t.Errorf("Scope %q: login URL asks for %q, want %q", scope, got, want)
		}
	}
}

func TestNewChecksTheCorpSettings(t *testing.T) {
	valid := dingtalk.Config{ClientID: testClientID, ClientSecret: testSecret}
	tests := []struct {
		name   string
		adjust func(*dingtalk.Config)
		field  string
	}{
		{"unknown mode", func(c *dingtalk.Config) { c.Mode = "qr" }, "Mode"},
		{"sns with allowed organisations", func(c *dingtalk.Config) {
			snsMode(c)
			c.AllowedCorpIDs = []string{dingtalktest.DemoCorpID}
		}, "AllowedCorpIDs"},
		{"sns with a scope", func(c *dingtalk.Config) { snsMode(c); c.Scope = "openid" }, "Scope"},
		{"sns organisation without corp app", func(c *dingtalk.Config) { snsMode(c); c.CorpID = dingtalktest.DemoCorpID }, "CorpAppKey"},
		{"corp app key without secret", func(c *dingtalk.Config) { inCorp(c); c.CorpAppKey = corpAppKey }, "CorpAppSecret"},
		{"corp app secret without key", func(c *dingtalk.Config) { inCorp(c); c.CorpAppSecret = corpAppSecret }, "CorpAppKey"},
		{"corp app without organisation", func(c *dingtalk.Config) { c.CorpAppKey, c.CorpAppSecret = corpAppKey, corpAppSecret }, "CorpID"},
		{"membership without organisation", func(c *dingtalk.Config) { c.RequireMembership = true }, "RequireMembership"},
		{"in-app organisation not allowed", func(c *dingtalk.Config) {
			inCorp(c)
			c.AllowedCorpIDs = []string{"dingothercorp"}
		}, "AllowedCorpIDs"},
		{"empty allowed organisation", func(c *dingtalk.Config) { c.AllowedCorpIDs = []string{" "} }, "AllowedCorpIDs"},
		{"unknown groups format", func(c *dingtalk.Config) { inCorp(c); c.Groups = "names" }, "Groups"},
		{"negative cache TTL", func(c *dingtalk.Config) { inCorp(c); c.DirectoryCacheTTL = -time.Minute }, "DirectoryCacheTTL"},
		{"relative script URL", func(c *dingtalk.Config) { c.Endpoints.JSAPI = "dingtalk.open.js" }, "Endpoints.JSAPI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.adjust(&cfg)
			_, err := dingtalk.New(cfg)
			if err == nil {
				t.Fatal("New accepted the config")
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
			for _, secret := range []string{testSecret, snsAppSecret, corpAppSecret} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

// The app token travels in the query string; an error from the transport, which
// quotes the URL, must not carry it on, nor the app secret of gettoken's URL.
func TestTransportErrorsLeakNoTokenOrSecret(t *testing.T) {
	for _, failing := range []string{"/gettoken", "/topapi/"} {
		t.Run(failing, func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{}, inCorp)
			e.wire.next = failOn{failing, e.wire.next}
			_, err := e.inApp(context.Background(), zhangsan().UnionID) // checks the leaks
			assertSentinel(t, err, upstream.ErrUnavailable)
			if len(e.wire.seen()) == 0 {
				t.Error("no secret crossed the wire; the test tests nothing")
			}
			for _, s := range []string{"access_token", "appsecret", "127.0.0.1"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q quotes the URL (%s)", err, s)
				}
			}
		})
	}
}

// The re-check after login asks the same directory the login did: a member is
// confirmed, a member who left or is inactive is a PolicyError saying which,
// and a busy DingTalk is an error that is not one (the server keeps its last answer).
func TestCheckMembership(t *testing.T) {
	users := dingtalktest.DemoUsers()
	users[1].Inactive = true // 李四
	e := newEnv(t, dingtalktest.Config{Users: users}, inCorp, func(c *dingtalk.Config) { c.RequireMembership = true })
	if !e.conn.RequiresMembership() {
		t.Fatal("RequiresMembership() = false with RequireMembership set")
	}
	if err := e.conn.CheckMembership(context.Background(), zhangsan().UnionID); err != nil {
		t.Errorf("a member: %v", err)
	}
	reasonOf := func(err error) upstream.PolicyReason {
		var pe *upstream.PolicyError
		if !errors.As(err, &pe) || !errors.Is(err, upstream.ErrNotAllowed) {
			t.Fatalf("error %v is not a PolicyError matching ErrNotAllowed", err)
		}
		return pe.Reason
	}
	if r := reasonOf(e.conn.CheckMembership(context.Background(), lisi().UnionID)); r != upstream.Inactive {
		t.Errorf("an inactive member: reason %s, want %s", r, upstream.Inactive)
	}
	e.fake.RemoveMember(zhangsan().UnionID)
	if r := reasonOf(e.conn.CheckMembership(context.Background(), zhangsan().UnionID)); r != upstream.NotMember {
		t.Errorf("a member removed from the directory: reason %s, want %s", r, upstream.NotMember)
	}
	e.fake.Fail(dingtalktest.APIGetByUnionID, dingtalktest.Failure{ErrCode: -1})
	err := e.conn.CheckMembership(context.Background(), users[0].UnionID)
	if err == nil || errors.Is(err, upstream.ErrNotAllowed) || !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("DingTalk busy: %v, want ErrUnavailable and not ErrNotAllowed", err)
	}
}
