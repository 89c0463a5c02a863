package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

const base = httpapi.BasePath

type testBundle struct {
	e   *testengine.Engine
	srv *httptest.Server
}

func setup(t *testing.T) *testBundle { t.Helper(); return setupWith(t, httpapi.Config{}) }

// setupWith is setup with an API configuration (its Logger is set).
func setupWith(t *testing.T, cfg httpapi.Config) *testBundle {
	t.Helper()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	cfg.Logger = e.Logger()
	srv := httptest.NewServer(httpapi.New(e.Client, cfg))
	t.Cleanup(srv.Close)
	return &testBundle{e: e, srv: srv}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

// do sends a request to path (relative to the server, or an absolute URL).
func (b *testBundle) do(t *testing.T, method, path, body string) response {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = b.srv.URL + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{code: resp.StatusCode, header: resp.Header, body: data}
}

// start starts an orchestrator over HTTP and checks the 202 answer.
func (b *testBundle) start(t *testing.T, name, id, input string) string {
	t.Helper()
	path := base + "/orchestrators/" + url.PathEscape(name)
	if id != "" {
		path += "/" + url.PathEscape(id)
	}
	r := b.do(t, http.MethodPost, path, input)
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	var got map[string]string
	require.NoError(t, json.Unmarshal(r.body, &got))
	return got["id"]
}

// waitStatus polls the status URL of id until cond holds for its answer,
// and returns the answer and the status it decodes.
func (b *testBundle) waitStatus(t *testing.T, id, what string, cond func(response, jetflow.Status) bool) (response, jetflow.Status) {
	t.Helper()
	var r response
	var st jetflow.Status
	testkit.WaitForNoError(t, 20*time.Second, fmt.Sprintf("instance %q %s", id, what), func() error {
		r = b.do(t, http.MethodGet, statusPath(id), "")
		st = jetflow.Status{}
		require.NoError(t, json.Unmarshal(r.body, &st), "body: %s", r.body)
		if cond(r, st) {
			return nil
		}
		return fmt.Errorf("last status %d %s", r.code, r.body)
	})
	return r, st
}

// waitFinished polls the status URL of id until it answers 200, and
// returns the final status.
func (b *testBundle) waitFinished(t *testing.T, id string) (response, jetflow.Status) {
	t.Helper()
	return b.waitStatus(t, id, "to finish", func(r response, _ jetflow.Status) bool {
		if r.code == http.StatusOK {
			return true
		}
		require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
		return false
	})
}

// waitRunning polls until the instance is Running and its custom status
// is set (the orchestrator is then waiting for an event).
func (b *testBundle) waitRunning(t *testing.T, id string) jetflow.Status {
	t.Helper()
	r, st := b.waitStatus(t, id, "to run", func(_ response, st jetflow.Status) bool {
		return st.RuntimeStatus == jetflow.StatusRunning && string(st.CustomStatus) != "null" && len(st.CustomStatus) > 0
	})
	require.Equal(t, http.StatusAccepted, r.code)
	return st
}

func statusPath(id string) string { return base + "/instances/" + url.PathEscape(id) }

func requireJSONError(t *testing.T, r response, code int, contains ...string) {
	t.Helper()
	require.Equal(t, code, r.code, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var body struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &body), "body: %s", r.body)
	require.NotEmpty(t, body.Error)
	for _, s := range contains {
		require.Contains(t, body.Error, s)
	}
}

var timeRE = regexp.MustCompile(`^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"$`)

