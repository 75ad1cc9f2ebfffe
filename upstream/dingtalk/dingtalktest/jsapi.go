package dingtalktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// JSAPIPath is where the fake serves its stand-in for DingTalk's JavaScript API
// (dingtalk.open.js). Point a connector's endpoints.jsapi at URL+JSAPIPath and
// give the browser a DingTalk User-Agent: the in-app login page then runs
// against the DingTalk client that SetJSAPI describes.
const JSAPIPath = "/jsapi/dingtalk.open.js"

// APIJSAPI counts the requests for the script (Calls).
const APIJSAPI = "jsapi"

// JSAPI is the DingTalk client a page runs in, as far as the in-app login sees
// it. Both functions always exist, as in the real script; a client too old
// for one makes it call its failure callback.
type JSAPI struct {
	// UnionID is the person logged in to the client; a member of their CorpID.
	UnionID string
	// RequestAuthCode: dd.requestAuthCode answers with a code (DingTalk ≥ 7.0.45
	// on phones, 7.0.50 on PC). False: it calls fail/onFail.
	RequestAuthCode bool
	// RuntimeRequestAuthCode: the old dd.runtime.permission.requestAuthCode
	// answers with a code. False: it calls onFail.
	RuntimeRequestAuthCode bool
}

// SetJSAPI sets how the next scripts served at JSAPIPath behave.
func (f *Fake) SetJSAPI(j JSAPI) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jsapi = j
}

// jsapiScript serves the stand-in script. Each copy carries one fresh in-app
// code for the person, as the client would mint on requestAuthCode; it is
// given only for the person's own corpId, like the real client.
func (f *Fake) jsapiScript(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	j := f.jsapi
	f.mu.Unlock()
	var corpID, code string
	if u, ok := f.user(j.UnionID); ok && (j.RequestAuthCode || j.RuntimeRequestAuthCode) {
		var err error
		if code, err = f.InAppCode(u.CorpID, u.UnionID); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		corpID = u.CorpID
	}
	js := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, strings.NewReplacer(
		"CORP_ID", js(corpID), "CODE", js(code),
		"NEW_WORKS", js(j.RequestAuthCode), "OLD_WORKS", js(j.RuntimeRequestAuthCode),
	).Replace(jsapiTemplate))
}

// jsapiTemplate answers asynchronously, as the client does, with the callback
// names each API documents.
const jsapiTemplate = `(function () {
  var corpId = CORP_ID, code = CODE;
  function answer(works, opts, success, fail) {
    setTimeout(function () {
      if (works && code && opts.corpId === corpId) {
        success({code: code});
      } else if (fail) {
        fail({errorCode: "3", errorMessage: "fake DingTalk client: requestAuthCode failed"});
      }
    }, 10);
  }
  window.dd = {
    ready: function (fn) { setTimeout(fn, 0); },
    error: function () {},
    requestAuthCode: function (opts) {
      answer(NEW_WORKS, opts, opts.success || opts.onSuccess, opts.fail || opts.onFail);
    },
    runtime: {permission: {requestAuthCode: function (opts) {
      answer(OLD_WORKS, opts, opts.onSuccess, opts.onFail);
    }}}
  };
})();
`
