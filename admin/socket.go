package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// The admin socket speaks JSON over HTTP on a unix socket. Only the owner of the
// socket file (mode 0600) can connect, which is the whole of its access control:
// it is never on a TCP port.

// Handler serves api over HTTP. Errors are answered as {"error": {"kind",
// "message"}} with a status that matches, so Dial can rebuild the *Error.
func Handler(api API, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{api: api, log: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, struct{}{}) })
	mux.HandleFunc("GET /v1/clients", h.listClients)
	mux.HandleFunc("POST /v1/clients", h.addClient)
	mux.HandleFunc("GET /v1/clients/{id}", h.getClient)
	mux.HandleFunc("PATCH /v1/clients/{id}", h.updateClient)
	mux.HandleFunc("DELETE /v1/clients/{id}", h.deleteClient)
	mux.HandleFunc("POST /v1/clients/{id}/secret", h.rotateClientSecret)
	mux.HandleFunc("GET /v1/keys", h.listKeys)
	mux.HandleFunc("POST /v1/keys/rotate", h.rotateKeys)
	mux.HandleFunc("GET /v1/users", h.listUsers)
	mux.HandleFunc("GET /v1/users/{subject}", h.getUser)
	mux.HandleFunc("POST /v1/users/{subject}/disable", h.disableUser)
	mux.HandleFunc("POST /v1/users/{subject}/enable", h.enableUser)
	mux.HandleFunc("POST /v1/users", h.addUser)
	mux.HandleFunc("POST /v1/users/import", h.importUsers)
	mux.HandleFunc("POST /v1/users/sync", h.syncUsers)
	mux.HandleFunc("POST /v1/users/{subject}/link", h.linkUser)
	mux.HandleFunc("POST /v1/users/{subject}/unlink", h.unlinkUser)
	mux.HandleFunc("POST /v1/claims", h.claims)
	mux.HandleFunc("GET /v1/backup", h.backup)
	mux.HandleFunc("POST /v1/reload", h.reload)
	return mux
}

// Listen creates the admin socket at path, mode 0600, replacing a stale socket a
// crashed server left behind. It refuses to replace anything else, or a socket
// another process still answers on.
func Listen(path string) (net.Listener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return ln, nil
}

// Serve listens on path and serves api until ctx is done, then removes the socket.
func Serve(ctx context.Context, path string, api API, logger *slog.Logger) error {
	ln, err := Listen(path)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, api, logger)
}

// ServeListener serves api on ln (from Listen) until ctx is done, waits for
// requests in flight, and removes the socket file.
func ServeListener(ctx context.Context, ln net.Listener, api API, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	path := ln.Addr().String()
	ours, statErr := os.Stat(path)
	srv := &http.Server{
		Handler:           Handler(api, logger),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		serveErr = srv.Shutdown(shutdownCtx)
		cancel()
	}
	// Remove the file only if it is still ours: a newer server may have taken the path.
	if now, err := os.Stat(path); statErr == nil && err == nil && os.SameFile(ours, now) {
		_ = os.Remove(path)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("admin socket %s: %w", path, serveErr)
	}
	return nil
}

// removeStale removes a socket file nobody answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("admin socket %s: a file that is not a socket is in the way: remove it or set adminSocket to another path", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("admin socket %s: another process is serving on it: stop it, or set adminSocket to another path", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("admin socket %s: remove stale socket: %w", path, err)
	}
	return nil
}

// listenPrivate binds the socket inside a fresh 0700 directory, makes it 0600 and
// renames it into place, so there is no moment at which anyone else could
// connect, whatever the umask. When that longer path would not fit in a socket
// address, it binds in place and chmods at once.
func listenPrivate(path string) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".admin")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	if len(tmp) > maxSocketPath {
		return listenAndChmod(path, path)
	}
	ln, err := listenAndChmod(tmp, path)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// maxSocketPath fits sockaddr_un.sun_path everywhere (104 bytes on BSDs, with NUL).
const maxSocketPath = 103

// listenAndChmod binds at bindPath; the listener reports finalPath as its address.
func listenAndChmod(bindPath, finalPath string) (net.Listener, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bindPath, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// ServeListener removes the file itself, comparing it with what it created.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(bindPath, 0o600); err != nil {
		ln.Close()
		_ = os.Remove(bindPath)
		return nil, err
	}
	return &renamedListener{UnixListener: ln, addr: &net.UnixAddr{Name: finalPath, Net: "unix"}}, nil
}

// renamedListener is a unix listener whose socket file was moved to addr.
type renamedListener struct {
	*net.UnixListener
	addr net.Addr
}

func (l *renamedListener) Addr() net.Addr { return l.addr }

// handler adapts HTTP requests to API calls.
type handler struct {
	api API
	log *slog.Logger
}

const maxRequestBody = 1 << 20

// decode reads a JSON body into v; false means an answer was written.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, refuse(ErrInvalid, "malformed request: %v", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // answers may hold a new client secret
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// wireError is an error as the socket carries it.
type wireError struct {
	Error struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"error"`
}

var kindStatus = map[string]int{
	"not_found":     http.StatusNotFound,
	"invalid":       http.StatusBadRequest,
	"static_client": http.StatusForbidden,
	"conflict":      http.StatusConflict,
}

func writeError(w http.ResponseWriter, err error) {
	var body wireError
	body.Error.Kind, body.Error.Message = kindName(err), err.Error()
	status, ok := kindStatus[body.Error.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, body)
}

// answer writes v, or err; operations are logged without their results, which
// may hold secrets.
func (h *handler) answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		level := slog.LevelInfo
		if kindName(err) == "internal" {
			level = slog.LevelError
		}
		h.log.Log(r.Context(), level, "admin request refused", "op", r.Pattern, "path", r.URL.Path, "err", err)
		writeError(w, err)
		return
	}
	if r.Method != http.MethodGet {
		h.log.InfoContext(r.Context(), "admin change", "op", r.Pattern, "path", r.URL.Path)
	}
	writeJSON(w, http.StatusOK, v)
}
