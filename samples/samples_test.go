package samples_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

func newEngine(t *testing.T, opts samples.Options) *testengine.Engine {
	return testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error { return samples.Register(r, opts) }})
}

// follow collects every status change of an instance until it finishes.
func follow(t *testing.T, e *testengine.Engine, id string) <-chan []client.Update {
	t.Helper()
	ch, err := e.Client.WatchStatus(e.Context(30*time.Second), id, 0)
	require.NoError(t, err)
	out := make(chan []client.Update, 1)
	go func() {
		var all []client.Update
		for u := range ch {
			all = append(all, u)
		}
		out <- all
	}()
	return out
}

func customStatuses(us []client.Update) []string {
	var out []string
	for _, u := range us {
		s := string(u.CustomStatus)
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

func TestHelloSequence(t *testing.T) {
	t.Parallel()
	e := newEngine(t, samples.Options{})
	ctx := e.Context(30 * time.Second)
	id := "hello-1"
	updates := follow(t, e, id)
	_, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(id))
	require.NoError(t, err)
	us := <-updates
	for _, u := range us {
		t.Logf("%s %s %s %s", u.RuntimeStatus, u.CustomStatus, u.Output, u.LastUpdatedTime)
	}
	final := us[len(us)-1]
	require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)
	require.JSONEq(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(final.Output))
	require.Equal(t, []string{"null", `"Tokyo"`, `"Seattle"`, `"London"`}, customStatuses(us))
	require.Equal(t, jetflow.StatusPending, us[0].RuntimeStatus)
	b, err := json.Marshal(final.Status)
	require.NoError(t, err)
	t.Log(string(b))
}
