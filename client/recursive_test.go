package client_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
)

// treeNode is the input of the Tree orchestrator.
type treeNode struct {
	Depth int
	Quick bool
}

// treeEngine runs Tree: a node of depth d > 0 starts three children,
// <id>-q (which completes at once), <id>-1 and <id>-2 (depth d-1), and
// waits for them; a node of depth 0 that is not quick waits for an event
// that never comes.
func treeEngine(t *testing.T) *testengine.Engine {
	t.Helper()
	return testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return r.AddOrchestrator("Tree", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var n treeNode
			if err := ctx.GetInput(&n); err != nil {
				return nil, err
			}
			switch {
			case n.Quick:
				return "done", nil
			case n.Depth == 0:
				return nil, ctx.WaitForExternalEvent("never").Await(nil)
			}
			id := ctx.InstanceID()
			return nil, ctx.WhenAll(
				ctx.CallSubOrchestrator("Tree", treeNode{Quick: true}, jetflow.WithSubInstanceID(id+"-q")),
				ctx.CallSubOrchestrator("Tree", treeNode{Depth: n.Depth - 1}, jetflow.WithSubInstanceID(id+"-1")),
				ctx.CallSubOrchestrator("Tree", treeNode{Depth: n.Depth - 1}, jetflow.WithSubInstanceID(id+"-2")),
			).Await(nil)
		})
	}})
}

// tree lists the ids of a Tree of depth 2 under root, and which of them
// run until terminated (the others complete at once).
func tree(root string) (all, running []string) {
	running = []string{root, root + "-1", root + "-2", root + "-1-1", root + "-1-2", root + "-2-1", root + "-2-2"}
	all = append([]string{root + "-q", root + "-1-q", root + "-2-q"}, running...)
	return all, running
}

func statusesOf(t *testing.T, c *client.Client, ids []string) map[string]jetflow.RuntimeStatus {
	t.Helper()
	out := map[string]jetflow.RuntimeStatus{}
	for _, id := range ids {
		st, err := c.GetStatus(t.Context(), id)
		if err == nil {
			out[id] = st.RuntimeStatus
		} else {
			require.ErrorIs(t, err, jetflow.ErrInstanceNotFound)
		}
	}
	return out
}

// startTree starts a Tree of depth 2 and waits until all of it runs.
func startTree(t *testing.T, c *client.Client, root string) (all, running []string) {
	t.Helper()
	all, running = tree(root)
	_, err := c.StartOrchestration(t.Context(), "Tree", client.WithInstanceID(root), client.WithInput(treeNode{Depth: 2}))
	require.NoError(t, err)
	want := map[string]jetflow.RuntimeStatus{}
	for _, id := range all {
		want[id] = jetflow.StatusCompleted
	}
	for _, id := range running {
		want[id] = jetflow.StatusRunning
	}
	testkit.WaitFor(t, 30*time.Second, "the tree under "+root+" to run", func() bool {
		return len(statusesOf(t, c, all)) == len(all) && equalStatuses(statusesOf(t, c, all), want)
	})
	return all, running
}

func equalStatuses(a, b map[string]jetflow.RuntimeStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRecursiveTerminateAndPurge: WithRecursiveTerminate stops a parent
// and every sub-orchestration under it that still runs (those that
// finished keep their status); without it the children go on.
// WithRecursivePurge removes the whole tree, and refuses, purging
// nothing, while any of it runs.
func TestRecursiveTerminateAndPurge(t *testing.T) {
	t.Parallel()
	e := treeEngine(t)
	c := e.Client
	ctx := e.Context(90 * time.Second)

	all, running := startTree(t, c, "rt")
	require.NoError(t, c.Terminate(ctx, "rt", "stop all", client.WithRecursiveTerminate()))
	want := map[string]jetflow.RuntimeStatus{}
	for _, id := range all {
		want[id] = jetflow.StatusCompleted
	}
	for _, id := range running {
		want[id] = jetflow.StatusTerminated
	}
	testkit.WaitFor(t, 30*time.Second, "the whole tree to be terminated", func() bool {
		return equalStatuses(statusesOf(t, c, all), want)
	})
	leaf, err := c.GetStatus(ctx, "rt-2-1")
	require.NoError(t, err)
	require.JSONEq(t, `"stop all"`, string(leaf.Output), "each child gets the reason")

	// Without the option only the root stops.
	flat, flatRunning := startTree(t, c, "ft")
	require.NoError(t, c.Terminate(ctx, "ft", "just the root"))
	done, err := c.WaitForCompletion(ctx, "ft")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusTerminated, done.RuntimeStatus)
	for _, id := range flatRunning[1:] {
		st, err := c.GetStatus(ctx, id)
		require.NoError(t, err)
		require.Equal(t, jetflow.StatusRunning, st.RuntimeStatus, "%s goes on", id)
	}

	// A recursive purge of a tree that still runs purges nothing.
	err = c.PurgeInstance(ctx, "ft", client.WithRecursivePurge())
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFinished)
	require.ErrorContains(t, err, `sub-orchestration "ft-1" is Running`)
	require.Len(t, statusesOf(t, c, flat), len(flat), "nothing was purged")

	// A finished tree goes whole; a plain purge takes only the root.
	require.NoError(t, c.PurgeInstance(ctx, "rt", client.WithRecursivePurge()))
	require.Empty(t, statusesOf(t, c, all))
	for _, id := range all {
		require.Empty(t, chunkCount(t, e, id), "%s has no history left", id)
	}
	require.NoError(t, c.Terminate(ctx, "ft-1", "stop", client.WithRecursiveTerminate()))
	require.NoError(t, c.Terminate(ctx, "ft-2", "stop", client.WithRecursiveTerminate()))
	testkit.WaitFor(t, 30*time.Second, "the rest of the flat tree to stop", func() bool {
		for _, st := range statusesOf(t, c, flat) {
			if !st.IsTerminal() {
				return false
			}
		}
		return true
	})
	require.NoError(t, c.PurgeInstance(ctx, "ft"))
	require.Len(t, statusesOf(t, c, flat), len(flat)-1, "only the root went")
	require.ErrorIs(t, c.PurgeInstance(ctx, "ft", client.WithRecursivePurge()), jetflow.ErrInstanceNotFound)
}

// chunkCount is how many history chunks are stored for id.
func chunkCount(t *testing.T, e *testengine.Engine, id string) int {
	t.Helper()
	chunks, err := e.Storage.LoadHistory(t.Context(), id)
	require.NoError(t, err)
	return len(chunks)
}
