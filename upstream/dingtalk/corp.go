package dingtalk

import (
	"context"
	"errors"
	"fmt"
)

// The corp APIs: an internal app of one organisation reading the organisation's
// directory with its app access token (shared/dingtalk-api.md §4). The Client's
// ClientID and ClientSecret are that app's AppKey and AppSecret.

// Permissions the corp APIs need, named in the hint when the app lacks one.
const (
	permissionMember     = "qyapi_get_member (通讯录成员信息读权限)"
	permissionDepartment = "qyapi_get_department_list (通讯录部门信息读权限)"
)

// ErrNotInDirectory: the organisation's directory does not list the person (errcode
// 60121), or lists them as an external contact.
var ErrNotInDirectory = errors.New("not in the organisation's directory")

// InAppUser is who an in-app login code stands for (POST topapi/v2/user/getuserinfo).
type InAppUser struct {
	UserID  string // the organisation's staff id
	UnionID string
	Name    string // the real name in the organisation
}

// InAppUser exchanges the one-time code the DingTalk client's JSAPI (requestAuthCode)
// gave a page inside the client. A used, expired or unknown code gives an error
// matching upstream.ErrLoginExpired.
func (c *Client) InAppUser(ctx context.Context, code string) (InAppUser, error) {
	const path = "/topapi/v2/user/getuserinfo"
	if code == "" {
		return InAppUser{}, fmt.Errorf("POST %s: empty code", path)
	}
	var answer struct {
		Result struct {
			UserID  string `json:"userid"`
			UnionID string `json:"unionid"`
			Name    string `json:"name"`
		} `json:"result"`
		RequestID string `json:"request_id"`
	}
	request := map[string]string{"code": code}
	if err := c.callTopAPI(ctx, apiGetUserInfo, path, "", request, &answer, code); err != nil {
		return InAppUser{}, err
	}
	if answer.Result.UserID == "" || answer.Result.UnionID == "" {
		return InAppUser{}, fmt.Errorf("POST %s: answer lacks userid or unionid%s", path, requestIDSuffix("request_id", answer.RequestID))
	}
	return InAppUser(answer.Result), nil
}

// UserIDByUnionID finds the person's staff id (POST topapi/user/getbyunionid).
// Someone the directory does not list, or lists as an external contact, gives an
// error matching ErrNotInDirectory.
func (c *Client) UserIDByUnionID(ctx context.Context, unionID string) (string, error) {
	const path = "/topapi/user/getbyunionid"
	var answer struct {
		Result struct {
			ContactType int    `json:"contact_type"` // 0 staff, 1 external contact
			UserID      string `json:"userid"`
		} `json:"result"`
		RequestID string `json:"request_id"`
	}
	err := c.callTopAPI(ctx, apiGetByUnionID, path, permissionMember, map[string]string{"unionid": unionID}, &answer)
	switch {
	case hasOAPICode(err, oapiUserNotFound):
		return "", fmt.Errorf("%w: %w", ErrNotInDirectory, err)
	case err != nil:
		return "", err
	case answer.Result.ContactType == 1:
		return "", fmt.Errorf("%w: POST %s: an external contact%s", ErrNotInDirectory, path, requestIDSuffix("request_id", answer.RequestID))
	case answer.Result.UserID == "":
		return "", fmt.Errorf("POST %s: answer has no userid%s", path, requestIDSuffix("request_id", answer.RequestID))
	}
	return answer.Result.UserID, nil
}

// DirectoryUser is a person as the organisation's directory lists them (POST
// topapi/v2/user/get). Fields the app may not read are empty.
type DirectoryUser struct {
	UserID    string
	UnionID   string
	Name      string
	AvatarURL string
	Mobile    string
	StateCode string
	Email     string // set by the organisation; DingTalk-provided addresses are not returned
	OrgEmail  string
	Title     string
	JobNumber string
	DeptIDs   []int64
	Active    bool // has activated DingTalk
}

// DirectoryUser reads the person with this staff id. An id the directory does not
// know gives an error matching ErrNotInDirectory.
func (c *Client) DirectoryUser(ctx context.Context, userID string) (DirectoryUser, error) {
	const path = "/topapi/v2/user/get"
	var answer struct {
		Result struct {
			UserID    string  `json:"userid"`
			UnionID   string  `json:"unionid"`
			Name      string  `json:"name"`
			Avatar    string  `json:"avatar"`
			Mobile    string  `json:"mobile"`
			StateCode string  `json:"state_code"`
			Email     string  `json:"email"`
			OrgEmail  string  `json:"org_email"`
			Title     string  `json:"title"`
			JobNumber string  `json:"job_number"`
			DeptIDs   []int64 `json:"dept_id_list"`
			Active    *bool   `json:"active"`
		} `json:"result"`
	}
	err := c.callTopAPI(ctx, apiUserGet, path, permissionMember, map[string]string{"userid": userID}, &answer)
	if hasOAPICode(err, oapiUserNotFound) {
		return DirectoryUser{}, fmt.Errorf("%w: %w", ErrNotInDirectory, err)
	}
	if err != nil {
		return DirectoryUser{}, err
	}
	r := answer.Result
	return DirectoryUser{
		UserID: r.UserID, UnionID: r.UnionID, Name: r.Name, AvatarURL: r.Avatar,
		Mobile: r.Mobile, StateCode: r.StateCode, Email: r.Email, OrgEmail: r.OrgEmail,
		Title: r.Title, JobNumber: r.JobNumber, DeptIDs: r.DeptIDs,
		Active: r.Active == nil || *r.Active, // DingTalk always says; absent is no reason to refuse
	}, nil
}

// RootDepartment is the id of an organisation's top department, named after it.
const RootDepartment int64 = 1

// Department is one department of the organisation's directory.
type Department struct {
	ID       int64
	Name     string
	ParentID int64 // RootDepartment for a top-level department; 0 for the root itself
}

// Department reads one department (POST topapi/v2/department/get).
func (c *Client) Department(ctx context.Context, id int64) (Department, error) {
	const path = "/topapi/v2/department/get"
	var answer struct {
		Result struct {
			ID       int64  `json:"dept_id"`
			Name     string `json:"name"`
			ParentID int64  `json:"parent_id"`
		} `json:"result"`
	}
	request := map[string]int64{"dept_id": id}
	if err := c.callTopAPI(ctx, apiDepartmentGet, path, permissionDepartment, request, &answer); err != nil {
		return Department{}, err
	}
	if answer.Result.ID == 0 {
		answer.Result.ID = id
	}
	return Department(answer.Result), nil
}
