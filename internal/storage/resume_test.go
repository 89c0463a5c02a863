package storage_test

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// TestWatchResumeBeyondLastRevision resumes watches from revisions the
// status bucket has not reached (what a client brings back from before a
// hub was restored from a backup or recreated): they answer with the
// current values, as a fresh watch does, then each change; never silence.
func TestWatchResumeBeyondLastRevision(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	rDone, err := b.store.PutStatus(ctx, "done", status("done", jetflow.StatusCompleted, ""), 0)
	require.NoError(t, err)
	rRun, err := b.store.PutStatus(ctx, "run", status("run", jetflow.StatusRunning, ""), 0)
	require.NoError(t, err)
	rGone, err := b.store.PutStatus(ctx, "gone", status("gone", jetflow.StatusCompleted, ""), 0)
	require.NoError(t, err)
	require.NoError(t, b.store.DeleteStatus(ctx, "gone", rGone))
	last, err := b.store.LastStatusRevision(ctx)
	require.NoError(t, err)

	for _, from := range []uint64{last + 2, 1000000, math.MaxUint64} {
		t.Run(strconv.FormatUint(from, 10), func(t *testing.T) {
			ch, err := b.store.WatchStatus(within(t, 10*time.Second), "done", from)
			require.NoError(t, err)
			u := testkit.Receive(t, ch, 5*time.Second)
			require.Equal(t, rDone, u.Revision, "the current value, terminal")
			require.Equal(t, jetflow.StatusCompleted, u.Status.RuntimeStatus)

			ch, err = b.store.WatchStatuses(within(t, 10*time.Second), "", from)
			require.NoError(t, err)
			us := drainQuiet(t, ch)
			require.Equal(t, []string{"done", "run"}, ids(us), "every current value, no deletion")
			require.Equal(t, []uint64{rDone, rRun}, []uint64{us[0].Revision, us[1].Revision})

			got, err := b.store.ResumeStatusRevision(within(t, 10*time.Second), from)
			require.NoError(t, err)
			require.Zero(t, got, "a fresh watch")
		})
	}

	// Revisions the bucket has reached, or reaches next, resume as before.
	for _, from := range []uint64{0, 1, last, last + 1} {
		got, err := b.store.ResumeStatusRevision(within(t, 10*time.Second), from)
		require.NoError(t, err)
		require.Equal(t, from, got)
	}
	ch, err := b.store.WatchStatuses(within(t, 10*time.Second), "", last+1)
	require.NoError(t, err)
	testkit.Quiet(t, ch, 200*time.Millisecond)

	// The fresh watch goes on with the live changes.
	beyond, err := b.store.WatchStatuses(within(t, 10*time.Second), "", 1000000)
	require.NoError(t, err)
	require.Equal(t, []string{"done", "run"}, ids(drainQuiet(t, beyond)))
	r, err := b.store.PutStatus(ctx, "run", status("run", jetflow.StatusCompleted, ""), rRun)
	require.NoError(t, err)
	require.Equal(t, r, testkit.Receive(t, beyond, 5*time.Second).Revision)
	require.Equal(t, r, testkit.Receive(t, ch, 5*time.Second).Revision)
}
