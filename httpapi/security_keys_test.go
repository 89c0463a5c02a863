package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow/httpapi"
)

const (
	adminKey = "admin-key-0123456789"
	readKey  = "read-key-0123456789"
	shopKey  = "shop-key-0123456789"
)

func key(k string) map[string]string { return map[string]string{"x-functions-key": k} }

// TestScopedKeys: read-only and per-orchestrator keys next to the admin
// key; 401 without a key, 403 (naming the scope) with one that lacks it;
// the keys are replaced while the server runs.
func TestScopedKeys(t *testing.T) {
	t.Parallel()
	keys, err := httpapi.ParseKeys([]byte(`{"keys": [
		{"name": "dashboard", "key": "` + readKey + `", "scopes": ["read"]},
		{"name": "shop", "key": "` + shopKey + `", "scopes": ["start:E1_HelloSequence", "start:CityRecommender", "raise:CityRecommender"]}
	]}`))
	require.NoError(t, err)
	ring, err := httpapi.NewKeyring(keys)
	require.NoError(t, err)
	b := setupWith(t, httpapi.Config{APIKey: adminKey, Keys: ring})
	orch := base + "/orchestrators/"
	jsonBody := map[string]string{"x-functions-key": shopKey, "Content-Type": "application/json"}

	requireJSONError(t, b.send(t, http.MethodGet, base+"/instances", "", nil), http.StatusUnauthorized, "API key")
	requireJSONError(t, b.send(t, http.MethodGet, base+"/instances", "", key("not-a-key-0123456789")), http.StatusUnauthorized, "API key")
	require.Equal(t, http.StatusOK, b.send(t, http.MethodGet, "/healthz", "", nil).code)

	// The shop key starts its orchestrators and raises to theirs only.
	require.Equal(t, http.StatusAccepted, b.send(t, http.MethodPost, orch+"E1_HelloSequence/k-1", "", key(shopKey)).code)
	require.Equal(t, http.StatusAccepted, b.send(t, http.MethodPost, orch+"CityRecommender/k-2", "1", jsonBody).code)
	requireJSONError(t, b.send(t, http.MethodPost, orch+"SetStatusTest/k-3", "", key(shopKey)), http.StatusForbidden, `"start:SetStatusTest"`, `"shop"`)
	b.requireNoInstance(t, "k-3")
	requireJSONError(t, b.send(t, http.MethodGet, statusPath("k-1"), "", key(shopKey)), http.StatusForbidden, `"read"`)
	requireJSONError(t, b.send(t, http.MethodPost, statusPath("k-2")+"/terminate", "", key(shopKey)), http.StatusForbidden, `"admin"`)

	// The read key reads (status, history, list, watch) and changes nothing.
	b.waitWaiting(t, "k-2")
	for _, path := range []string{statusPath("k-2"), statusPath("k-2") + "?showHistory=true", base + "/instances"} {
		r := b.send(t, http.MethodGet, path, "", key(readKey))
		require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, r.code, "%s: %s", path, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.srv.URL+base+"/watch", nil)
	require.NoError(t, err)
	req.Header.Set("x-functions-key", readKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	cancel()
	resp.Body.Close()
	requireJSONError(t, b.send(t, http.MethodPost, orch+"E1_HelloSequence/k-4", "", key(readKey)), http.StatusForbidden, `"start:E1_HelloSequence"`)
	requireJSONError(t, b.send(t, http.MethodPost, statusPath("k-2")+"/raiseEvent/CitySelected", `"Tokyo"`,
		map[string]string{"x-functions-key": readKey, "Content-Type": "application/json"}), http.StatusForbidden, `"raise"`)
	requireJSONError(t, b.send(t, http.MethodDelete, statusPath("k-1"), "", key(readKey)), http.StatusForbidden, `"admin"`)
	b.requireNoInstance(t, "k-4")

	// raise:CityRecommender reaches CityRecommender's instances, not others'.
	require.Equal(t, http.StatusAccepted, b.send(t, http.MethodPost, orch+"SetStatusTest/k-5", "", key(adminKey)).code)
	requireJSONError(t, b.send(t, http.MethodPost, statusPath("k-5")+"/raiseEvent/Done", "", key(shopKey)), http.StatusForbidden, `"raise:SetStatusTest"`)
	require.Equal(t, http.StatusAccepted, b.send(t, http.MethodPost, statusPath("k-2")+"/raiseEvent/CitySelected", `"Tokyo"`, jsonBody).code)
	st, err := b.e.Client.WaitForCompletion(waitContext(t), "k-2")
	require.NoError(t, err)
	require.Equal(t, `"Tokyo"`, string(st.Output))

	// The admin key does everything.
	require.Equal(t, http.StatusAccepted, b.send(t, http.MethodPost, statusPath("k-5")+"/terminate", "", key(adminKey)).code)

	// Rotation: the new set replaces the old at once.
	const newRead = "read-key-rotated-0123"
	require.NoError(t, ring.Set([]httpapi.Key{{Name: "dashboard", Key: newRead, Scopes: []string{"read"}}}))
	requireJSONError(t, b.send(t, http.MethodGet, statusPath("k-1"), "", key(readKey)), http.StatusUnauthorized)
	require.Equal(t, http.StatusOK, b.send(t, http.MethodGet, base+"/instances", "", key(newRead)).code)
	require.Equal(t, http.StatusOK, b.send(t, http.MethodGet, base+"/instances", "", key(adminKey)).code, "the admin key stays")
}

// TestNoQueryKey: keys in the query string are refused where the
// deployment says so; the header still works.
func TestNoQueryKey(t *testing.T) {
	t.Parallel()
	b := setupWith(t, httpapi.Config{APIKey: adminKey, NoQueryKey: true})
	requireJSONError(t, b.send(t, http.MethodGet, base+"/instances?code="+adminKey, "", nil), http.StatusUnauthorized, "query string", "x-functions-key")
	require.Equal(t, http.StatusOK, b.send(t, http.MethodGet, base+"/instances", "", key(adminKey)).code)
}

// TestEmptyKeyringLocks: a keys file without keys locks the API rather
// than opening it.
func TestEmptyKeyringLocks(t *testing.T) {
	t.Parallel()
	ring, err := httpapi.NewKeyring(nil)
	require.NoError(t, err)
	b := setupWith(t, httpapi.Config{Keys: ring})
	requireJSONError(t, b.send(t, http.MethodGet, base+"/instances", "", nil), http.StatusUnauthorized)
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, json, withError string
	}{
		{"ok", `{"keys": [{"name": "a", "key": "0123456789abcdef", "scopes": ["admin", "read", "start", "raise", "start:X", "raise:Y"]}]}`, ""},
		{"not JSON", `keys: []`, "not a keys file"},
		{"unknown field", `{"keys": [{"name": "a", "secret": "0123456789abcdef"}]}`, "unknown field"},
		{"no name", `{"keys": [{"key": "0123456789abcdef", "scopes": ["read"]}]}`, "no name"},
		{"short", `{"keys": [{"name": "a", "key": "short", "scopes": ["read"]}]}`, "shorter than 16"},
		{"no scopes", `{"keys": [{"name": "a", "key": "0123456789abcdef"}]}`, "no scopes"},
		{"unknown scope", `{"keys": [{"name": "a", "key": "0123456789abcdef", "scopes": ["write"]}]}`, `unknown scope "write"`},
		{"empty name scope", `{"keys": [{"name": "a", "key": "0123456789abcdef", "scopes": ["start:"]}]}`, `unknown scope "start:"`},
		{"same name", `{"keys": [{"name": "a", "key": "0123456789abcdef", "scopes": ["read"]}, {"name": "a", "key": "0123456789abcdeg", "scopes": ["read"]}]}`, "another key has that name"},
		{"same key", `{"keys": [{"name": "a", "key": "0123456789abcdef", "scopes": ["read"]}, {"name": "b", "key": "0123456789abcdef", "scopes": ["read"]}]}`, "same secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := httpapi.ParseKeys([]byte(tc.json))
			if tc.withError == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.withError)
		})
	}
}

