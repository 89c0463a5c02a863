package jetflow_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/testengine"
)

// TestLongParentChildrenAreReachable: the children of a parent whose id
// has 100 characters get default ids the API accepts: they can be read,
// sent events and terminated, and each is an instance of its own.
func TestLongParentChildrenAreReachable(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		if err := r.AddOrchestrator("Child", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var s string
			err := ctx.WaitForExternalEvent("go").Await(&s)
			return s, err
		}); err != nil {
			return err
		}
		return r.AddOrchestrator("Parent", func(ctx *jetflow.OrchestrationContext) (any, error) {
			a, b := ctx.CallSubOrchestrator("Child", nil), ctx.CallSubOrchestrator("Child", nil)
			return nil, ctx.WhenAll(a, b).Await(nil)
		})
	}})
	ctx := e.Context(60 * time.Second)
	c := e.Client
	parent := "parent-" + strings.Repeat("é", 93)
	require.NoError(t, jetflow.ValidateInstanceID(parent))
	_, err := c.StartOrchestration(ctx, "Parent", client.WithInstanceID(parent))
	require.NoError(t, err)

	var children []string
	require.Eventually(t, func() bool {
		chunks, err := e.Storage.LoadHistory(ctx, parent)
		require.NoError(t, err)
		children = children[:0]
		for _, ch := range chunks {
			for _, ev := range ch.Events {
				if ev.Type == history.SubOrchestrationCreated {
					children = append(children, ev.InstanceID)
				}
			}
		}
		return len(children) == 2
	}, 20*time.Second, 20*time.Millisecond, "the parent starts two children")
	require.NotEqual(t, children[0], children[1])

	for _, id := range children {
		require.NoError(t, jetflow.ValidateInstanceID(id), id)
		ch, err := c.WatchStatus(ctx, id, 0)
		require.NoError(t, err, "watching child %q", id)
		for u := range ch {
			if u.RuntimeStatus == jetflow.StatusRunning {
				break
			}
		}
		st, err := c.GetStatus(ctx, id)
		require.NoError(t, err)
		require.Equal(t, "Child", st.Name)
		require.Equal(t, id, st.InstanceID)
	}
	require.NoError(t, c.RaiseEvent(ctx, children[0], "go", "done"))
	require.NoError(t, c.Terminate(ctx, children[1], "stop"))
	for i, want := range []jetflow.RuntimeStatus{jetflow.StatusCompleted, jetflow.StatusTerminated} {
		st, err := c.WaitForCompletion(ctx, children[i])
		require.NoError(t, err)
		require.Equal(t, want, st.RuntimeStatus)
	}
	st, err := c.WaitForCompletion(ctx, parent)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus, "a terminated child fails its call")
}
