package client_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

func newEngine(t *testing.T) *testengine.Engine {
	t.Helper()
	return testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
}

// untilCustomStatus receives updates until one has a custom status.
func untilCustomStatus(t *testing.T, ch <-chan client.Update) client.Update {
	t.Helper()
	for {
		if u := testkit.Receive(t, ch, 10*time.Second); len(u.CustomStatus) > 0 && string(u.CustomStatus) != "null" {
			return u
		}
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ctx := e.Context(30 * time.Second)
	const unknown = "unknown-instance"
	start := func(name string, opts ...client.StartOption) func(context.Context, *client.Client) error {
		return func(ctx context.Context, c *client.Client) error {
			_, err := c.StartOrchestration(ctx, name, opts...)
			return err
		}
	}
	withID := func(id string) func(context.Context, *client.Client) error {
		return start("E1_HelloSequence", client.WithInstanceID(id))
	}
	tooLarge := json.RawMessage(`"` + strings.Repeat("x", client.MaxPayload-1) + `"`)
	for _, tc := range []struct {
		name string
		call func(context.Context, *client.Client) error
		// id, when valid, must still have no status after the call.
		id        string
		withError error
	}{
		{name: "id of 101 characters", call: withID(strings.Repeat("x", 101)), withError: jetflow.ErrInvalidInstanceID},
		{name: "id with a slash", call: withID("a/b"), withError: jetflow.ErrInvalidInstanceID},
		{name: "id with a hash", call: withID("a#b"), withError: jetflow.ErrInvalidInstanceID},
		{name: "id with a question mark", call: withID("a?b"), withError: jetflow.ErrInvalidInstanceID},
		{name: "id with a backslash", call: withID(`a\b`), withError: jetflow.ErrInvalidInstanceID},
		{name: "id with a control character", call: withID("a\x01b"), withError: jetflow.ErrInvalidInstanceID},
		{name: "id with a newline", call: withID("a\nb"), withError: jetflow.ErrInvalidInstanceID},
		{name: "id not UTF-8", call: withID("a\xffb"), withError: jetflow.ErrInvalidInstanceID},
		{name: "empty orchestrator name", call: start("", client.WithInstanceID("b1")), id: "b1", withError: jetflow.ErrInvalidName},
		{name: "unknown orchestrator", call: start("E1_HelloSequenc", client.WithInstanceID("b2")), id: "b2", withError: jetflow.ErrUnknownOrchestrator},
		{
			name: "invalid raw JSON input", id: "b3", withError: jetflow.ErrInvalidInput,
			call: start("E1_HelloSequence", client.WithInstanceID("b3"), client.WithRawInput(json.RawMessage(`{"a":`))),
		},
		{
			name: "invalid json.RawMessage through WithInput", id: "b4", withError: jetflow.ErrInvalidInput,
			call: start("E1_HelloSequence", client.WithInstanceID("b4"), client.WithInput(json.RawMessage(`nope`))),
		},
		{
			name: "raw input over MaxPayload", id: "b5", withError: jetflow.ErrPayloadTooLarge,
			call: start("E1_HelloSequence", client.WithInstanceID("b5"), client.WithRawInput(tooLarge)),
		},
		{
			name: "input over MaxPayload once encoded", id: "b6", withError: jetflow.ErrPayloadTooLarge,
			call: start("E1_HelloSequence", client.WithInstanceID("b6"), client.WithInput(strings.Repeat("x", client.MaxPayload-1))),
		},
		{
			name: "unmarshalable input", id: "b7", withError: jetflow.ErrInvalidInput,
			call: start("E1_HelloSequence", client.WithInstanceID("b7"), client.WithInput(make(chan int))),
		},
		{
			name: "GetStatus of an empty id", withError: jetflow.ErrInvalidInstanceID,
			call: func(ctx context.Context, c *client.Client) error { _, err := c.GetStatus(ctx, ""); return err },
		},
		{
			name: "RaiseEvent to an empty id", withError: jetflow.ErrInvalidInstanceID,
			call: func(ctx context.Context, c *client.Client) error { return c.RaiseEvent(ctx, "", "Go", nil) },
		},
		{
			name: "Terminate of an invalid id", withError: jetflow.ErrInvalidInstanceID,
			call: func(ctx context.Context, c *client.Client) error { return c.Terminate(ctx, "a/b", nil) },
		},
		{
			name: "WatchStatus of an empty id", withError: jetflow.ErrInvalidInstanceID,
			call: func(ctx context.Context, c *client.Client) error { _, err := c.WatchStatus(ctx, "", 0); return err },
		},
		{
			name: "WaitForCompletion of an invalid id", withError: jetflow.ErrInvalidInstanceID,
			call: func(ctx context.Context, c *client.Client) error {
				_, err := c.WaitForCompletion(ctx, "a?")
				return err
			},
		},
		{
			name: "empty event name", id: unknown, withError: jetflow.ErrInvalidName,
			call: func(ctx context.Context, c *client.Client) error { return c.RaiseEvent(ctx, unknown, "", nil) },
		},
		{
			name: "unmarshalable event data", id: unknown, withError: jetflow.ErrInvalidInput,
			call: func(ctx context.Context, c *client.Client) error { return c.RaiseEvent(ctx, unknown, "Go", func() {}) },
		},
		{
			name: "event data over MaxPayload", id: unknown, withError: jetflow.ErrPayloadTooLarge,
			call: func(ctx context.Context, c *client.Client) error { return c.RaiseEvent(ctx, unknown, "Go", tooLarge) },
		},
		{
			name: "invalid raw event data", id: unknown, withError: jetflow.ErrInvalidInput,
			call: func(ctx context.Context, c *client.Client) error {
				return c.RaiseEvent(ctx, unknown, "Go", json.RawMessage(`[1,`))
			},
		},
		{
			name: "unmarshalable termination reason", id: unknown, withError: jetflow.ErrInvalidInput,
			call: func(ctx context.Context, c *client.Client) error { return c.Terminate(ctx, unknown, make(chan int)) },
		},
	} {
		// Not parallel: each case checks that nothing at all was written.
		t.Run(tc.name, func(t *testing.T) {
			before, err := e.Storage.StoredMessages(ctx)
			require.NoError(t, err)

			err = tc.call(ctx, e.Client)
			require.ErrorIs(t, err, tc.withError)

			after, err := e.Storage.StoredMessages(ctx)
			require.NoError(t, err)
			require.Equal(t, before, after, "a refused call writes nothing")
			if tc.id != "" {
				_, err := e.Client.GetStatus(ctx, tc.id)
				require.ErrorIs(t, err, jetflow.ErrInstanceNotFound)
			}
		})
	}
}

func TestStartLimits(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ctx := e.Context(30 * time.Second)

	// No id, or an empty one, gets a random id (as in Durable Functions).
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, opts := range [][]client.StartOption{nil, {client.WithInstanceID("")}} {
		id, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", opts...)
		require.NoError(t, err)
		require.Regexp(t, hex32, id)
		st, err := e.Client.GetStatus(ctx, id)
		require.NoError(t, err)
		require.Equal(t, id, st.InstanceID)
	}

	// Exactly MaxPayload bytes of input, and an id of 100 characters (not
	// bytes), are accepted.
	input := json.RawMessage(`"` + strings.Repeat("x", client.MaxPayload-2) + `"`)
	long := strings.Repeat("é", jetflow.MaxInstanceIDLength)
	id, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(long), client.WithRawInput(input))
	require.NoError(t, err)
	require.Equal(t, long, id)
	st, err := e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.Equal(t, long, st.InstanceID)
	require.Equal(t, string(input), string(st.Input))
}

