package op

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// Forms that change something (a device approval, a consent) carry a token tied
// to this browser's login cookie and to what the form is about, so another site
// cannot submit them for the person (CSRF). The cookie is SameSite=Lax as well,
// so a cross-site POST arrives without it.

// formToken returns the token for a form about purpose and id in this browser,
// setting the browser's login cookie if it has none.
func (p *Provider) formToken(w http.ResponseWriter, r *http.Request, purpose, id string) string {
	return p.formMAC(p.browserBinding(w, r), purpose, id)
}

// validFormToken checks a submitted token against this browser's cookie.
func (p *Provider) validFormToken(r *http.Request, purpose, id, token string) bool {
	c, err := r.Cookie(p.bindingCookieName())
	if err != nil || token == "" {
		return false
	}
	want := p.formMAC(c.Value, purpose, id)
	return hmac.Equal([]byte(token), []byte(want))
}

func (p *Provider) formMAC(binding, purpose, id string) string {
	mac := hmac.New(sha256.New, p.formKey)
	mac.Write([]byte(purpose))
	mac.Write([]byte{0})
	mac.Write([]byte(id))
	mac.Write([]byte{0})
	mac.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// formKeyFrom derives the form-token key from the token-sealing key, so it
// survives restarts and is shared by replicas without another secret to manage.
func formKeyFrom(tokenKey [32]byte) []byte {
	mac := hmac.New(sha256.New, tokenKey[:])
	mac.Write([]byte("dingbridge form tokens v1"))
	return mac.Sum(nil)
}
