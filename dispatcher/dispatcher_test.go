package dispatcher_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/dispatcher"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/samples"
)

// The dispatcher's own rules, against a real hub with no worker running:
// what it writes is read back from the store, untouched by any turn.

func newHub(t *testing.T) (*testengine.Engine, *dispatcher.Dispatcher) {
	t.Helper()
	e := testengine.New(t, testengine.Options{Workers: -1, Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	ctx := e.Context(10 * time.Second)
	require.NoError(t, e.Storage.Register(ctx, storage.KindOrchestrator, []string{"E1_HelloSequence"}, "test"))
	return e, dispatcher.New(e.Storage)
}

// writes is how many messages the hub's streams and buckets have
// stored: each write adds one, a duplicate dropped by its id none.
func writes(t *testing.T, e *testengine.Engine) uint64 {
	t.Helper()
	n, err := e.Storage.StoredMessages(e.Context(10 * time.Second))
	require.NoError(t, err)
	return n
}

func TestStartInstance(t *testing.T) {
	t.Parallel()
	e, d := newHub(t)
	ctx := e.Context(30 * time.Second)
	in := json.RawMessage(`"x"`)

	_, err := d.StartInstance(ctx, dispatcher.Start{ID: "nobody", Name: "NoSuchOrchestrator"})
	require.ErrorIs(t, err, jetflow.ErrUnknownOrchestrator)
	_, err = e.Storage.GetStatus(ctx, "nobody")
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "a refused start writes nothing")

	st, err := d.StartInstance(ctx, dispatcher.Start{ID: "s-1", Name: "E1_HelloSequence", Input: in, RequestID: "req-1"})
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusPending, st.RuntimeStatus)
	stored, err := e.Storage.GetStatus(ctx, "s-1")
	require.NoError(t, err)
	require.Equal(t, "req-1", stored.Status.RequestID)
	require.JSONEq(t, `"x"`, string(stored.Status.Input))

	// The same request again: its own run, no new write.
	before := writes(t, e)
	again, err := d.StartInstance(ctx, dispatcher.Start{ID: "s-1", Name: "E1_HelloSequence", Input: in, RequestID: "req-1"})
	require.NoError(t, err)
	require.Equal(t, stored.Status.CreatedTime, again.CreatedTime)
	after, err := e.Storage.GetStatus(ctx, "s-1")
	require.NoError(t, err)
	require.Equal(t, stored.Revision, after.Revision, "the status is not written again")
	require.Equal(t, before, writes(t, e), "the start message is resent with its own id: the stream drops it")

	// Another request for an instance that is Pending: it exists.
	_, err = d.StartInstance(ctx, dispatcher.Start{ID: "s-1", Name: "E1_HelloSequence", Input: in, RequestID: "req-2"})
	require.ErrorIs(t, err, jetflow.ErrInstanceExists)
	_, err = d.StartInstance(ctx, dispatcher.Start{ID: "s-1", Name: "E1_HelloSequence", Input: json.RawMessage(`"other"`)})
	require.ErrorIs(t, err, jetflow.ErrInstanceExists)

	// A finished instance is replaced by a new start.
	done := stored.Status
	done.RuntimeStatus = jetflow.StatusCompleted
	_, err = e.Storage.PutStatus(ctx, "s-1", &done, stored.Revision)
	require.NoError(t, err)
	next, err := d.StartInstance(ctx, dispatcher.Start{ID: "s-1", Name: "E1_HelloSequence", Input: in, RequestID: "req-3"})
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusPending, next.RuntimeStatus)
	cur, err := e.Storage.GetStatus(ctx, "s-1")
	require.NoError(t, err)
	require.Equal(t, "req-3", cur.Status.RequestID)
}

func TestMessagesToInstances(t *testing.T) {
	t.Parallel()
	e, d := newHub(t)
	ctx := e.Context(30 * time.Second)
	for _, send := range []func(string) error{
		func(id string) error { return d.RaiseEvent(ctx, id, "Go", nil) },
		func(id string) error { return d.Terminate(ctx, id, nil) },
		func(id string) error { return d.Suspend(ctx, id, nil) },
		func(id string) error { return d.Resume(ctx, id, nil) },
		func(id string) error { return d.Rewind(ctx, id, nil) },
	} {
		require.ErrorIs(t, send("missing"), jetflow.ErrInstanceNotFound)
	}

	_, err := d.StartInstance(ctx, dispatcher.Start{ID: "m-1", Name: "E1_HelloSequence"})
	require.NoError(t, err)
	require.ErrorIs(t, d.Rewind(ctx, "m-1", nil), jetflow.ErrInstanceNotFailed)
	before := writes(t, e)
	require.NoError(t, d.RaiseEvent(ctx, "m-1", "Go", json.RawMessage(`1`)))
	require.NoError(t, d.RaiseEvent(ctx, "m-1", "Go", json.RawMessage(`1`)))
	require.Equal(t, before+2, writes(t, e), "each raise is a message of its own")

	st, err := e.Storage.GetStatus(ctx, "m-1")
	require.NoError(t, err)
	finished := st.Status
	finished.RuntimeStatus = jetflow.StatusTerminated
	_, err = e.Storage.PutStatus(ctx, "m-1", &finished, st.Revision)
	require.NoError(t, err)
	require.ErrorIs(t, d.RaiseEvent(ctx, "m-1", "Go", nil), jetflow.ErrInstanceFinished)
	require.ErrorIs(t, d.Terminate(ctx, "m-1", nil), jetflow.ErrInstanceFinished)
}