func TestInstanceLifecycleErrors(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ctx := e.Context(30 * time.Second)
	const id = "city:1"

	ch, err := e.Client.WatchStatus(ctx, id, 0)
	require.NoError(t, err)
	_, err = e.Client.StartOrchestration(ctx, "CityRecommender", client.WithInstanceID(id), client.WithInput(1))
	require.NoError(t, err)
	running := untilCustomStatus(t, ch) // it now waits for CitySelected
	require.Equal(t, jetflow.StatusRunning, running.RuntimeStatus)

	// A second start of the running id is refused and changes nothing.
	_, err = e.Client.StartOrchestration(ctx, "CityRecommender", client.WithInstanceID(id), client.WithInput(2))
	require.ErrorIs(t, err, jetflow.ErrInstanceExists)
	st, err := e.Client.GetStatus(ctx, id)
	require.NoError(t, err)
	require.Equal(t, running.Status, *st)

	// Unknown ids.
	require.ErrorIs(t, e.Client.RaiseEvent(ctx, "nobody", "CitySelected", "Tokyo"), jetflow.ErrInstanceNotFound)
	require.ErrorIs(t, e.Client.Terminate(ctx, "nobody", "no reason"), jetflow.ErrInstanceNotFound)
	_, err = e.Client.GetStatus(ctx, "nobody")
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound)

	require.NoError(t, e.Client.RaiseEvent(ctx, id, "CitySelected", "Tokyo"))
	done := testkit.Collect(t, ch, 20*time.Second)
	require.NotEmpty(t, done)
	final := done[len(done)-1]
	require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)
	require.JSONEq(t, `"Tokyo"`, string(final.Output))

	// A finished instance takes no more events or commands.
	require.ErrorIs(t, e.Client.RaiseEvent(ctx, id, "CitySelected", "London"), jetflow.ErrInstanceFinished)
	require.ErrorIs(t, e.Client.Terminate(ctx, id, "too late"), jetflow.ErrInstanceFinished)
	st, err = e.Client.GetStatus(ctx, id)
	require.NoError(t, err)
	require.Equal(t, final.Status, *st)

	// The id of a finished instance can be started again; terminate that.
	_, err = e.Client.StartOrchestration(ctx, "CityRecommender", client.WithInstanceID(id), client.WithInput(2))
	require.NoError(t, err)
	require.NoError(t, e.Client.Terminate(ctx, id, map[string]string{"reason": "changed my mind"}))
	st, err = e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusTerminated, st.RuntimeStatus)
	require.JSONEq(t, `2`, string(st.Input))
	require.JSONEq(t, `{"reason":"changed my mind"}`, string(st.Output))
}

