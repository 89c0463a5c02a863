package client_test

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

func TestWatchAll(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ctx := e.Context(60 * time.Second)

	start := func(t *testing.T, name, id string, input any) {
		t.Helper()
		_, err := e.Client.StartOrchestration(ctx, name, client.WithInstanceID(id), client.WithInput(input))
		require.NoError(t, err)
	}

	t.Run("prefix and runtime status", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		completed, err := e.Client.WatchAll(wctx, client.WatchFilter{
			InstanceIDPrefix: "fleet-a-",
			RuntimeStatus:    []jetflow.RuntimeStatus{jetflow.StatusCompleted},
		}, 0)
		require.NoError(t, err)
		everything, err := e.Client.WatchAll(wctx, client.WatchFilter{InstanceIDPrefix: "fleet-a-"}, 0)
		require.NoError(t, err)

		for _, id := range []string{"fleet-a-1", "fleet-b-1", "fleet-a-2", "fleet-a"} {
			start(t, "E1_HelloSequence", id, nil)
		}
		got := map[string]client.Update{}
		for len(got) < 2 {
			u := testkit.Receive(t, completed, 10*time.Second)
			require.Equal(t, jetflow.StatusCompleted, u.RuntimeStatus)
			require.NotContains(t, got, u.InstanceID, "one Completed update per instance")
			got[u.InstanceID] = u
		}
		require.Contains(t, got, "fleet-a-1")
		require.Contains(t, got, "fleet-a-2")
		testkit.Quiet(t, completed, 300*time.Millisecond)

		// Without a status filter: every change, in revision order, and
		// not closed by terminal statuses.
		var last uint64
		finished := map[string]bool{}
		for len(finished) < 2 {
			u := testkit.Receive(t, everything, 10*time.Second)
			require.Contains(t, []string{"fleet-a-1", "fleet-a-2"}, u.InstanceID)
			require.Greater(t, u.Revision, last)
			last = u.Revision
			if u.Finished() {
				finished[u.InstanceID] = true
				require.Equal(t, got[u.InstanceID], u)
			}
		}
		testkit.Quiet(t, everything, 300*time.Millisecond)

		// Resuming after the first Completed: the second one only.
		first, second := got["fleet-a-1"], got["fleet-a-2"]
		if first.Revision > second.Revision {
			first, second = second, first
		}
		resumed, err := e.Client.WatchAll(wctx, client.WatchFilter{
			InstanceIDPrefix: "fleet-a-",
			RuntimeStatus:    []jetflow.RuntimeStatus{jetflow.StatusCompleted},
		}, first.Revision)
		require.NoError(t, err)
		require.Equal(t, second, testkit.Receive(t, resumed, 10*time.Second))
		testkit.Quiet(t, resumed, 300*time.Millisecond)

		cancel()
		testkit.Collect(t, completed, 20*time.Second)
		testkit.Collect(t, everything, 20*time.Second)
		testkit.Collect(t, resumed, 20*time.Second)
	})

	t.Run("deletions", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		start(t, "E1_HelloSequence", "gone-1", nil)
		st, err := e.Client.WaitForCompletion(ctx, "gone-1")
		require.NoError(t, err)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
		cur, err := e.Client.GetStatusWithRevision(ctx, "gone-1")
		require.NoError(t, err)
		require.Equal(t, *st, cur.Status)

		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := e.Client.WatchAll(wctx, client.WatchFilter{
			InstanceIDPrefix: "gone-", RuntimeStatus: []jetflow.RuntimeStatus{jetflow.StatusRunning},
		}, 0)
		require.NoError(t, err)
		testkit.Quiet(t, ch, 300*time.Millisecond)
		require.NoError(t, e.Storage.DeleteStatus(ctx, "gone-1", cur.Revision))
		u := testkit.Receive(t, ch, 10*time.Second)
		require.True(t, u.Deleted, "deletions pass any status filter")
		require.Equal(t, "gone-1", u.InstanceID)
		require.Greater(t, u.Revision, cur.Revision)

		_, err = e.Client.GetStatusWithRevision(ctx, "gone-1")
		require.ErrorIs(t, err, jetflow.ErrInstanceNotFound)
		// A new watch does not list it; a resumed one tells of the deletion.
		ch, err = e.Client.WatchAll(wctx, client.WatchFilter{InstanceIDPrefix: "gone-"}, 0)
		require.NoError(t, err)
		testkit.Quiet(t, ch, 300*time.Millisecond)
		ch, err = e.Client.WatchAll(wctx, client.WatchFilter{InstanceIDPrefix: "gone-"}, cur.Revision)
		require.NoError(t, err)
		require.Equal(t, u, testkit.Receive(t, ch, 10*time.Second))
	})

	t.Run("bad filters", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		for _, tt := range []struct {
			name      string
			f         client.WatchFilter
			withError error
		}{
			{"prefix with a slash", client.WatchFilter{InstanceIDPrefix: "a/"}, jetflow.ErrInvalidInstanceID},
			{"unknown status", client.WatchFilter{RuntimeStatus: []jetflow.RuntimeStatus{"Running", "running"}}, jetflow.ErrInvalidOption},
		} {
			_, err := e.Client.WatchAll(ctx, tt.f, 0)
			require.ErrorIs(t, err, tt.withError, tt.name)
		}
	})
}

