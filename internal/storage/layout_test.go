package storage_test

import (
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"
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

// TestPartitionsAreTheHubs: the partition count is part of the layout
// too: recorded with the shards ("64/4"), used by a process that gives
// none, refused when another is given; a hub recorded before partitions
// ("64") has one. Each partition has its own streams.
func TestPartitionsAreTheHubs(t *testing.T) {
	t.Parallel()
	srv := runServer(t, t.TempDir(), "127.0.0.1:-1")
	nc, js := connect(t, srv)
	ctx := t.Context()

	first, err := storage.Open(ctx, nc, storage.Config{Hub: "parts", Partitions: 4})
	require.NoError(t, err)
	require.Equal(t, 4, first.Config().Partitions)
	for _, name := range first.Names().Streams() {
		_, err := js.Stream(ctx, name)
		require.NoError(t, err, "stream %s", name)
	}
	layout, err := js.KeyValue(ctx, first.Names().RegistryBucket())
	require.NoError(t, err)
	e, err := layout.Get(ctx, first.Names().ShardsKey())
	require.NoError(t, err)
	require.Equal(t, "64/4", string(e.Value()))

	later, err := storage.Open(ctx, nc, storage.Config{Hub: "parts"})
	require.NoError(t, err)
	require.Equal(t, 4, later.Config().Partitions, "the recorded count, not the default")
	require.Equal(t, first.Names().Streams(), later.Names().Streams())

	_, err = storage.Open(ctx, nc, storage.Config{Hub: "parts", Partitions: 2})
	require.ErrorIs(t, err, jetflow.ErrInvalidOption)
	require.ErrorContains(t, err, `hub "parts" was created with 4 partition(s), not 2`)

	old, err := storage.Open(ctx, nc, storage.Config{Hub: "old"})
	require.NoError(t, err)
	require.Equal(t, 1, old.Config().Partitions)
	require.Equal(t, "old-orch", old.Names().InboxStream(0), "one partition keeps the names of hubs made before partitions")
	_, err = storage.Open(ctx, nc, storage.Config{Hub: "old", Partitions: 3})
	require.ErrorContains(t, err, `hub "old" was created with 1 partition(s), not 3`)

	for _, tc := range []struct {
		cfg  storage.Config
		want string
	}{
		{storage.Config{Hub: "bad", Partitions: 65}, "partitions 65: want 1 to 64"},
		{storage.Config{Hub: "bad", Partitions: -1}, "partitions -1: want 1 to 64"},
		{storage.Config{Hub: "bad", Partitions: 8, Shards: 4}, "shards 4 with 8 partitions: want 8 to 1024"},
		{storage.Config{Hub: "bad", Partitions: 2, Shards: 2000}, "shards 2000 with 2 partitions: want 2 to 1024"},
	} {
		_, err := storage.Open(ctx, nc, tc.cfg)
		require.ErrorContains(t, err, tc.want)
	}
	_, err = js.Stream(ctx, "bad-orch")
	require.ErrorIs(t, err, natsjs.ErrStreamNotFound, "a refused configuration creates nothing")
}
