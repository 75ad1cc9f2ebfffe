package op

import (
	"net/http"

	"github.com/rs/cors"
)

// Cross-origin access. A single-page app on another origin may read discovery
// and the key set, exchange its code and refresh at the token endpoint, call
// userinfo and revoke its tokens: all of them take the token or code in the
// request, never a cookie, so no origin is ever allowed credentials
// (Access-Control-Allow-Credentials). Everything else — the pages, /authorize,
// /end_session, introspection and device authorization — sends no CORS headers,
// so another site's script cannot read their answers.
var publicAPICORS = cors.New(cors.Options{
	AllowedOrigins:   []string{"*"},
	AllowCredentials: false,
	AllowedMethods:   []string{http.MethodGet, http.MethodHead, http.MethodPost},
	AllowedHeaders:   []string{"Authorization", "Content-Type", "Accept", "Accept-Language"},
	MaxAge:           600,
}).Handler