func TestWatchStatusResumeAfterTerminal(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ctx := e.Context(30 * time.Second)
	const id = "resume-done"
	_, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(id))
	require.NoError(t, err)
	us := testkit.Collect(t, mustWatch(t, e, ctx, id, 0), 20*time.Second)
	final := us[len(us)-1]
	require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)

	// A watcher that saw the terminal status and comes back: closed at
	// once, not left waiting for a change that will not come.
	start := time.Now()
	require.Empty(t, testkit.Collect(t, mustWatch(t, e, ctx, id, final.Revision), 20*time.Second))
	require.Less(t, time.Since(start), 2*time.Second)
	// One that missed it gets it.
	again := testkit.Collect(t, mustWatch(t, e, ctx, id, final.Revision-1), 20*time.Second)
	require.Equal(t, []client.Update{final}, again)
}

// TestWatchResumeBeyondLastRevision resumes watches after revisions the
// hub's status bucket has not reached (a client's last revision from
// before the hub was restored from a backup or recreated): they answer as
// fresh watches (the current values, then each change), never with
// silence, and the largest revision does not wrap around.
func TestWatchResumeBeyondLastRevision(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ctx := e.Context(60 * time.Second)
	_, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID("beyond-1"))
	require.NoError(t, err)
	_, err = e.Client.WaitForCompletion(ctx, "beyond-1")
	require.NoError(t, err)
	done, err := e.Client.GetStatusWithRevision(ctx, "beyond-1")
	require.NoError(t, err)

	for _, from := range []uint64{1000000, math.MaxUint64} {
		t.Run(strconv.FormatUint(from, 10), func(t *testing.T) {
			ch := mustWatch(t, e, ctx, "beyond-1", from)
			require.Equal(t, []client.Update{{StatusEntry: *done}}, testkit.Collect(t, ch, 20*time.Second), "the terminal status, then the end")

			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			all, err := e.Client.WatchAll(wctx, client.WatchFilter{InstanceIDPrefix: "beyond-"}, from)
			require.NoError(t, err)
			require.Equal(t, client.Update{StatusEntry: *done}, testkit.Receive(t, all, 10*time.Second), "the current values")
			testkit.Quiet(t, all, 300*time.Millisecond)

			got, err := e.Client.ResumeRevision(ctx, from)
			require.NoError(t, err)
			require.Zero(t, got, "what the watches resume after: nothing")
		})
	}

	// A caller that saw the last revision resumes after it as before.
	got, err := e.Client.ResumeRevision(ctx, done.Revision)
	require.NoError(t, err)
	require.Equal(t, done.Revision, got)
	require.Empty(t, testkit.Collect(t, mustWatch(t, e, ctx, "beyond-1", done.Revision), 20*time.Second), "it saw the terminal status")
}
