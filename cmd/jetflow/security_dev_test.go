package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
)

// withoutUser drops the user and password of a URL.
func withoutUser(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	require.NoError(t, err)
	p.User = nil
	return p.String()
}

var watcherURLRE = regexp.MustCompile(`nats --server (nats://watcher:\S+) --inbox-prefix (\S+) kv watch`)

// keyed sends a request with the x-functions-key header.
func keyed(t *testing.T, method, u, key string) int {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("x-functions-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestDevAPIKeyLocksNATS: with --api-key, the embedded NATS requires
// credentials too (issue 15, problem 1); the banner prints them so that
// its examples work, and a read-only watcher; a restart keeps them.
func TestDevAPIKeyLocksNATS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const key = "dev-key-123"
	args := []string{"--data", dir, "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--api-key", key}
	d := startDev(t, args...)
	out := d.stdout.String()
	const base = "/runtime/webhooks/durabletask"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Without credentials, nothing: neither a connection nor the CLI.
	bare := withoutUser(t, d.natsURL)
	require.NotEqual(t, bare, d.natsURL, "the banner's NATS URL carries credentials: %s", out)
	_, err := nats.Connect(bare)
	require.ErrorContains(t, err, "Authorization Violation")
	requireOneLineError(t, cli(t, ctx, "start", "E1_HelloSequence", "--id", "nope", "--nats", bare), "Authorization Violation")
	wrong, err := url.Parse(d.natsURL)
	require.NoError(t, err)
	wrong.User = url.UserPassword("jetflow", "guess")
	requireOneLineError(t, cli(t, ctx, "status", "nope", "--nats", wrong.String()), "Authorization Violation")

	// The banner's examples work as printed.
	require.Contains(t, out, "curl -i -H 'x-functions-key: "+key+"' -X POST "+d.httpURL+base+"/orchestrators/E1_HelloSequence/hello-1")
	require.Contains(t, out, "start --nats "+d.natsURL+" E1_HelloSequence --id hello-2")
	require.Equal(t, http.StatusUnauthorized, keyed(t, http.MethodPost, d.httpURL+base+"/orchestrators/E1_HelloSequence/hello-1", ""))
	require.Equal(t, http.StatusAccepted, keyed(t, http.MethodPost, d.httpURL+base+"/orchestrators/E1_HelloSequence/hello-1", key))
	r := cli(t, ctx, "start", "CityRecommender", "--input", "1", "--id", "trip-1", "--nats", d.natsURL)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)

	// The watcher watches, and may not raise, read history or purge.
	m := watcherURLRE.FindStringSubmatch(out)
	require.NotNil(t, m, "banner: %s", out)
	watcherURL, prefix := m[1], m[2]
	r = cli(t, ctx, "watch", "hello-1", "--nats", watcherURL, "--inbox-prefix", prefix)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	lines := watchLines(t, r.stdout)
	require.Equal(t, jetflow.StatusCompleted, lines[len(lines)-1].RuntimeStatus)
	r = cli(t, ctx, "status", "trip-1", "--nats", watcherURL, "--inbox-prefix", prefix)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	// Refusals are timeouts for the client (NATS drops what a user may not
	// publish), so they run at once.
	refused := [][]string{
		{"raise", "trip-1", "CitySelected", `"Tokyo"`},
		{"terminate", "trip-1"},
		{"purge", "hello-1"},
		{"start", "E1_HelloSequence", "--id", "by-watcher"},
		{"status", "hello-1", "--history"},
	}
	results := make(chan result, len(refused))
	for _, args := range refused {
		go func() { results <- cli(t, ctx, append(args, "--nats", watcherURL, "--inbox-prefix", prefix)...) }()
	}
	for range refused {
		r := <-results
		require.NotEqual(t, 0, r.code, "as the watcher: %s", r.stdout)
		require.Empty(t, r.stdout)
	}
	st := statusOf(t, ctx, d.natsURL, "trip-1")
	require.Equal(t, jetflow.StatusRunning, st.RuntimeStatus, "the watcher changed nothing")
	require.Equal(t, jetflow.StatusCompleted, statusOf(t, ctx, d.natsURL, "hello-1").RuntimeStatus, "hello-1 is not purged")

	// The credentials are kept under --data, for the owner only, and a
	// restart keeps them.
	fi, err := os.Stat(filepath.Join(dir, natsUsersFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	userOf := func(u string) string {
		p, err := url.Parse(u)
		require.NoError(t, err)
		return p.User.String()
	}
	first := userOf(d.natsURL)
	d.stop(t)
	d = startDev(t, args...)
	require.Equal(t, first, userOf(d.natsURL), "the same credentials after a restart")
	d.stop(t)
}

// TestDevNATSOpenWithoutKey: without a key, dev stays as easy as before on
// loopback: no credentials, no watcher line.
func TestDevNATSOpenWithoutKey(t *testing.T) {
	t.Parallel()
	d := startDev(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0")
	require.NotContains(t, d.natsURL, "@")
	require.NotContains(t, d.stdout.String(), "watcher")
	nc, err := nats.Connect(d.natsURL)
	require.NoError(t, err)
	nc.Close()
}

// TestDevBeyondLoopback: a NATS port open beyond loopback requires
// credentials even without a key, and dev says so loudly.
func TestDevBeyondLoopback(t *testing.T) {
	t.Parallel()
	d := startDev(t, "--data", t.TempDir(), "--nats-listen", "0.0.0.0:0", "--http", "127.0.0.1:0")
	require.Contains(t, d.stderr.String(), "WARNING: NATS listens on 0.0.0.0:0, beyond loopback")
	require.Contains(t, d.natsURL, "@", "credentials required: %s", d.stdout)
	_, err := nats.Connect(withoutUser(t, d.natsURL))
	require.ErrorContains(t, err, "Authorization Violation")
}

// TestDevKeysReload: scoped keys from --keys, replaced on SIGHUP without a
// restart.
func TestDevKeysReload(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys.json")
	write := func(readKey string) {
		b, err := json.Marshal(map[string]any{"keys": []map[string]any{
			{"name": "dashboard", "key": readKey, "scopes": []string{"read"}},
		}})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(file+".tmp", b, 0o600))
		require.NoError(t, os.Rename(file+".tmp", file))
	}
	const old, renewed = "read-key-old-0123456", "read-key-new-0123456"
	write(old)
	d := startDev(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--keys", file)
	list := d.httpURL + "/runtime/webhooks/durabletask/instances"
	require.Equal(t, http.StatusUnauthorized, keyed(t, http.MethodGet, list, ""))
	require.Equal(t, http.StatusOK, keyed(t, http.MethodGet, list, old))
	require.Equal(t, http.StatusForbidden, keyed(t, http.MethodPost, d.httpURL+"/runtime/webhooks/durabletask/orchestrators/E1_HelloSequence", old))
	require.Contains(t, d.natsURL, "@", "keys lock NATS too")

	write(renewed)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return keyed(t, http.MethodGet, list, renewed) == http.StatusOK },
		10*time.Second, 10*time.Millisecond, "the new key is taken after SIGHUP")
	require.Equal(t, http.StatusUnauthorized, keyed(t, http.MethodGet, list, old))

	// A broken file keeps the keys in use.
	require.NoError(t, os.WriteFile(file, []byte("{"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(d.stderr.String(), "reloading the keys failed") },
		10*time.Second, 10*time.Millisecond)
	require.Equal(t, http.StatusOK, keyed(t, http.MethodGet, list, renewed))
}

// TestSecurityFlags: wrong security flags are one-line errors, before
// anything starts.
func TestSecurityFlags(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bad := filepath.Join(t.TempDir(), "keys.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"keys": [{"name": "a", "key": "short", "scopes": ["read"]}]}`), 0o600))
	dev := []string{"dev", "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0"}
	for _, tc := range []struct {
		args     []string
		contains string
	}{
		{[]string{"--keys", bad}, "shorter than 16"},
		{[]string{"--keys", "/no/such/keys.json"}, "--keys"},
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-cert", "/no/c.pem", "--tls-key", "/no/k.pem"}, "--tls-cert"},
		{[]string{"--allowed-origins", "app.example.com"}, "--allowed-origins"},
		{[]string{"--public-url", "flows.example.com"}, "--public-url"},
	} {
		requireOneLineError(t, cli(t, ctx, append(dev, tc.args...)...), tc.contains)
	}
	requireOneLineError(t, cli(t, ctx, "server", "--http", "127.0.0.1:0", "--http-tls-cert", "c.pem"), "--http-tls-cert and --http-tls-key go together")
	requireOneLineError(t, cli(t, ctx, "start", "X", "--input", "\"\xff\""), "invalid UTF-8")
}
