package admin

import "net/http"

// One handler per route of Handler; each decodes, calls the API and answers.

func (h *handler) listClients(w http.ResponseWriter, r *http.Request) {
	v, err := h.api.ListClients(r.Context())
	h.answer(w, r, v, err)
}

func (h *handler) addClient(w http.ResponseWriter, r *http.Request) {
	var spec ClientSpec
	if !decode(w, r, &spec) {
		return
	}
	v, err := h.api.AddClient(r.Context(), spec)
	h.answer(w, r, v, err)
}

func (h *handler) getClient(w http.ResponseWriter, r *http.Request) {
	v, err := h.api.GetClient(r.Context(), r.PathValue("id"))
	h.answer(w, r, v, err)
}

func (h *handler) updateClient(w http.ResponseWriter, r *http.Request) {
	var u ClientUpdate
	if !decode(w, r, &u) {
		return
	}
	v, err := h.api.UpdateClient(r.Context(), r.PathValue("id"), u)
	h.answer(w, r, v, err)
}

func (h *handler) deleteClient(w http.ResponseWriter, r *http.Request) {
	err := h.api.DeleteClient(r.Context(), r.PathValue("id"))
	h.answer(w, r, struct{}{}, err)
}

func (h *handler) rotateClientSecret(w http.ResponseWriter, r *http.Request) {
	v, err := h.api.RotateClientSecret(r.Context(), r.PathValue("id"))
	h.answer(w, r, v, err)
}

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request) {
	v, err := h.api.ListKeys(r.Context())
	h.answer(w, r, v, err)
}

func (h *handler) rotateKeys(w http.ResponseWriter, r *http.Request) {
	v, err := h.api.RotateKeys(r.Context())
	h.answer(w, r, v, err)
}

func (h *handler) listUsers(w http.ResponseWriter, r *http.Request) {
	v, err := h.api.ListUsers(r.Context())
	h.answer(w, r, v, err)
}

func (h *handler) getUser(w http.ResponseWriter, r *http.Request) {
	v, err := h.api.GetUser(r.Context(), r.PathValue("subject"))
	h.answer(w, r, v, err)
}

func (h *handler) disableUser(w http.ResponseWriter, r *http.Request) {
	v, err := h.api.DisableUser(r.Context(), r.PathValue("subject"))
	h.answer(w, r, v, err)
}

func (h *handler) enableUser(w http.ResponseWriter, r *http.Request) {
	v, err := h.api.EnableUser(r.Context(), r.PathValue("subject"))
	h.answer(w, r, v, err)
}

// claimsQuery is the body of POST /v1/claims (a POST so that scopes and IDs need
// no query escaping).
type claimsQuery struct {
	ClientID string   `json:"client"`
	Subject  string   `json:"subject"`
	Scopes   []string `json:"scopes,omitempty"`
}

func (h *handler) claims(w http.ResponseWriter, r *http.Request) {
	var q claimsQuery
	if !decode(w, r, &q) {
		return
	}
	v, err := h.api.Claims(r.Context(), q.ClientID, q.Subject, q.Scopes)
	h.answer(w, r, v, err)
}

func (h *handler) addUser(w http.ResponseWriter, r *http.Request) {
	var spec UserSpec
	if !decode(w, r, &spec) {
		return
	}
	v, err := h.api.AddUser(r.Context(), spec)
	h.answer(w, r, v, err)
}

func (h *handler) importUsers(w http.ResponseWriter, r *http.Request) {
	var specs []UserSpec
	if !decode(w, r, &specs) {
		return
	}
	v, err := h.api.ImportUsers(r.Context(), specs)
	h.answer(w, r, v, err)
}

// linkQuery is the body of POST /v1/users/{subject}/link.
type linkQuery struct {
	UnionID string `json:"unionid"`
}

func (h *handler) linkUser(w http.ResponseWriter, r *http.Request) {
	var q linkQuery
	if !decode(w, r, &q) {
		return
	}
	v, err := h.api.LinkUser(r.Context(), r.PathValue("subject"), q.UnionID)
	h.answer(w, r, v, err)
}

func (h *handler) unlinkUser(w http.ResponseWriter, r *http.Request) {
	v, err := h.api.UnlinkUser(r.Context(), r.PathValue("subject"))
	h.answer(w, r, v, err)
}

// syncQuery is the body of POST /v1/users/sync.
type syncQuery struct {
	Apply bool `json:"apply"`
}

func (h *handler) syncUsers(w http.ResponseWriter, r *http.Request) {
	var q syncQuery
	if !decode(w, r, &q) {
		return
	}
	v, err := h.api.SyncUsers(r.Context(), q.Apply)
	h.answer(w, r, v, err)
}
