package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

// TestUIMount: with Config.UI, / redirects to /ui/ and the page's files
// are served without a key while every API route still needs one;
// without it, neither route exists.
func TestUIMount(t *testing.T) {
	t.Parallel()
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("page " + r.URL.Path)) })
	b := setupWith(t, httpapi.Config{APIKey: adminKey, UI: page})
	noFollow := *b.srv.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for path, want := range map[string]string{"/": "/ui/", "/ui": "/ui/"} {
		resp, err := noFollow.Get(b.srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.True(t, resp.StatusCode >= 300 && resp.StatusCode < 400, "%s: %d", path, resp.StatusCode)
		require.Equal(t, want, resp.Header.Get("Location"), path)
	}
	for _, path := range []string{"/ui/", "/ui/app.js"} {
		r := b.send(t, http.MethodGet, path, "", nil)
		require.Equal(t, http.StatusOK, r.code, path)
		require.Equal(t, "page "+path, string(r.body))
	}
	requireJSONError(t, b.send(t, http.MethodGet, base+"/instances", "", nil), http.StatusUnauthorized, "API key")
	requireJSONError(t, b.send(t, http.MethodPost, "/ui/", "", nil), http.StatusUnauthorized)
	// The page's files pass the Host check like every route.
	requireJSONError(t, b.send(t, http.MethodGet, "/ui/", "", map[string]string{"Host": "evil.example.com"}), http.StatusMisdirectedRequest)

	plain := setup(t)
	requireJSONError(t, plain.do(t, http.MethodGet, "/ui/", ""), http.StatusNotFound)
	requireJSONError(t, plain.do(t, http.MethodGet, "/", ""), http.StatusNotFound)
}

// TestWhoAmI: GET /whoami names the key and its scopes, for the page to
// offer only what the key may do; 401 without a valid key.
func TestWhoAmI(t *testing.T) {
	t.Parallel()
	keys, err := httpapi.ParseKeys([]byte(`{"keys": [
		{"name": "dashboard", "key": "` + readKey + `", "scopes": ["read"]},
		{"name": "shop", "key": "` + shopKey + `", "scopes": ["start:E1_HelloSequence", "raise:CityRecommender"]}
	]}`))
	require.NoError(t, err)
	ring, err := httpapi.NewKeyring(keys)
	require.NoError(t, err)
	b := setupWith(t, httpapi.Config{APIKey: adminKey, Keys: ring})
	type whoAmI struct {
		Name        string   `json:"name"`
		Scopes      []string `json:"scopes"`
		KeyRequired bool     `json:"keyRequired"`
	}
	ask := func(k string) whoAmI {
		t.Helper()
		r := b.send(t, http.MethodGet, base+"/whoami", "", key(k))
		require.Equal(t, http.StatusOK, r.code, "%s", r.body)
		var w whoAmI
		require.NoError(t, json.Unmarshal(r.body, &w))
		return w
	}
	require.Equal(t, whoAmI{"admin", []string{"admin"}, true}, ask(adminKey))
	require.Equal(t, whoAmI{"dashboard", []string{"read"}, true}, ask(readKey))
	require.Equal(t, whoAmI{"shop", []string{"start:E1_HelloSequence", "raise:CityRecommender"}, true}, ask(shopKey))
	requireJSONError(t, b.send(t, http.MethodGet, base+"/whoami", "", nil), http.StatusUnauthorized, "API key")
	requireJSONError(t, b.send(t, http.MethodGet, base+"/whoami", "", key("not-a-key-0123456789")), http.StatusUnauthorized)

	r := setup(t).do(t, http.MethodGet, base+"/whoami", "")
	require.Equal(t, http.StatusOK, r.code)
	require.JSONEq(t, `{"name":"anonymous","scopes":["admin"],"keyRequired":false}`, string(r.body))
}

