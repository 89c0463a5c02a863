package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/httpapi"
)

// send sends a request with the given headers ("Host" sets the Host
// header) to the test server.
func (b *testBundle) send(t *testing.T, method, path, body string, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	require.NoError(t, err)
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{code: resp.StatusCode, header: resp.Header, body: data}
}

// waitWaiting waits, through the engine's client (the test server may
// need a key), until id runs with a custom status set (it then waits for
// an event).
func (b *testBundle) waitWaiting(t *testing.T, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, err := b.e.Client.GetStatus(context.Background(), id)
		return err == nil && st.RuntimeStatus == jetflow.StatusRunning && len(st.CustomStatus) > 0 && string(st.CustomStatus) != "null"
	}, 20*time.Second, 10*time.Millisecond, "%s waits for its event", id)
}

// requireNoInstance checks that id was never started.
func (b *testBundle) requireNoInstance(t *testing.T, id string) {
	t.Helper()
	_, err := b.e.Client.GetStatus(context.Background(), id)
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "a refused request changes nothing")
}

// TestCrossSiteRequests: what a web page can make a browser send to the
// keyless loopback server is refused (issue 15, problem 2): "simple"
// requests with bodies that are not JSON, state-changing requests from a
// foreign Origin, and (DNS rebinding) requests whose Host is the
// attacker's name; management URLs never come from the Host header.
func TestCrossSiteRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	evil := map[string]string{"Origin": "https://evil.example"}
	start := base + "/orchestrators/E1_HelloSequence/"

	// A form post: text/plain, no preflight needed.
	r := b.send(t, http.MethodPost, start+"xs-1", `"x"`, map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example"})
	require.Contains(t, []int{http.StatusForbidden, http.StatusUnsupportedMediaType}, r.code, "body: %s", r.body)
	b.requireNoInstance(t, "xs-1")
	requireJSONError(t, b.send(t, http.MethodPost, start+"xs-2", `"x"`, map[string]string{"Content-Type": "text/plain"}),
		http.StatusUnsupportedMediaType, "Content-Type", "application/json")
	b.requireNoInstance(t, "xs-2")
	requireJSONError(t, b.send(t, http.MethodPost, start+"xs-3", `a=1`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}),
		http.StatusUnsupportedMediaType, "Content-Type")
	b.requireNoInstance(t, "xs-3")
	// fetch(url, {mode: "no-cors", body: new Blob(["1"])}) sends no Content-Type.
	requireJSONError(t, b.send(t, http.MethodPost, start+"xs-4", `1`, nil), http.StatusUnsupportedMediaType, "Content-Type")
	b.requireNoInstance(t, "xs-4")

	// A foreign Origin may not change anything, even with a JSON body.
	requireJSONError(t, b.send(t, http.MethodPost, start+"xs-5", `"x"`, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}),
		http.StatusForbidden, "Origin", "evil.example")
	b.requireNoInstance(t, "xs-5")
	requireJSONError(t, b.send(t, http.MethodPost, start+"xs-6", "", map[string]string{"Origin": "null"}), http.StatusForbidden, "Origin")
	b.requireNoInstance(t, "xs-6")

	waiting := b.start(t, "CityRecommender", "xs-wait", "1")
	b.waitRunning(t, waiting)
	done := b.start(t, "E1_HelloSequence", "xs-done", "")
	b.waitFinished(t, done)
	for _, path := range []string{
		statusPath(waiting) + "/raiseEvent/CitySelected",
		statusPath(waiting) + "/terminate?reason=evil",
		statusPath(waiting) + "/suspend",
		statusPath(done) + "/restart",
		statusPath(done) + "/rewind",
	} {
		requireJSONError(t, b.send(t, http.MethodPost, path, "", evil), http.StatusForbidden, "Origin")
	}
	requireJSONError(t, b.send(t, http.MethodDelete, statusPath(done), "", evil), http.StatusForbidden, "Origin")
	st, err := b.e.Client.GetStatus(context.Background(), waiting)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusRunning, st.RuntimeStatus, "the waiting instance was not touched")
	_, err = b.e.Client.GetStatus(context.Background(), done)
	require.NoError(t, err, "the finished instance was not purged")

	// The server's own origin, and clients that send no Origin (curl, the
	// Durable Functions client) are let through; so is a body-less POST
	// without Content-Type (curl -X POST).
	same := map[string]string{"Origin": b.srv.URL, "Content-Type": "application/json"}
	require.Equal(t, http.StatusAccepted, b.send(t, http.MethodPost, start+"xs-7", `"x"`, same).code)
	require.Equal(t, http.StatusAccepted, b.send(t, http.MethodPost, start+"xs-8", "", nil).code)
	require.Equal(t, http.StatusAccepted, b.send(t, http.MethodPost, start+"xs-9", `"x"`,
		map[string]string{"Content-Type": "application/json; charset=utf-8"}).code)

	// DNS rebinding: the page's own name, now resolving to 127.0.0.1.
	for _, path := range []string{base + "/instances", statusPath(done), base + "/watch"} {
		requireJSONError(t, b.send(t, http.MethodGet, path, "", map[string]string{"Host": "evil.example:8080"}),
			http.StatusMisdirectedRequest, "Host", "evil.example")
	}
	requireJSONError(t, b.send(t, http.MethodPost, start+"xs-10", "", map[string]string{"Host": "evil.example"}),
		http.StatusMisdirectedRequest, "Host")
	b.requireNoInstance(t, "xs-10")
	for _, host := range []string{"localhost:8080", "LOCALHOST", "app.localhost", "127.0.0.1:9", "[::1]:8080", "jetflow:8080"} {
		r := b.send(t, http.MethodGet, statusPath(done), "", map[string]string{"Host": host})
		require.Equal(t, http.StatusOK, r.code, "Host %s: %s", host, r.body)
	}
	require.Equal(t, http.StatusOK, b.send(t, http.MethodGet, "/healthz", "", map[string]string{"Host": "evil.example"}).code)

	// Management URLs come from the address the connection came in on,
	// not from the Host header.
	r = b.send(t, http.MethodPost, start+"xs-11", "", map[string]string{"Host": "localhost:1"})
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	require.Equal(t, b.srv.URL+statusPath("xs-11"), r.header.Get("Location"))
	require.NotContains(t, string(r.body), "localhost:1")
	r = b.send(t, http.MethodGet, statusPath(waiting), "", map[string]string{"Host": "localhost:1"})
	require.Equal(t, http.StatusAccepted, r.code)
	require.Equal(t, b.srv.URL+statusPath(waiting), r.header.Get("Location"))
}