func TestUnusualInstanceIDs(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	for _, id := range []string{
		"tenant:42",
		"with space",
		"café",
		"a.b",
		"x.",
		"x=2E", // what "x." would become if '=' were not escaped
		"=",
		"*",
		">",
		"order=1:line.2 é",
	} {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			ctx := e.Context(30 * time.Second)
			got, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(id), client.WithInput(id))
			require.NoError(t, err)
			require.Equal(t, id, got)
			st, err := e.Client.WaitForCompletion(ctx, id)
			require.NoError(t, err)
			require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
			require.JSONEq(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(st.Output))
			st, err = e.Client.GetStatus(ctx, id)
			require.NoError(t, err)
			require.Equal(t, id, st.InstanceID)
			input, err := json.Marshal(id)
			require.NoError(t, err)
			require.JSONEq(t, string(input), string(st.Input), "no other instance's status")
		})
	}
}

func TestWatchStatus(t *testing.T) {
	t.Parallel()

	t.Run("from Pending to Completed", func(t *testing.T) {
		t.Parallel()
		e := newEngine(t)
		ctx := e.Context(30 * time.Second)
		const id = "hello"
		ch, err := e.Client.WatchStatus(ctx, id, 0)
		require.NoError(t, err)
		_, err = e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(id))
		require.NoError(t, err)

		us := testkit.Collect(t, ch, 20*time.Second)
		require.NoError(t, ctx.Err(), "closed after the terminal status, not by the context")
		require.GreaterOrEqual(t, len(us), 3)
		require.Equal(t, jetflow.StatusPending, us[0].RuntimeStatus)
		final := us[len(us)-1]
		require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)
		require.JSONEq(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(final.Output))
		require.JSONEq(t, `"London"`, string(final.CustomStatus))
		for i, u := range us {
			require.Equal(t, id, u.InstanceID)
			if i > 0 {
				require.Greater(t, u.Revision, us[i-1].Revision)
				require.False(t, us[i-1].Finished(), "only the last update is terminal")
			}
		}

		// Resuming after an earlier update does not repeat it: only the
		// latest status is kept, so the watch goes straight to Completed.
		again := testkit.Collect(t, mustWatch(t, e, ctx, id, us[0].Revision), 20*time.Second)
		require.Len(t, again, 1)
		require.Equal(t, final.Revision, again[0].Revision)
		require.Equal(t, jetflow.StatusCompleted, again[0].RuntimeStatus)

		// A watch of a finished instance sends its status and closes.
		again = testkit.Collect(t, mustWatch(t, e, ctx, id, 0), 20*time.Second)
		require.Len(t, again, 1)
		require.Equal(t, final.Status, again[0].Status)
	})

	t.Run("resume while running", func(t *testing.T) {
		t.Parallel()
		e := newEngine(t)
		ctx := e.Context(30 * time.Second)
		const id = "city"
		ch := mustWatch(t, e, ctx, id, 0)
		_, err := e.Client.StartOrchestration(ctx, "CityRecommender", client.WithInstanceID(id), client.WithInput(3))
		require.NoError(t, err)
		running := untilCustomStatus(t, ch)

		resumed := mustWatch(t, e, ctx, id, running.Revision)
		testkit.Quiet(t, resumed, 300*time.Millisecond, "the update resumed after was repeated")
		require.NoError(t, e.Client.RaiseEvent(ctx, id, "CitySelected", "London"))
		us := testkit.Collect(t, resumed, 20*time.Second)
		require.NotEmpty(t, us)
		for _, u := range us {
			require.Greater(t, u.Revision, running.Revision)
		}
		require.Equal(t, jetflow.StatusCompleted, us[len(us)-1].RuntimeStatus)
		orig := testkit.Collect(t, ch, 20*time.Second)
		require.Equal(t, us[len(us)-1], orig[len(orig)-1], "both watches end with the same update")
	})

	t.Run("context cancel closes the channel", func(t *testing.T) {
		t.Parallel()
		e := newEngine(t)
		ctx := e.Context(30 * time.Second)
		const id = "waiting"
		_, err := e.Client.StartOrchestration(ctx, "CityRecommender", client.WithInstanceID(id), client.WithInput(1))
		require.NoError(t, err)

		// A running instance, and an id with no status at all.
		for _, watched := range []string{id, "nobody"} {
			wctx, cancel := context.WithCancel(ctx)
			ch, err := e.Client.WatchStatus(wctx, watched, 0)
			require.NoError(t, err)
			if watched == id {
				require.Equal(t, id, testkit.Receive(t, ch, 10*time.Second).InstanceID)
			}
			cancel()
			testkit.Collect(t, ch, 20*time.Second)
		}

		// WaitForCompletion gives the context's error.
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err = e.Client.WaitForCompletion(wctx, id)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func mustWatch(t *testing.T, e *testengine.Engine, ctx context.Context, id string, from uint64) <-chan client.Update {
	t.Helper()
	ch, err := e.Client.WatchStatus(ctx, id, from)
	require.NoError(t, err)
	return ch
}
