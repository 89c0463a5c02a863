package storage_test

import (
	"testing"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/stretchr/testify/require"
)

// TestLeaderReads reads statuses and histories the way a replicated hub
// does (through the stream leader) and checks it answers like the KV
// reads: values, revisions, missing, deleted and purged keys, whole
// histories and catch-ups.
func TestLeaderReads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	s := b.store
	st := &jetflow.Status{InstanceID: "a.b é", Name: "O", RuntimeStatus: jetflow.StatusRunning}
	rev, err := s.PutStatus(ctx, st.InstanceID, st, 0)
	require.NoError(t, err)
	var prev uint64
	for c := uint32(1); c <= 3; c++ {
		prev, err = s.AppendChunk(ctx, st.InstanceID, c, prev, events(int(c), 2), nil)
		require.NoError(t, err)
	}
	_, err = s.PutStatus(ctx, "gone", st, 0)
	require.NoError(t, err)
	gone, err := s.GetStatus(ctx, "gone")
	require.NoError(t, err)
	require.NoError(t, s.DeleteStatus(ctx, "gone", gone.Revision))

	plain, err := s.LoadHistory(ctx, st.InstanceID)
	require.NoError(t, err)
	plainStatus, err := s.GetStatus(ctx, st.InstanceID)
	require.NoError(t, err)
	storage.SetLeaderReads(s, true)

	got, err := s.GetStatus(ctx, st.InstanceID)
	require.NoError(t, err)
	require.Equal(t, rev, got.Revision)
	require.Equal(t, plainStatus, got)
	for _, id := range []string{"gone", "never"} {
		_, err = s.GetStatus(ctx, id)
		require.ErrorIs(t, err, storage.ErrNotFound, id)
	}

	chunks, err := s.LoadHistory(ctx, st.InstanceID)
	require.NoError(t, err)
	require.Equal(t, plain, chunks)
	require.Equal(t, prev, chunks[2].Revision)
	chunks, err = s.LoadHistory(ctx, "never")
	require.NoError(t, err)
	require.Empty(t, chunks)
	from, err := s.LoadHistoryFrom(ctx, st.InstanceID, plain[1].Revision)
	require.NoError(t, err)
	require.Equal(t, plain[1:], from, "a catch-up from chunk 2")
	from, err = s.LoadHistoryFrom(ctx, "never", prev)
	require.NoError(t, err)
	require.Empty(t, from)
	for c, want := range map[uint32]bool{1: true, 3: true, 4: false} {
		ok, err := s.ChunkExists(ctx, st.InstanceID, c)
		require.NoError(t, err)
		require.Equal(t, want, ok, "chunk %d", c)
	}
}