// TestPublishActionsTwice: the actions of a chunk carry message ids, so
// publishing them again (after a crash) stores nothing new.
func TestPublishActionsTwice(t *testing.T) {
	t.Parallel()
	e, d := newHub(t)
	ctx := e.Context(30 * time.Second)
	require.NoError(t, e.Storage.Register(ctx, storage.KindActivity, []string{"E1_SayHello"}, "test"))
	ex := dispatcher.Execution{InstanceID: "p-1", ExecutionID: "x1", Name: "E1_HelloSequence"}
	chunk := []history.Event{
		{Type: history.OrchestratorStarted, Time: time.Now().UTC()},
		{Type: history.TaskScheduled, ID: 0, Name: "E1_SayHello", Input: json.RawMessage(`"Tokyo"`), Time: time.Now().UTC()},
		{Type: history.TimerCreated, ID: 1, FireAt: time.Now().Add(time.Hour).UTC(), Time: time.Now().UTC()},
	}
	before := writes(t, e)
	require.NoError(t, storage.FirstError(d.PublishActions(ctx, ex, chunk)))
	once := writes(t, e)
	require.Equal(t, before+2, once, "a task and a timer")
	require.NoError(t, storage.FirstError(d.PublishActions(ctx, ex, chunk)))
	require.Equal(t, once, writes(t, e), "the second time stores nothing")
}

// TestChildTerminations: a recursive termination goes to the
// sub-orchestrations of its execution that have not finished, once each,
// with message ids that a chunk published again repeats.
func TestChildTerminations(t *testing.T) {
	t.Parallel()
	created := func(id int32, child string) history.Event {
		return history.Event{Type: history.SubOrchestrationCreated, ID: id, InstanceID: child, Name: "Child"}
	}
	ex := &dispatcher.Execution{InstanceID: "p", ExecutionID: "x2", Name: "Parent", Events: []history.Event{
		{Type: history.ExecutionStarted, Name: "Parent", ExecutionID: "x1"}, created(0, "earlier-run"),
		{Type: history.ExecutionStarted, Name: "Parent", ExecutionID: "x2"},
		created(0, "done"), created(1, "failed"), created(2, "running"), created(3, "also-running"),
		{Type: history.SubOrchestrationCompleted, TaskID: 0}, {Type: history.SubOrchestrationFailed, TaskID: 1},
	}}
	term := &history.Event{Type: history.ExecutionTerminated, Input: json.RawMessage(`"why"`), Recursive: true}
	msgs := dispatcher.ChildTerminations(ex, term)
	require.Len(t, msgs, 2)
	for i, want := range []struct{ id, msgID string }{{"running", "x2:terminate:2"}, {"also-running", "x2:terminate:3"}} {
		m := msgs[i]
		require.Equal(t, want.id, m.InstanceID)
		require.Equal(t, "Child", m.Orchestrator, "routed to the child's orchestrator")
		require.Equal(t, history.ExecutionTerminated, m.Event.Type)
		require.True(t, m.Event.Recursive, "and on down the tree")
		require.JSONEq(t, `"why"`, string(m.Event.Input))
		require.Equal(t, want.msgID, m.Event.MsgID)
		require.NotNil(t, m.Start, "the child's start travels with it")
		require.Equal(t, history.ExecutionStarted, m.Start.Type)
		require.Equal(t, "x2-"+strconv.Itoa(2+i)+":start", m.Start.MsgID, "the very start the parent's commit sent")
		require.Equal(t, &history.Parent{InstanceID: "p", ExecutionID: "x2", TaskID: int32(2 + i), Name: "Parent"}, m.Start.Parent)
	}
	require.Empty(t, dispatcher.ChildTerminations(&dispatcher.Execution{ExecutionID: "x"}, term), "an execution without children")

	// A child's input and the reason that would not fit one message
	// together: the termination goes without the start.
	big := created(4, "big")
	big.Input = json.RawMessage(`"` + strings.Repeat("x", jetflow.MaxPayload/2) + `"`)
	ex.Events = append(ex.Events, big)
	reason := *term
	reason.Input = json.RawMessage(`"` + strings.Repeat("y", jetflow.MaxPayload/2) + `"`)
	msgs = dispatcher.ChildTerminations(ex, &reason)
	require.Len(t, msgs, 3)
	require.NotNil(t, msgs[0].Start)
	require.Nil(t, msgs[2].Start, "over jetflow.MaxPayload together")
}