func TestStart(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("NoID", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence", "")
		require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		var got map[string]string
		require.NoError(t, json.Unmarshal(r.body, &got))
		require.Len(t, got, 9)
		id := got["id"]
		require.NotEmpty(t, id)
		inst := b.srv.URL + base + "/instances/" + id
		require.Equal(t, map[string]string{
			"id":                    id,
			"statusQueryGetUri":     inst,
			"sendEventPostUri":      inst + "/raiseEvent/{eventName}",
			"terminatePostUri":      inst + "/terminate?reason={text}",
			"purgeHistoryDeleteUri": inst,
			"restartPostUri":        inst + "/restart",
			"suspendPostUri":        inst + "/suspend?reason={text}",
			"resumePostUri":         inst + "/resume?reason={text}",
			"rewindPostUri":         inst + "/rewind?reason={text}",
		}, got)
		require.Equal(t, inst, r.header.Get("Location"))
	})

	t.Run("WithID", func(t *testing.T) {
		t.Parallel()
		// Ids may hold characters that need escaping in a URL.
		id := "order:42 é+x"
		require.Equal(t, id, b.start(t, "E1_HelloSequence", id, ""))
		r := b.do(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/"+url.PathEscape(id+"2"), `"ignored input"`)
		require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
		var got map[string]string
		require.NoError(t, json.Unmarshal(r.body, &got))
		require.Equal(t, id+"2", got["id"])
		require.Equal(t, b.srv.URL+base+"/instances/order:42%20%C3%A9+x2", got["statusQueryGetUri"])
		require.Equal(t, got["statusQueryGetUri"], r.header.Get("Location"))

		// The URLs in the answer work as they are.
		_, st := b.waitFinished(t, id)
		require.Equal(t, id, st.InstanceID)
		r = b.do(t, http.MethodGet, got["statusQueryGetUri"], "")
		require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, r.code)
		require.NoError(t, json.Unmarshal(r.body, &st))
		require.Equal(t, id+"2", st.InstanceID)
		require.JSONEq(t, `"ignored input"`, string(st.Input))
	})

	t.Run("DuplicateRunningID", func(t *testing.T) {
		t.Parallel()
		b.start(t, "CityRecommender", "dup-1", "1")
		r := b.do(t, http.MethodPost, base+"/orchestrators/CityRecommender/dup-1", "2")
		requireJSONError(t, r, http.StatusConflict, "dup-1")
		// Nothing changed: the instance still has its first input.
		st := b.waitRunning(t, "dup-1")
		require.JSONEq(t, `1`, string(st.Input))
	})

	t.Run("RestartFinishedID", func(t *testing.T) {
		t.Parallel()
		b.start(t, "E1_HelloSequence", "again-1", "")
		b.waitFinished(t, "again-1")
		b.start(t, "E1_HelloSequence", "again-1", `"second"`)
		_, st := b.waitFinished(t, "again-1")
		require.JSONEq(t, `"second"`, string(st.Input))
	})

	t.Run("BadInput", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name     string
			path     string
			body     string
			code     int
			contains []string
		}{
			{"UnknownOrchestrator", base + "/orchestrators/NoSuchThing", "", http.StatusBadRequest, []string{"NoSuchThing", "unknown orchestrator"}},
			{"BadJSON", base + "/orchestrators/E1_HelloSequence/badjson", `{"a":`, http.StatusBadRequest, []string{"not valid JSON"}},
			{"TwoValues", base + "/orchestrators/E1_HelloSequence/twovalues", `1 2`, http.StatusBadRequest, []string{"not valid JSON"}},
			{"IDWithSlash", base + "/orchestrators/E1_HelloSequence/a%2Fb", "", http.StatusBadRequest, []string{"invalid instance id", "'/'"}},
			{"IDWithQuestionMark", base + "/orchestrators/E1_HelloSequence/a%3Fb", "", http.StatusBadRequest, []string{"invalid instance id"}},
			{"IDTooLong", base + "/orchestrators/E1_HelloSequence/" + strings.Repeat("x", 101), "", http.StatusBadRequest, []string{"invalid instance id", "101"}},
			{"PayloadOverClientLimit", base + "/orchestrators/E1_HelloSequence/big1", `"` + strings.Repeat("x", 600<<10) + `"`, http.StatusRequestEntityTooLarge, []string{"too large"}},
			{"BodyOverLimit", base + "/orchestrators/E1_HelloSequence/big2", `"` + strings.Repeat("x", 2<<20) + `"`, http.StatusRequestEntityTooLarge, []string{"limit"}},
		} {
			r := b.do(t, http.MethodPost, tt.path, tt.body)
			requireJSONError(t, r, tt.code, tt.contains...)
		}
		// Nothing was created.
		for _, id := range []string{"badjson", "twovalues", "big1", "big2"} {
			requireJSONError(t, b.do(t, http.MethodGet, statusPath(id), ""), http.StatusNotFound, id)
		}
	})
}

func TestStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("HelloSequence", func(t *testing.T) {
		t.Parallel()
		id := b.start(t, "E1_HelloSequence", "hello-1", "")
		r := b.do(t, http.MethodGet, statusPath(id), "")
		if r.code == http.StatusAccepted {
			require.Equal(t, b.srv.URL+statusPath(id), r.header.Get("Location"))
			require.Equal(t, "1", r.header.Get("Retry-After"))
		} else {
			require.Equal(t, http.StatusOK, r.code, "body: %s", r.body)
		}
		r, st := b.waitFinished(t, id)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.Empty(t, r.header.Get("Location"))
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
		require.Equal(t, "E1_HelloSequence", st.Name)
		require.Equal(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(st.Output))
		require.Equal(t, `"London"`, string(st.CustomStatus))

		// The body is exactly the status as jetflow.Status marshals it.
		want, err := json.Marshal(st)
		require.NoError(t, err)
		require.Equal(t, string(want), string(r.body))

		var raw map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(r.body, &raw))
		require.Equal(t, "null", string(raw["input"]))
		require.Regexp(t, timeRE, string(raw["createdTime"]))
		require.Regexp(t, timeRE, string(raw["lastUpdatedTime"]))
	})

	t.Run("EveryKeyWhileRunning", func(t *testing.T) {
		t.Parallel()
		id := b.start(t, "SetStatusTest", "keys-1", "")
		b.waitRunning(t, id)
		r := b.do(t, http.MethodGet, statusPath(id), "")
		require.Equal(t, http.StatusAccepted, r.code)
		require.Equal(t, b.srv.URL+statusPath(id), r.header.Get("Location"))
		require.Equal(t, "1", r.header.Get("Retry-After"))
		var raw map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(r.body, &raw))
		keys := make([]string, 0, len(raw))
		for k := range raw {
			keys = append(keys, k)
		}
		require.ElementsMatch(t, []string{"name", "instanceId", "runtimeStatus", "input", "customStatus",
			"output", "createdTime", "lastUpdatedTime", "activityProgress", "requestId"}, keys)
		require.Equal(t, `"SetStatusTest"`, string(raw["name"]))
		require.Equal(t, `"keys-1"`, string(raw["instanceId"]))
		require.Equal(t, `"Running"`, string(raw["runtimeStatus"]))
		require.Equal(t, "null", string(raw["input"]))
		require.Equal(t, "null", string(raw["output"]))
		require.JSONEq(t, `{"nextActions":["A","B","C"],"foo":2}`, string(raw["customStatus"]))
		require.Regexp(t, timeRE, string(raw["createdTime"]))
		require.Regexp(t, timeRE, string(raw["lastUpdatedTime"]))
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		requireJSONError(t, b.do(t, http.MethodGet, statusPath("no-such-id"), ""), http.StatusNotFound, "no-such-id")
	})

	t.Run("InvalidID", func(t *testing.T) {
		t.Parallel()
		requireJSONError(t, b.do(t, http.MethodGet, base+"/instances/a%23b", ""), http.StatusBadRequest, "invalid instance id")
	})
}

func TestRaiseEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("CityRecommender", func(t *testing.T) {
		t.Parallel()
		id := b.start(t, "CityRecommender", "city 1", "2")
		st := b.waitRunning(t, id)
		require.JSONEq(t, `{"recommendedCities":["Seattle","London"],"recommendedSeasons":["Summer"]}`, string(st.CustomStatus))

		ev := statusPath(id) + "/raiseEvent/CitySelected"
		requireJSONError(t, b.do(t, http.MethodPost, ev, `London`), http.StatusBadRequest, "not valid JSON")
		r := b.do(t, http.MethodPost, ev, `"London"`)
		require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)

		_, st = b.waitFinished(t, id)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
		require.Equal(t, `"London"`, string(st.Output))

		requireJSONError(t, b.do(t, http.MethodPost, ev, `"Tokyo"`), http.StatusGone, "city 1")
	})

	t.Run("EmptyBody", func(t *testing.T) {
		t.Parallel()
		id := b.start(t, "SetStatusTest", "set-1", "")
		b.waitRunning(t, id)
		r := b.do(t, http.MethodPost, statusPath(id)+"/raiseEvent/Done", "")
		require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
		_, st := b.waitFinished(t, id)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		requireJSONError(t, b.do(t, http.MethodPost, statusPath("nobody")+"/raiseEvent/Done", `1`), http.StatusNotFound, "nobody")
	})

	t.Run("InvalidID", func(t *testing.T) {
		t.Parallel()
		requireJSONError(t, b.do(t, http.MethodPost, base+"/instances/a%5Cb/raiseEvent/Done", `1`), http.StatusBadRequest, "invalid instance id")
	})
}