// TestCrossSitePublicURL: with a public URL (BaseURL), its host is served
// and other names are not.
func TestCrossSitePublicURL(t *testing.T) {
	t.Parallel()
	b := setupWith(t, httpapi.Config{BaseURL: "https://flows.example.com/api"})
	r := b.send(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/pub-1", "", map[string]string{
		"Host": "flows.example.com", "Origin": "https://flows.example.com"})
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	require.Equal(t, "https://flows.example.com/api"+statusPath("pub-1"), r.header.Get("Location"))
	requireJSONError(t, b.send(t, http.MethodGet, statusPath("pub-1"), "", map[string]string{"Host": "flows.example.org"}),
		http.StatusMisdirectedRequest, "flows.example.org")
}

// TestManagementURLsKeepCode: a start authenticated with ?code= gets
// management URLs with the same code, which work as they are (problem 3);
// a key sent as a header is echoed nowhere.
func TestManagementURLsKeepCode(t *testing.T) {
	t.Parallel()
	const key = "s3cret+key/with=chars"
	b := setupWith(t, httpapi.Config{APIKey: key})
	codeQ := "code=s3cret%2Bkey%2Fwith%3Dchars"
	r := b.send(t, http.MethodPost, base+"/orchestrators/CityRecommender/code-1?"+codeQ, "1", map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	var urls map[string]string
	require.NoError(t, json.Unmarshal(r.body, &urls))
	require.Equal(t, urls["statusQueryGetUri"], r.header.Get("Location"))
	for name, u := range urls {
		if name == "id" {
			continue
		}
		require.Contains(t, u, codeQ, "%s: %s", name, u)
	}
	require.Contains(t, urls["terminatePostUri"], "/terminate?reason={text}&"+codeQ)

	// Following them, as Durable Functions clients do, is let in.
	get := func(u string) int {
		resp, err := http.Get(u)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusAccepted, get(urls["statusQueryGetUri"]))
	b.waitWaiting(t, "code-1")
	resp, err := http.Post(strings.Replace(urls["sendEventPostUri"], "{eventName}", "CitySelected", 1), "application/json", strings.NewReader(`"Tokyo"`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	// A key in a header stays out of the answer.
	r = b.send(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/code-2", "", map[string]string{"x-functions-key": key})
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	require.NotContains(t, string(r.body), "code=")
	require.NotContains(t, r.header.Get("Location"), "code=")
	require.NotContains(t, string(r.body), "s3cret")
}

// TestInvalidUTF8: JSON text is UTF-8; a body that is not is refused with
// 400 and starts nothing (problem 4).
func TestInvalidUTF8(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad := "\"\xff\xfe\""
	requireJSONError(t, b.do(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/utf-1", bad), http.StatusBadRequest, "UTF-8", "byte 1")
	b.requireNoInstance(t, "utf-1")
	requireJSONError(t, b.do(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/utf-2", "{\"a\":\"ok\xc3\"}"), http.StatusBadRequest, "UTF-8")
	b.requireNoInstance(t, "utf-2")

	id := b.start(t, "CityRecommender", "utf-3", "1")
	b.waitRunning(t, id)
	requireJSONError(t, b.do(t, http.MethodPost, statusPath(id)+"/raiseEvent/CitySelected", bad), http.StatusBadRequest, "UTF-8")
	st, err := b.e.Client.GetStatus(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusRunning, st.RuntimeStatus, "the event was not delivered")

	// Valid UTF-8 beyond ASCII is kept as it is.
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/utf-4", `"Zürich 東京"`).code)
}