// TestTasks: GET /instances/{id}/tasks shows each activity attempt of a
// call with retries, the timers between them, a sub-orchestration with its
// id (whose own tasks name the parent), an event with the wait before it,
// what is still pending, and what the end of the execution abandoned.
func TestTasks(t *testing.T) {
	t.Parallel()
	fails := 0
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		if err := samples.Register(r, samples.Options{}); err != nil {
			return err
		}
		if err := r.AddActivity("Flaky", func(*jetflow.ActivityContext) (any, error) {
			if fails++; fails < 3 {
				return nil, errors.New("not yet")
			}
			return "ok", nil
		}); err != nil {
			return err
		}
		return r.AddOrchestrator("TasksParent", func(ctx *jetflow.OrchestrationContext) (any, error) {
			p := jetflow.RetryPolicy{MaxAttempts: 3, FirstRetryInterval: 10 * time.Millisecond, BackoffCoefficient: 1}
			if err := ctx.CallActivity("Flaky", nil, jetflow.WithRetry(p)).Await(nil); err != nil {
				return nil, err
			}
			if err := ctx.CallSubOrchestrator("E1_HelloSequence", nil).Await(nil); err != nil {
				return nil, err
			}
			ev := ctx.WaitForExternalEvent("Go", jetflow.WithTimeout(time.Hour))
			_ = ctx.SetCustomStatus("waiting")
			return nil, ev.Await(nil)
		})
	}})
	srv := httptest.NewServer(httpapi.New(e.Client, httpapi.Config{Logger: e.Logger()}))
	t.Cleanup(srv.Close)
	b := &testBundle{e: e, srv: srv}
	id := b.start(t, "TasksParent", "tasks-1", "")
	b.waitWaiting(t, id)

	tasks := func(id string) client.Tasks {
		t.Helper()
		r := b.do(t, http.MethodGet, statusPath(id)+"/tasks", "")
		require.Equal(t, http.StatusOK, r.code, "%s", r.body)
		var got client.Tasks
		require.NoError(t, json.Unmarshal(r.body, &got))
		return got
	}
	type brief struct {
		Kind, Name, State string
		Attempt           int32
		Ended             bool
	}
	briefs := func(ts client.Tasks) []brief {
		var out []brief
		for _, x := range ts.Tasks {
			out = append(out, brief{x.Kind, x.Name, x.State, x.Attempt, x.EndTime != nil})
			require.False(t, x.ScheduledTime.IsZero())
			if x.EndTime != nil {
				require.False(t, x.EndTime.Before(x.ScheduledTime), "%+v ends before it starts", x)
			}
		}
		return out
	}
	got := tasks(id)
	require.Nil(t, got.Parent)
	require.Equal(t, []brief{
		{"activity", "Flaky", "failed", 1, true},
		{"timer", "", "completed", 0, true},
		{"activity", "Flaky", "failed", 2, true},
		{"timer", "", "completed", 0, true},
		{"activity", "Flaky", "completed", 3, true},
		{"subOrchestration", "E1_HelloSequence", "completed", 0, true},
		{"timer", "", "pending", 0, false},
	}, briefs(got))
	require.Equal(t, "not yet", got.Tasks[0].Failure)
	require.NotNil(t, got.Tasks[6].FireAt)
	require.WithinDuration(t, time.Now().Add(time.Hour), *got.Tasks[6].FireAt, time.Minute)
	child := got.Tasks[5].InstanceID
	require.Equal(t, id+":5", child)

	kid := tasks(child)
	require.Equal(t, &client.TaskParent{InstanceID: id, Name: "TasksParent"}, kid.Parent)
	require.Len(t, kid.Tasks, 3)

	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, statusPath(id)+"/raiseEvent/Go", "").code)
	b.waitFinished(t, id)
	got = tasks(id)
	require.Equal(t, brief{"timer", "", "abandoned", 0, false}, briefs(got)[6], "the execution ended before the timer")
	ev := got.Tasks[7]
	require.Equal(t, brief{"event", "Go", "completed", 0, true}, briefs(got)[7])
	require.Equal(t, int32(-1), ev.ID)
	require.False(t, ev.ScheduledTime.Before(got.Tasks[6].ScheduledTime), "the wait began at the turn that made its timer")

	requireJSONError(t, b.do(t, http.MethodGet, statusPath("nobody")+"/tasks", ""), http.StatusNotFound)
	requireJSONError(t, b.do(t, http.MethodGet, statusPath("a#b")+"/tasks", ""), http.StatusBadRequest)
}