func TestTerminate(t *testing.T) {
	t.Parallel()
	b := setup(t)

	id := b.start(t, "SetStatusTest", "term-1", "")
	b.waitRunning(t, id)
	r := b.do(t, http.MethodPost, statusPath(id)+"/terminate?reason="+url.QueryEscape("no longer needed"), "")
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	_, st := b.waitFinished(t, id)
	require.Equal(t, jetflow.StatusTerminated, st.RuntimeStatus)
	require.Equal(t, `"no longer needed"`, string(st.Output))

	requireJSONError(t, b.do(t, http.MethodPost, statusPath(id)+"/terminate", ""), http.StatusGone, "term-1")
	requireJSONError(t, b.do(t, http.MethodPost, statusPath("ghost")+"/terminate?reason=x", ""), http.StatusNotFound, "ghost")
}

func TestSuspendResume(t *testing.T) {
	t.Parallel()
	b := setup(t)

	id := b.start(t, "SetStatusTest", "pause-1", "")
	b.waitRunning(t, id)
	r := b.do(t, http.MethodPost, statusPath(id)+"/suspend?reason=maintenance", "")
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	r, _ = b.waitStatus(t, id, "to be suspended", func(_ response, st jetflow.Status) bool {
		return st.RuntimeStatus == jetflow.StatusSuspended
	})
	require.Equal(t, http.StatusAccepted, r.code, "a suspended instance is not finished")
	// The event is kept while suspended and applied on resume.
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, statusPath(id)+"/raiseEvent/Done", "").code)
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, statusPath(id)+"/resume", "").code)
	_, st := b.waitFinished(t, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)

	requireJSONError(t, b.do(t, http.MethodPost, statusPath(id)+"/suspend", ""), http.StatusGone, "pause-1")
	requireJSONError(t, b.do(t, http.MethodPost, statusPath(id)+"/resume", ""), http.StatusGone, "pause-1")
	requireJSONError(t, b.do(t, http.MethodPost, statusPath("ghost")+"/suspend", ""), http.StatusNotFound, "ghost")
}

func TestStartWithTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)

	// Finishes in time: 200 with the final status.
	r := b.do(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/wait-1?timeout=20", "")
	require.Equal(t, http.StatusOK, r.code, "body: %s", r.body)
	var st jetflow.Status
	require.NoError(t, json.Unmarshal(r.body, &st))
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.JSONEq(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(st.Output))

	// Still waiting for an event when time runs out: the usual 202.
	r = b.do(t, http.MethodPost, base+"/orchestrators/SetStatusTest/wait-2?timeout=1", "")
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	var body map[string]string
	require.NoError(t, json.Unmarshal(r.body, &body))
	require.Equal(t, "wait-2", body["id"])
	require.True(t, strings.HasSuffix(body["suspendPostUri"], "/instances/wait-2/suspend?reason={text}"), body["suspendPostUri"])
	require.True(t, strings.HasSuffix(body["resumePostUri"], "/instances/wait-2/resume?reason={text}"), body["resumePostUri"])

	for _, bad := range []string{"x", "-1", "3601", "1.5"} {
		requireJSONError(t, b.do(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence?timeout="+bad, ""), http.StatusBadRequest, "timeout")
	}
}

// TestStartIdempotencyKey: a start repeated with the same Idempotency-Key
// (a client retrying after a 503) answers with the run the first made,
// even a finished one, and writes nothing; another key is another run.
func TestStartIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	path := base + "/orchestrators/E1_HelloSequence/idem-1"
	post := func(key string) response {
		req, err := http.NewRequest(http.MethodPost, b.srv.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", key)
		resp, err := b.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return response{code: resp.StatusCode, header: resp.Header, body: data}
	}
	first := post("req-1")
	require.Equal(t, http.StatusAccepted, first.code, "body: %s", first.body)
	_, st := b.waitFinished(t, "idem-1")
	require.Equal(t, "req-1", st.RequestID)
	ctx := b.e.Context(30 * time.Second)
	before, err := b.e.Client.GetStatusWithRevision(ctx, "idem-1")
	require.NoError(t, err)

	again := post("req-1")
	require.Equal(t, http.StatusAccepted, again.code, "body: %s", again.body)
	require.JSONEq(t, string(first.body), string(again.body))
	after, err := b.e.Client.GetStatusWithRevision(ctx, "idem-1")
	require.NoError(t, err)
	require.Equal(t, before.Revision, after.Revision, "the retry wrote nothing")

	require.Equal(t, http.StatusAccepted, post("req-2").code)
	testkit.WaitFor(t, 10*time.Second, "another key to start another run", func() bool {
		st, err := b.e.Client.GetStatus(ctx, "idem-1")
		return err == nil && st.RequestID == "req-2"
	})

	requireJSONError(t, post(strings.Repeat("k", 129)), http.StatusBadRequest, "request id")
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	b := setupWith(t, httpapi.Config{APIKey: "s3cret"})

	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/healthz", "").code, "healthz needs no key")
	for _, path := range []string{statusPath("x"), base + "/watch", "/nowhere"} {
		requireJSONError(t, b.do(t, http.MethodGet, path, ""), http.StatusUnauthorized, "API key")
		requireJSONError(t, b.do(t, http.MethodGet, path+"?code=wrong", ""), http.StatusUnauthorized, "API key")
	}
	requireJSONError(t, b.do(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/key-1", ""), http.StatusUnauthorized)
	_, err := b.e.Client.GetStatus(context.Background(), "key-1")
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "a refused request changes nothing")

	r := b.do(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/key-1?code=s3cret", "")
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+statusPath("key-1"), nil)
	require.NoError(t, err)
	req.Header.Set("x-functions-key", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, resp.StatusCode)
}

func TestStatusOptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.start(t, "E1_HelloSequence", "opts-1", `{"unused":true}`)
	b.waitFinished(t, id)

	var plain map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b.do(t, http.MethodGet, statusPath(id)+"?showInput=false", "").body, &plain))
	require.Equal(t, "null", string(plain["input"]))
	require.NotContains(t, plain, "historyEvents")

	type event struct {
		EventType, FunctionName, OrchestrationStatus string
		Result                                       json.RawMessage
		ScheduledTime                                *string
	}
	var withHistory struct {
		Input         json.RawMessage `json:"input"`
		HistoryEvents []event         `json:"historyEvents"`
	}
	r := b.do(t, http.MethodGet, statusPath(id)+"?showHistory=true&showHistoryOutput=true", "")
	require.Equal(t, http.StatusOK, r.code)
	require.NoError(t, json.Unmarshal(r.body, &withHistory), "body: %s", r.body)
	require.JSONEq(t, `{"unused":true}`, string(withHistory.Input))
	var types []string
	for _, e := range withHistory.HistoryEvents {
		types = append(types, e.EventType)
	}
	require.Equal(t, []string{"ExecutionStarted", "TaskCompleted", "TaskCompleted", "TaskCompleted", "ExecutionCompleted"}, types)
	require.Equal(t, "E1_SayHello", withHistory.HistoryEvents[1].FunctionName)
	require.NotNil(t, withHistory.HistoryEvents[1].ScheduledTime)
	require.JSONEq(t, `"Hello Tokyo!"`, string(withHistory.HistoryEvents[1].Result))
	require.Equal(t, "Completed", withHistory.HistoryEvents[4].OrchestrationStatus)

	r = b.do(t, http.MethodGet, statusPath(id)+"?showHistory=true", "")
	var noOutput struct {
		HistoryEvents []event `json:"historyEvents"`
	}
	require.NoError(t, json.Unmarshal(r.body, &noOutput))
	require.Len(t, noOutput.HistoryEvents, 5)
	require.Empty(t, noOutput.HistoryEvents[1].Result, "results only with showHistoryOutput")

	failed := b.start(t, "CityRecommender", "opts-2", "7")
	rf, st := b.waitFinished(t, failed)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	require.Equal(t, http.StatusOK, rf.code)
	require.Equal(t, http.StatusInternalServerError, b.do(t, http.MethodGet, statusPath(failed)+"?returnInternalServerErrorOnFailure=true", "").code)

	requireJSONError(t, b.do(t, http.MethodGet, statusPath(id)+"?showHistory=maybe", ""), http.StatusBadRequest, "showHistory")
}

func TestRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.start(t, "CityRecommender", "restart-1", "2")
	requireJSONError(t, b.do(t, http.MethodPost, statusPath(id)+"/restart", ""), http.StatusGone, "only a finished instance")
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, statusPath(id)+"/raiseEvent/CitySelected", `"London"`).code)
	b.waitFinished(t, id)

	// A new run under a new id, with the same input.
	r := b.do(t, http.MethodPost, statusPath(id)+"/restart", "")
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	var started map[string]string
	require.NoError(t, json.Unmarshal(r.body, &started))
	require.NotEqual(t, id, started["id"])
	st := b.waitRunning(t, started["id"])
	require.JSONEq(t, "2", string(st.Input))
	require.JSONEq(t, `{"recommendedCities":["Seattle","London"],"recommendedSeasons":["Summer"]}`, string(st.CustomStatus))

	// The same id again.
	r = b.do(t, http.MethodPost, statusPath(id)+"/restart?restartWithNewInstanceId=false", "")
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	require.NoError(t, json.Unmarshal(r.body, &started))
	require.Equal(t, id, started["id"])
	b.waitRunning(t, id)

	requireJSONError(t, b.do(t, http.MethodPost, statusPath("ghost")+"/restart", ""), http.StatusNotFound, "ghost")
	requireJSONError(t, b.do(t, http.MethodPost, statusPath(id)+"/restart?restartWithNewInstanceId=perhaps", ""), http.StatusBadRequest, "restartWithNewInstanceId")
}

func TestPurge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.start(t, "SetStatusTest", "purge 1", "")
	b.waitRunning(t, id)
	// 404, as Durable Functions answers when nothing was purged (its
	// clients take any other code as a failure).
	requireJSONError(t, b.do(t, http.MethodDelete, statusPath(id), ""), http.StatusNotFound, "purge 1", "Running")

	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, statusPath(id)+"/raiseEvent/Done", "").code)
	b.waitFinished(t, id)
	r := b.do(t, http.MethodDelete, statusPath(id), "")
	require.Equal(t, http.StatusOK, r.code, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.JSONEq(t, `{"instancesDeleted":1}`, string(r.body))

	requireJSONError(t, b.do(t, http.MethodGet, statusPath(id), ""), http.StatusNotFound, "purge 1")
	requireJSONError(t, b.do(t, http.MethodDelete, statusPath(id), ""), http.StatusNotFound, "purge 1")
	requireJSONError(t, b.do(t, http.MethodDelete, base+"/instances/bad%23id", ""), http.StatusBadRequest)
}

func TestRewind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.start(t, "SetStatusTest", "rewind-running", "")
	b.waitRunning(t, id)
	// Plain text errors: the Durable Functions JS client makes the body its
	// error message.
	r := b.do(t, http.MethodPost, statusPath(id)+"/rewind", "")
	require.Equal(t, http.StatusGone, r.code)
	require.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
	require.Contains(t, string(r.body), "only a failed instance")
	r = b.do(t, http.MethodPost, statusPath("ghost")+"/rewind", "")
	require.Equal(t, http.StatusNotFound, r.code)
	require.Equal(t, `rewinding: instance not found: "ghost"`, string(r.body))

	// ReserveTicket fails on an input that is not a user id.
	id = b.start(t, "ReserveTicket", "rewind-failed", "5")
	_, st := b.waitFinished(t, id)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	r = b.do(t, http.MethodPost, statusPath(id)+"/rewind?reason=retry", "")
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	require.Empty(t, r.body)
	// The input is still wrong: it fails again, after the rewind.
	testkit.WaitFor(t, 20*time.Second, "the instance to fail again after the rewind", func() bool {
		r := b.do(t, http.MethodGet, statusPath(id)+"?showHistory=true", "")
		return strings.Contains(string(r.body), `"ExecutionRewound"`) && r.code == http.StatusOK
	})
}