// TestAllowedOrigins: a listed origin may change state and gets CORS
// headers, its preflights are answered; others are refused.
func TestAllowedOrigins(t *testing.T) {
	t.Parallel()
	b := setupWith(t, httpapi.Config{AllowedOrigins: []string{"https://app.example.com"}})
	pre := b.send(t, http.MethodOptions, base+"/orchestrators/E1_HelloSequence/o-1", "", map[string]string{
		"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
	require.Equal(t, http.StatusNoContent, pre.code, "body: %s", pre.body)
	require.Equal(t, "https://app.example.com", pre.header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, pre.header.Get("Access-Control-Allow-Methods"), "POST")
	require.Contains(t, pre.header.Get("Access-Control-Allow-Headers"), "Content-Type")

	r := b.send(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/o-1", `"x"`, map[string]string{
		"Origin": "https://app.example.com", "Content-Type": "application/json"})
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	require.Equal(t, "https://app.example.com", r.header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, r.header.Get("Access-Control-Expose-Headers"), "Location")

	r = b.send(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/o-2", "", map[string]string{"Origin": "https://other.example.com"})
	requireJSONError(t, r, http.StatusForbidden, "Origin")
	require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
	b.requireNoInstance(t, "o-2")

	require.ErrorContains(t, httpapi.Config{AllowedOrigins: []string{"app.example.com"}}.Validate(), "want scheme://host")
	require.ErrorContains(t, httpapi.Config{BaseURL: "flows.example.com"}.Validate(), "base URL")
}

// waitContext is a context for a wait of the test.
func waitContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
