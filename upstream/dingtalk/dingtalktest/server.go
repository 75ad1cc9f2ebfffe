package dingtalktest

import (
	"net/http/httptest"

	"github.com/dingbridge/dingbridge/upstream/dingtalk"
)

// Server is a Fake listening on 127.0.0.1 at a free port, standing in for all
// three DingTalk hosts. Its methods are the Fake's (AutoApprove, Fail, Calls, …).
type Server struct {
	*Fake
	URL string // base URL, e.g. http://127.0.0.1:41234
	srv *httptest.Server
}

// NewServer starts a fake DingTalk. Close it when done (t.Cleanup(srv.Close)).
func NewServer(cfg Config) *Server {
	fake := New(cfg)
	srv := httptest.NewServer(fake)
	return &Server{Fake: fake, URL: srv.URL, srv: srv}
}

// Endpoints points every DingTalk host at this server, and the QR embedding
// scripts at its copies of them.
func (s *Server) Endpoints() dingtalk.Endpoints {
	return dingtalk.Endpoints{Login: s.URL, API: s.URL, OAPI: s.URL,
		FrameLogin: s.URL + FrameLoginPath, SNSFrameLogin: s.URL + SNSFrameLoginPath}
}

// Close releases hanging requests, then shuts the server down and waits for
// every request in flight to finish, so no handler goroutine outlives it.
func (s *Server) Close() {
	s.Fake.Close()
	s.srv.Close()
}
