package op

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
)

// loginInline serves the login step in /authorize's own answer. zitadel
// answers a valid authorization request by redirecting to our /login, and the
// browser would only come straight back for it: serving it here spares every
// login that round trip. /login stays for the links on our pages (retry,
// connector choice) and for the device flow.
//
// Only a 302 to the login URL that the clients' LoginURL builds is taken over;
// every other answer of zitadel (errors redirected to the client, error pages)
// goes out untouched.
func (p *Provider) loginInline(next http.Handler) http.Handler {
	prefix := p.issuerPath + "/login?"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lw := &loginRedirect{ResponseWriter: w, prefix: prefix, header: w.Header().Clone()}
		next.ServeHTTP(lw, r)
		if lw.login == "" {
			lw.commit()
			return
		}
		u, err := url.Parse(lw.login)
		if err != nil {
			p.serverError(w, r, "authorize: parse login URL", err)
			return
		}
		login := r.Clone(r.Context())
		login.Method, login.Body, login.ContentLength = http.MethodGet, http.NoBody, 0
		login.URL.RawQuery, login.Form, login.PostForm = u.RawQuery, nil, nil
		p.login(w, login)
	})
}

// loginRedirect holds back an answer until it knows whether it is the
// redirect to the login step, which it then swallows.
type loginRedirect struct {
	http.ResponseWriter
	prefix string
	header http.Header
	login  string // the login URL zitadel redirected to, when it did
	wrote  bool
}

func (lw *loginRedirect) Header() http.Header { return lw.header }

func (lw *loginRedirect) WriteHeader(code int) {
	if lw.wrote || lw.login != "" {
		return
	}
	if loc := lw.header.Get("Location"); code == http.StatusFound && strings.HasPrefix(loc, lw.prefix) {
		lw.login = loc
		return
	}
	lw.commit()
	lw.ResponseWriter.WriteHeader(code)
}

func (lw *loginRedirect) Write(b []byte) (int, error) {
	if lw.login != "" {
		return len(b), nil // http.Redirect's little HTML body
	}
	if !lw.wrote {
		lw.WriteHeader(http.StatusOK)
	}
	return lw.ResponseWriter.Write(b)
}

// commit passes the held headers on (once) for an answer that goes out as is.
func (lw *loginRedirect) commit() {
	if lw.wrote {
		return
	}
	lw.wrote = true
	h := lw.ResponseWriter.Header()
	clear(h)
	maps.Copy(h, lw.header)
}

func (lw *loginRedirect) Unwrap() http.ResponseWriter { return lw.ResponseWriter }