func TestPurgeMany(t *testing.T) {
	t.Parallel()
	b := setup(t)
	from := url.QueryEscape(time.Now().UTC().Add(-time.Minute).Format(jetflow.TimeFormat))
	for i := range 3 {
		b.waitFinished(t, b.start(t, "E1_HelloSequence", fmt.Sprintf("bulk-%d", i), ""))
	}
	running := b.start(t, "SetStatusTest", "bulk-running", "")
	b.waitRunning(t, running)

	requireJSONError(t, b.do(t, http.MethodDelete, base+"/instances", ""), http.StatusBadRequest, "createdTimeFrom")
	requireJSONError(t, b.do(t, http.MethodDelete, base+"/instances?createdTimeFrom=soon", ""), http.StatusBadRequest, "createdTimeFrom")
	requireJSONError(t, b.do(t, http.MethodDelete, base+"/instances?createdTimeFrom="+from+"&runtimeStatus=Done", ""), http.StatusBadRequest, "runtimeStatus")
	// Created before the window: nothing matches.
	requireJSONError(t, b.do(t, http.MethodDelete, base+"/instances?createdTimeFrom=2001-01-01T00:00:00Z&createdTimeTo=2001-01-02T00:00:00Z", ""), http.StatusNotFound)

	r := b.do(t, http.MethodDelete, base+"/instances/?createdTimeFrom="+from+"&runtimeStatus=Completed,Running", "")
	require.Equal(t, http.StatusOK, r.code, "body: %s", r.body)
	require.JSONEq(t, `{"instancesDeleted":3}`, string(r.body), "the running instance is not purged")
	for i := range 3 {
		requireJSONError(t, b.do(t, http.MethodGet, statusPath(fmt.Sprintf("bulk-%d", i)), ""), http.StatusNotFound)
	}
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodGet, statusPath(running), "").code)
	requireJSONError(t, b.do(t, http.MethodDelete, base+"/instances?createdTimeFrom="+from, ""), http.StatusNotFound)
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)

	r := b.do(t, http.MethodGet, "/healthz", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "ok\n", string(r.body))

	requireJSONError(t, b.do(t, http.MethodGet, "/nowhere", ""), http.StatusNotFound, "/nowhere")
	requireJSONError(t, b.do(t, http.MethodGet, base+"/orchestrators", ""), http.StatusNotFound)
	r = b.do(t, http.MethodPut, statusPath("x"), "")
	requireJSONError(t, r, http.StatusMethodNotAllowed, "PUT")
	require.Contains(t, r.header.Get("Allow"), http.MethodGet)
	requireJSONError(t, b.do(t, http.MethodGet, base+"/orchestrators/E1_HelloSequence", ""), http.StatusMethodNotAllowed)
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	srv := httptest.NewServer(httpapi.New(e.Client, httpapi.Config{BaseURL: "https://flows.example.com/api/", Logger: e.Logger()}))
	t.Cleanup(srv.Close)
	b := &testBundle{e: e, srv: srv}
	r := b.do(t, http.MethodPost, base+"/orchestrators/E1_HelloSequence/base-1", "")
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	require.Equal(t, "https://flows.example.com/api"+base+"/instances/base-1", r.header.Get("Location"))
}

func TestHealthzNotReady(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(httpapi.New(nil, httpapi.Config{Ready: func() error { return io.ErrClosedPipe }}))
	t.Cleanup(srv.Close)
	b := &testBundle{srv: srv}
	requireJSONError(t, b.do(t, http.MethodGet, "/healthz", ""), http.StatusServiceUnavailable, "not ready")
}

func TestPanicBecomes500(t *testing.T) {
	t.Parallel()
	// A nil client makes every call panic: the handler must answer 500.
	srv := httptest.NewServer(httpapi.New(nil, httpapi.Config{Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	b := &testBundle{srv: srv}
	requireJSONError(t, b.do(t, http.MethodGet, statusPath("x"), ""), http.StatusInternalServerError, "internal error")
	// The server still works.
	r := b.do(t, http.MethodGet, "/healthz", "")
	require.Equal(t, http.StatusOK, r.code)
}

func TestNATSDown(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1})
	srv := httptest.NewServer(httpapi.New(e.Client, httpapi.Config{Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	b := &testBundle{srv: srv}
	e.Conn.Close()
	r := b.do(t, http.MethodGet, statusPath("x"), "")
	requireJSONError(t, r, http.StatusServiceUnavailable, "connection closed")
	require.Equal(t, "1", r.header.Get("Retry-After"))
}
