package admin

import (
	"context"
	"io"
	"net/http"
)

// What only a running server can do, beside the API: an API given to Handler
// that also implements these is offered on the socket, and Remote implements
// both for the CLI.

// Backuper copies the whole database.
type Backuper interface {
	// Backup writes a consistent snapshot of the database to w and returns how
	// many bytes it wrote.
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// Reloader re-reads the server's configuration file.
type Reloader interface {
	// Reload applies the file's connectors, static clients, claims, lifetimes
	// and rate limits. An invalid file is refused (ErrInvalid, with the
	// messages of `config check`) and the running configuration stays.
	Reload(ctx context.Context) error
}

func (h *handler) backup(w http.ResponseWriter, r *http.Request) {
	b, ok := h.api.(Backuper)
	if !ok {
		writeError(w, refuse(ErrInvalid, "this server cannot make backups"))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store") // the copy holds private keys
	n, err := b.Backup(r.Context(), w)
	if err != nil {
		h.log.ErrorContext(r.Context(), "admin: backup failed", "written", n, "err", err)
		if n == 0 {
			writeError(w, err)
			return
		}
		// Part of the copy is on its way: break the connection so the CLI sees
		// a truncated answer rather than a short database.
		panic(http.ErrAbortHandler)
	}
	h.log.InfoContext(r.Context(), "admin: backup taken", "bytes", n)
}

func (h *handler) reload(w http.ResponseWriter, r *http.Request) {
	rl, ok := h.api.(Reloader)
	if !ok {
		writeError(w, refuse(ErrInvalid, "this server cannot reload its configuration"))
		return
	}
	h.answer(w, r, struct{}{}, rl.Reload(r.Context()))
}

// Backup streams the running server's snapshot into w.
func (c *Remote) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, c.refusal(resp)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, c.fail("read backup", err)
	}
	return n, nil
}

// Reload asks the running server to re-read its configuration file.
func (c *Remote) Reload(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/v1/reload", nil, nil)
}
