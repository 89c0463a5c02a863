package main

import (
	"net/http"
	"testing"

	"github.com/jetflow/jetflow/ui"
	"github.com/stretchr/testify/require"
)

// TestDevStatusPage: dev serves the status page at /ui/ and names it in
// its banner, even with a key (the page's files hold no data); --no-ui
// turns it off.
func TestDevStatusPage(t *testing.T) {
	t.Parallel()
	const key = "dev-key-0123456789abcdef"
	args := []string{"--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--api-key", key}
	d := startDev(t, args...)
	require.Contains(t, d.stdout.String(), "status page   "+d.httpURL+"/ui/")
	resp, err := http.Get(d.httpURL + "/ui/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, ui.ContentSecurityPolicy, resp.Header.Get("Content-Security-Policy"))
	code, _ := d.get(t, "/runtime/webhooks/durabletask/instances")
	require.Equal(t, http.StatusUnauthorized, code, "the API still needs the key")
	d.stop(t)

	d = startDev(t, append(args, "--no-ui")...)
	require.NotContains(t, d.stdout.String(), "status page")
	req, err := http.NewRequest(http.MethodGet, d.httpURL+"/ui/", nil)
	require.NoError(t, err)
	req.Header.Set("x-functions-key", key)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
