package httpapi

import (
	"net/http"
	"strings"
)

// UIPath is where Config.UI is served.
const UIPath = "/ui/"

// public reports whether r asks for the status page (Config.UI): its
// files and the redirect of / to it, which need no key.
func (a *api) public(r *http.Request) bool {
	if a.cfg.UI == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	p := r.URL.Path
	return p == "/" || p == strings.TrimSuffix(UIPath, "/") || strings.HasPrefix(p, UIPath)
}

// whoAmI is the body of GET /whoami.
type whoAmI struct {
	// Name is the key's name ("admin" for Config.APIKey, "anonymous"
	// when the server takes no keys).
	Name string `json:"name"`
	// Scopes are the key's scopes, as in the keys file.
	Scopes []string `json:"scopes"`
	// KeyRequired reports whether the server requires keys.
	KeyRequired bool `json:"keyRequired"`
}

// whoami handles GET /whoami: the name and scopes of the request's key,
// so that a client (the status page) can offer only what the key may do.
// Any valid key may ask; without one it gets 401 like every route.
func (a *api) whoami(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	writeJSON(w, http.StatusOK, whoAmI{Name: p.name, Scopes: p.scopes, KeyRequired: a.authEnabled()})
}

// tasks handles GET /instances/{instanceId}/tasks: the work of the
// instance's current execution (client.Tasks), 404 for an unknown one.
func (a *api) tasks(w http.ResponseWriter, r *http.Request) {
	t, err := a.c.GetTasks(r.Context(), r.PathValue("instanceId"))
	if err != nil {
		a.writeClientError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}
