package storage_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// next receives one batch of a feed, failing after a few seconds.
func TestFollowStatuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := within(t, 30*time.Second)

	last, err := b.store.LastStatusRevision(ctx)
	require.NoError(t, err)
	require.Zero(t, last, "an empty bucket")
	_, found, err := b.store.NextStatusRevision(ctx, 0)
	require.NoError(t, err)
	require.False(t, found)

	revs := map[string]uint64{}
	for _, id := range []string{"a", "b.1", "c"} {
		rev, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusRunning, ""), 0)
		require.NoError(t, err)
		revs[id] = rev
	}
	require.NoError(t, b.store.DeleteStatus(ctx, "a", revs["a"]))
	last, err = b.store.LastStatusRevision(ctx)
	require.NoError(t, err)
	require.Equal(t, revs["c"]+1, last, "the purge marker is the last message")
	next, found, err := b.store.NextStatusRevision(ctx, 1)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, revs["b.1"], next, "a's put is gone: b.1 is the first message left")
	_, found, err = b.store.NextStatusRevision(ctx, last+1)
	require.NoError(t, err)
	require.False(t, found)

	feed, err := b.store.FollowStatuses(ctx)
	require.NoError(t, err)
	// The current values, deletions included, until Current.
	var recs []storage.StatusRecord
	for {
		batch := testkit.Receive(t, feed, 10*time.Second)
		recs = append(recs, batch.Records...)
		if batch.Current {
			require.Equal(t, last, batch.Revision)
			break
		}
	}
	require.Len(t, recs, 3)
	require.Equal(t, "b.1", recs[0].ID)
	require.Equal(t, revs["b.1"], recs[0].Revision)
	var st jetflow.Status
	require.NoError(t, json.Unmarshal(recs[0].Value, &st))
	require.Equal(t, "b.1", st.InstanceID)
	require.Equal(t, "c", recs[1].ID)
	require.Equal(t, storage.StatusRecord{ID: "a", Revision: last, Deleted: true}, recs[2])

	// Then each change.
	rev, err := b.store.PutStatus(ctx, "c", status("c", jetflow.StatusCompleted, ""), revs["c"])
	require.NoError(t, err)
	batch := testkit.Receive(t, feed, 10*time.Second)
	require.True(t, batch.Current)
	require.Equal(t, rev, batch.Revision)
	require.Len(t, batch.Records, 1)
	require.Equal(t, "c", batch.Records[0].ID)
	require.Contains(t, string(batch.Records[0].Value), `"Completed"`)
}
