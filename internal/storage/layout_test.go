package storage_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
)

// TestShardsAreTheHubs: the shard count is part of a hub's layout (a
// token of every inbox subject): the hub records it when created, a
// process that gives none uses the recorded one, and one that gives
// another is refused instead of writing subjects nobody reads.
func TestShardsAreTheHubs(t *testing.T) {
	t.Parallel()
	srv := runServer(t, t.TempDir(), "127.0.0.1:-1")
	nc, _ := connect(t, srv)
	ctx := t.Context()

	first, err := storage.Open(ctx, nc, storage.Config{Hub: "layout", Shards: 8})
	require.NoError(t, err)
	require.Equal(t, 8, first.Config().Shards)

	later, err := storage.Open(ctx, nc, storage.Config{Hub: "layout"})
	require.NoError(t, err)
	require.Equal(t, 8, later.Config().Shards, "the recorded count, not the default")
	require.Equal(t, first.Names().InboxSubject("O", "id-1"), later.Names().InboxSubject("O", "id-1"))

	_, err = storage.Open(ctx, nc, storage.Config{Hub: "layout", Shards: 16})
	require.ErrorIs(t, err, jetflow.ErrInvalidOption)
	require.ErrorContains(t, err, `hub "layout" was created with 8 shards, not 16`)

	same, err := storage.Open(ctx, nc, storage.Config{Hub: "layout", Shards: 8})
	require.NoError(t, err)
	require.Equal(t, 8, same.Config().Shards)
}
