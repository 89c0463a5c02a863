package client_test

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/stretchr/testify/require"
)

// quietFor checks that nothing arrives on ch for a moment.
func quietFor(t *testing.T, ch <-chan client.Update, d time.Duration) {
	t.Helper()
	select {
	case u, ok := <-ch:
		require.FailNow(t, "unexpected update", "open %v: %+v", ok, u)
	case <-time.After(d):
	}
}

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
			u := next(t, completed)
			require.Equal(t, jetflow.StatusCompleted, u.RuntimeStatus)
			require.NotContains(t, got, u.InstanceID, "one Completed update per instance")
			got[u.InstanceID] = u
		}
		require.Contains(t, got, "fleet-a-1")
		require.Contains(t, got, "fleet-a-2")
		quietFor(t, completed, 300*time.Millisecond)

		// Without a status filter: every change, in revision order, and
		// not closed by terminal statuses.
		var last uint64
		finished := map[string]bool{}
		for len(finished) < 2 {
			u := next(t, everything)
			require.Contains(t, []string{"fleet-a-1", "fleet-a-2"}, u.InstanceID)
			require.Greater(t, u.Revision, last)
			last = u.Revision
			if u.Finished() {
				finished[u.InstanceID] = true
				require.Equal(t, got[u.InstanceID], u)
			}
		}
		quietFor(t, everything, 300*time.Millisecond)

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
		require.Equal(t, second, next(t, resumed))
		quietFor(t, resumed, 300*time.Millisecond)

		cancel()
		collect(t, completed)
		collect(t, everything)
		collect(t, resumed)
	})

	t.Run("deletions", func(t *testing.T) {
		t.Parallel()
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
		quietFor(t, ch, 300*time.Millisecond)
		require.NoError(t, e.Store.DeleteStatus(ctx, "gone-1", cur.Revision))
		u := next(t, ch)
		require.True(t, u.Deleted, "deletions pass any status filter")
		require.Equal(t, "gone-1", u.InstanceID)
		require.Greater(t, u.Revision, cur.Revision)

		_, err = e.Client.GetStatusWithRevision(ctx, "gone-1")
		require.ErrorIs(t, err, jetflow.ErrInstanceNotFound)
		// A new watch does not list it; a resumed one tells of the deletion.
		ch, err = e.Client.WatchAll(wctx, client.WatchFilter{InstanceIDPrefix: "gone-"}, 0)
		require.NoError(t, err)
		quietFor(t, ch, 300*time.Millisecond)
		ch, err = e.Client.WatchAll(wctx, client.WatchFilter{InstanceIDPrefix: "gone-"}, cur.Revision)
		require.NoError(t, err)
		require.Equal(t, u, next(t, ch))
	})

	t.Run("bad filters", func(t *testing.T) {
		t.Parallel()
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
	us := collect(t, mustWatch(t, e, ctx, id, 0))
	final := us[len(us)-1]
	require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)

	// A watcher that saw the terminal status and comes back: closed at
	// once, not left waiting for a change that will not come.
	start := time.Now()
	require.Empty(t, collect(t, mustWatch(t, e, ctx, id, final.Revision)))
	require.Less(t, time.Since(start), 2*time.Second)
	// One that missed it gets it.
	again := collect(t, mustWatch(t, e, ctx, id, final.Revision-1))
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
			require.Equal(t, []client.Update{*done}, collect(t, ch), "the terminal status, then the end")

			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			all, err := e.Client.WatchAll(wctx, client.WatchFilter{InstanceIDPrefix: "beyond-"}, from)
			require.NoError(t, err)
			require.Equal(t, *done, next(t, all), "the current values")
			quietFor(t, all, 300*time.Millisecond)

			got, err := e.Client.ResumeRevision(ctx, from)
			require.NoError(t, err)
			require.Zero(t, got, "what the watches resume after: nothing")
		})
	}

	// A caller that saw the last revision resumes after it as before.
	got, err := e.Client.ResumeRevision(ctx, done.Revision)
	require.NoError(t, err)
	require.Equal(t, done.Revision, got)
	require.Empty(t, collect(t, mustWatch(t, e, ctx, "beyond-1", done.Revision)), "it saw the terminal status")
}
