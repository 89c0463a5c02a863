package storage_test

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream/embedded"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// testBundle is one embedded server with a store opened on it.
type testBundle struct {
	dir   string
	srv   *server.Server
	nc    *nats.Conn
	js    natsjs.JetStream // nats.go's own view, to check what is stored
	store *storage.Store
}

// runServer starts an embedded server on dir and shuts it down when the
// test ends.
func runServer(t testing.TB, dir, listen string) *server.Server {
	t.Helper()
	srv, err := embedded.Run(embedded.Config{Dir: dir, Listen: listen})
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

func connect(t testing.TB, srv *server.Server) (*nats.Conn, natsjs.JetStream) {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	return nc, js
}

// setupServer starts a server without opening a store.
func setupServer(t testing.TB) *testBundle {
	t.Helper()
	b := &testBundle{dir: t.TempDir()}
	b.srv = runServer(t, b.dir, "127.0.0.1:0")
	b.nc, b.js = connect(t, b.srv)
	return b
}

// setup starts a server and opens the default hub on it.
func setup(t testing.TB) *testBundle {
	t.Helper()
	b := setupServer(t)
	var err error
	b.store, err = storage.Open(t.Context(), b.nc, storage.Config{})
	require.NoError(t, err)
	return b
}

// within returns a context that ends after d (or with the test).
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func streamNames(t *testing.T, js natsjs.JetStream) []string {
	t.Helper()
	l := js.StreamNames(t.Context())
	var names []string
	for n := range l.Name() {
		names = append(names, n)
	}
	require.NoError(t, l.Err())
	return names
}

func TestOpen(t *testing.T) {
	t.Parallel()

	t.Run("creates the hub", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.ElementsMatch(t, []string{"jetflow-orch", "jetflow-act", "KV_jetflow-status", "KV_jetflow-history", "KV_jetflow-registry"}, streamNames(t, b.js))
		orch, err := b.js.Stream(t.Context(), "jetflow-orch")
		require.NoError(t, err)
		cfg := orch.CachedInfo().Config
		require.Equal(t, natsjs.LimitsPolicy, cfg.Retention)
		require.True(t, cfg.AllowMsgSchedules)
		require.Equal(t, 2*time.Minute, cfg.Duplicates)
		require.ElementsMatch(t, []string{"jetflow.orch.>", "jetflow.timer.>"}, cfg.Subjects)
		for _, bucket := range []string{"jetflow-status", "jetflow-history"} {
			kv, err := b.js.KeyValue(t.Context(), bucket)
			require.NoError(t, err)
			st, err := kv.Status(t.Context())
			require.NoError(t, err)
			require.Equal(t, int64(1), st.History(), bucket)
		}
		got := b.store.Config()
		require.Equal(t, storage.DefaultHub, got.Hub)
		require.Equal(t, 64, got.Shards)
		require.Equal(t, 1, got.Replicas)
		require.Equal(t, 10*time.Second, got.Timeout)
		require.Equal(t, "jetflow", b.store.Names().Hub())
		require.Same(t, b.nc, b.store.Conn())
	})

	t.Run("twice on the same server", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		nc2, _ := connect(t, b.srv)
		again, err := storage.Open(t.Context(), nc2, storage.Config{})
		require.NoError(t, err)
		// Both see the same buckets.
		rev, err := b.store.PutStatus(t.Context(), "x", &jetflow.Status{InstanceID: "x", RuntimeStatus: jetflow.StatusPending}, 0)
		require.NoError(t, err)
		got, err := again.GetStatus(t.Context(), "x")
		require.NoError(t, err)
		require.Equal(t, rev, got.Revision)
		require.Len(t, streamNames(t, b.js), 5)
	})

	t.Run("concurrently on a new server", func(t *testing.T) {
		t.Parallel()
		b := setupServer(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			nc, _ := connect(t, b.srv)
			wg.Go(func() {
				_, errs[i] = storage.Open(t.Context(), nc, storage.Config{})
			})
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, streamNames(t, b.js), 5)
	})

	t.Run("leaves existing streams and buckets alone", func(t *testing.T) {
		t.Parallel()
		b := setupServer(t)
		ctx := t.Context()
		_, err := b.js.CreateStream(ctx, natsjs.StreamConfig{
			Name:              "jetflow-orch",
			Description:       "made by hand",
			Subjects:          []string{"jetflow.orch.>", "jetflow.timer.>"},
			Duplicates:        5 * time.Second,
			AllowMsgSchedules: true,
		})
		require.NoError(t, err)
		_, err = b.js.CreateKeyValue(ctx, natsjs.KeyValueConfig{Bucket: "jetflow-status", Description: "mine", History: 5})
		require.NoError(t, err)

		_, err = storage.Open(ctx, b.nc, storage.Config{})
		require.NoError(t, err)

		orch, err := b.js.Stream(ctx, "jetflow-orch")
		require.NoError(t, err)
		cfg := orch.CachedInfo().Config
		require.Equal(t, "made by hand", cfg.Description)
		require.Equal(t, 5*time.Second, cfg.Duplicates)
		require.Equal(t, natsjs.LimitsPolicy, cfg.Retention)
		kv, err := b.js.KeyValue(ctx, "jetflow-status")
		require.NoError(t, err)
		st, err := kv.Status(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(5), st.History())
		// The missing ones were created.
		require.Len(t, streamNames(t, b.js), 5)
	})

	t.Run("retention is the hub's", func(t *testing.T) {
		t.Parallel()
		b := setupServer(t)
		open := func(keep time.Duration) time.Duration {
			t.Helper()
			s, err := storage.Open(t.Context(), b.nc, storage.Config{Hub: "kept", Retention: keep})
			require.NoError(t, err)
			d, err := s.Retention(t.Context())
			require.NoError(t, err)
			return d
		}
		require.Zero(t, open(0), "a new hub keeps finished instances")
		require.Equal(t, time.Hour, open(time.Hour))
		require.Equal(t, time.Hour, open(0), "a process that gives none uses the hub's")
		require.Equal(t, 2*time.Hour, open(2*time.Hour), "one that gives another sets it")
		require.Zero(t, open(-1), "negative: none")
		require.Zero(t, open(0))
	})

	t.Run("another hub", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		other, err := storage.Open(t.Context(), b.nc, storage.Config{Hub: "other", Shards: 3})
		require.NoError(t, err)
		require.Len(t, streamNames(t, b.js), 10)
		require.Equal(t, "other.orch.O.0.=C3=A9", other.Names().InboxSubject("O", "é"))
		_, err = other.PutStatus(t.Context(), "x", &jetflow.Status{InstanceID: "x"}, 0)
		require.NoError(t, err)
		_, err = b.store.GetStatus(t.Context(), "x")
		require.ErrorIs(t, err, storage.ErrNotFound, "hubs do not share statuses")
	})
}

func TestOpenBadConfig(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	for _, tc := range []struct {
		name      string
		cfg       storage.Config
		withError string
	}{
		{name: "hub with a dot", cfg: storage.Config{Hub: "a.b"}, withError: `hub "a.b"`},
		{name: "hub with a space", cfg: storage.Config{Hub: "a b"}, withError: `hub "a b"`},
		{name: "hub with a wildcard", cfg: storage.Config{Hub: "a*"}, withError: `hub "a*"`},
		{name: "hub too long", cfg: storage.Config{Hub: strings.Repeat("h", 33)}, withError: "longer than 32"},
		{name: "negative shards", cfg: storage.Config{Shards: -1}, withError: "shards -1"},
		{name: "too many shards", cfg: storage.Config{Shards: 100001}, withError: "shards 100001"},
		{name: "negative replicas", cfg: storage.Config{Replicas: -1}, withError: "replicas -1"},
		{name: "too many replicas", cfg: storage.Config{Replicas: 6}, withError: "replicas 6"},
		{name: "retention under a second", cfg: storage.Config{Retention: time.Millisecond}, withError: "retention 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := storage.Open(t.Context(), b.nc, tc.cfg)
			require.ErrorContains(t, err, tc.withError)
		})
	}
	// Nothing was created on the way.
	require.Empty(t, streamNames(t, b.js))

	// Zero values are defaults, not errors.
	s, err := storage.Open(t.Context(), b.nc, storage.Config{Hub: "h-1_A", Shards: 0})
	require.NoError(t, err)
	require.Equal(t, 64, s.Config().Shards)
	require.Equal(t, "h-1_A-orch", s.Names().InboxStream(0))
}

// events returns n distinguishable events, as one commit would hold.
func events(chunk, n int) []history.Event {
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	out := make([]history.Event, n)
	for i := range out {
		out[i] = history.Event{
			Type:   history.TaskScheduled,
			ID:     int32(chunk*10 + i),
			Time:   base.Add(time.Duration(chunk) * time.Second),
			Name:   "act." + strconv.Itoa(chunk),
			Input:  json.RawMessage(`{"chunk":` + strconv.Itoa(chunk) + `}`),
			MsgID:  "m" + strconv.Itoa(chunk) + ":" + strconv.Itoa(i),
			FireAt: base.Add(time.Hour),
		}
	}
	return out
}

// utc makes decoded times comparable with require.Equal.
func utc(evs []history.Event) []history.Event {
	for i := range evs {
		evs[i].Time = evs[i].Time.UTC()
		if !evs[i].FireAt.IsZero() {
			evs[i].FireAt = evs[i].FireAt.UTC()
		}
	}
	return evs
}

func TestHistory(t *testing.T) {
	t.Parallel()

	t.Run("chunks come back in number order", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := t.Context()
		const id = "order 1.é"
		const n = 12
		revs := map[uint32]uint64{}
		var prev, other uint64
		for c := uint32(1); c <= n; c++ {
			rev, err := b.store.AppendChunk(ctx, id, c, prev, events(int(c), int(c)%3+1), nil)
			require.NoError(t, err)
			revs[c], prev = rev, rev
			// Another instance whose encoded id shares a prefix writes
			// between them: its chunks are not ours, and do not move our fence.
			other, err = b.store.AppendChunk(ctx, "order 1", c, other, events(99, 1), nil)
			require.NoError(t, err)
		}

		chunks, err := b.store.LoadHistory(ctx, id)
		require.NoError(t, err)
		require.Len(t, chunks, n)
		for i, c := range chunks {
			num := i + 1
			require.Equal(t, uint32(num), c.Number)
			require.Equal(t, revs[c.Number], c.Revision)
			require.Equal(t, events(num, num%3+1), utc(c.Events))
		}

		for c, want := range map[uint32]bool{1: true, n: true, n + 1: false} {
			ok, err := b.store.ChunkExists(ctx, id, c)
			require.NoError(t, err)
			require.Equal(t, want, ok, "chunk %d", c)
		}
	})

	t.Run("from a revision: that chunk and those after it", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := t.Context()
		const id = "from 1"
		var revs []uint64
		var prev, other uint64
		for c := uint32(1); c <= 5; c++ {
			rev, err := b.store.AppendChunk(ctx, id, c, prev, events(int(c), 2), nil)
			require.NoError(t, err)
			revs, prev = append(revs, rev), rev
			other, err = b.store.AppendChunk(ctx, "from", c, other, events(99, 1), nil) // not ours
			require.NoError(t, err)
		}
		numbers := func(chunks []storage.Chunk) (ns []uint32) {
			for _, c := range chunks {
				require.Equal(t, revs[c.Number-1], c.Revision)
				require.Equal(t, events(int(c.Number), 2), utc(c.Events))
				ns = append(ns, c.Number)
			}
			return ns
		}
		for from, want := range map[uint64][]uint32{revs[2]: {3, 4, 5}, revs[4]: {5}, revs[4] + 2: nil, 0: {1, 2, 3, 4, 5}} {
			chunks, err := b.store.LoadHistoryFrom(ctx, id, from)
			require.NoError(t, err)
			require.Equal(t, want, numbers(chunks), "from revision %d", from)
		}

		// Once chunks up to 3 are trimmed, a reader whose state ends with
		// chunk 2 finds that its chunk is not the first any more.
		require.NoError(t, b.store.TrimHistory(ctx, id, revs[3]))
		chunks, err := b.store.LoadHistoryFrom(ctx, id, revs[1])
		require.NoError(t, err)
		require.Equal(t, []uint32{4, 5}, numbers(chunks))
	})

	t.Run("the fence: a chunk is written only over the last one", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := t.Context()
		rev1, err := b.store.AppendChunk(ctx, "x", 1, 0, events(1, 2), nil)
		require.NoError(t, err)
		_, err = b.store.AppendChunk(ctx, "x", 1, 0, events(2, 1), nil)
		require.ErrorIs(t, err, storage.ErrConflict, "chunk 1 exists")
		rev2, err := b.store.AppendChunk(ctx, "x", 2, rev1, events(2, 1), nil)
		require.NoError(t, err)
		_, err = b.store.AppendChunk(ctx, "x", 3, rev1, events(3, 1), nil)
		require.ErrorIs(t, err, storage.ErrConflict, "a writer that missed chunk 2")
		_, err = b.store.AppendChunk(ctx, "x", 3, rev2, events(3, 1), nil)
		require.NoError(t, err)

		chunks, err := b.store.LoadHistory(ctx, "x")
		require.NoError(t, err)
		require.Len(t, chunks, 3)
		require.Equal(t, events(1, 2), utc(chunks[0].Events), "the loser did not overwrite")
	})

	t.Run("the fence holds across a purge", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := t.Context()
		var prev uint64
		for c := uint32(1); c <= 3; c++ {
			rev, err := b.store.AppendChunk(ctx, "x", c, prev, events(int(c), 1), nil)
			require.NoError(t, err)
			prev = rev
		}
		rev, err := b.store.PutStatus(ctx, "x", &jetflow.Status{InstanceID: "x", RuntimeStatus: jetflow.StatusCompleted}, 0)
		require.NoError(t, err)
		require.ErrorIs(t, b.store.PurgeInstance(ctx, "x", rev+1), storage.ErrConflict, "the status moved on")
		chunks, err := b.store.LoadHistory(ctx, "x")
		require.NoError(t, err)
		require.Len(t, chunks, 3, "nothing removed by a purge that lost")
		require.NoError(t, b.store.PurgeInstance(ctx, "x", rev))
		chunks, err = b.store.LoadHistory(ctx, "x")
		require.NoError(t, err)
		require.Empty(t, chunks)

		// A writer that knew chunk 3 must not add chunk 4 to the history of
		// a new run of the id.
		_, err = b.store.AppendChunk(ctx, "x", 4, prev, events(4, 1), nil)
		require.ErrorIs(t, err, storage.ErrConflict)
		_, err = b.store.AppendChunk(ctx, "x", 1, 0, events(5, 1), nil)
		require.NoError(t, err)
		_, err = b.store.AppendChunk(ctx, "x", 4, prev, events(4, 1), nil)
		require.ErrorIs(t, err, storage.ErrConflict)
	})

	t.Run("concurrent writers of one chunk: exactly one wins", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { _, errs[i] = b.store.AppendChunk(t.Context(), "race", 1, 0, events(i, 1), nil) })
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
				continue
			}
			require.ErrorIs(t, err, storage.ErrConflict)
		}
		require.Equal(t, 1, wins)
	})

	t.Run("unknown instance", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		chunks, err := b.store.LoadHistory(t.Context(), "nobody")
		require.NoError(t, err)
		require.Empty(t, chunks)
		ok, err := b.store.ChunkExists(t.Context(), "nobody", 1)
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("trim", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := t.Context()
		var keep uint64
		for c := uint32(1); c <= 3; c++ {
			rev, err := b.store.AppendChunk(ctx, "x", c, keep, events(int(c), 1), nil)
			require.NoError(t, err)
			keep = rev
		}
		_, err := b.store.AppendChunk(ctx, "y", 1, 0, events(7, 1), nil)
		require.NoError(t, err)

		require.NoError(t, b.store.TrimHistory(ctx, "x", keep))
		chunks, err := b.store.LoadHistory(ctx, "x")
		require.NoError(t, err)
		require.Len(t, chunks, 1)
		require.Equal(t, uint32(3), chunks[0].Number)
		chunks, err = b.store.LoadHistory(ctx, "y")
		require.NoError(t, err)
		require.Len(t, chunks, 1, "other instances keep their history")
	})
}

func status(id string, rs jetflow.RuntimeStatus, custom string) *jetflow.Status {
	now := jetflow.Time{Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	st := &jetflow.Status{Name: "E1_HelloSequence", InstanceID: id, RuntimeStatus: rs,
		Input: json.RawMessage(`{"city":"Tokyo"}`), CreatedTime: now, LastUpdatedTime: now}
	if custom != "" {
		st.CustomStatus = json.RawMessage(custom)
	}
	return st
}

// viaJSON is st as it reads back from its JSON (empty values become null).
func viaJSON(t *testing.T, st *jetflow.Status) jetflow.Status {
	t.Helper()
	b, err := json.Marshal(st)
	require.NoError(t, err)
	var out jetflow.Status
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestGetStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()

	_, err := b.store.GetStatus(ctx, "nobody")
	require.ErrorIs(t, err, storage.ErrNotFound)

	// The stored value is the status JSON as the HTTP API shows it, under
	// the encoded id: `nats kv get jetflow-status <key>` shows it.
	const id = "tenant:7 order.é"
	st := status(id, jetflow.StatusRunning, `{"step":2}`)
	st.Output = nil
	rev, err := b.store.PutStatus(ctx, id, st, 0)
	require.NoError(t, err)
	kv, err := b.js.KeyValue(ctx, "jetflow-status")
	require.NoError(t, err)
	e, err := kv.Get(ctx, "tenant=3A7=20order=2E=C3=A9")
	require.NoError(t, err)
	want, err := json.Marshal(st)
	require.NoError(t, err)
	require.Equal(t, string(want), string(e.Value()))
	require.Equal(t, rev, e.Revision())
	require.JSONEq(t, `{"name":"E1_HelloSequence","instanceId":"tenant:7 order.é","runtimeStatus":"Running",
		"input":{"city":"Tokyo"},"customStatus":{"step":2},"output":null,
		"createdTime":"2025-01-02T03:04:05Z","lastUpdatedTime":"2025-01-02T03:04:05Z","activityProgress":null,"requestId":null}`, string(e.Value()))

	got, err := b.store.GetStatus(ctx, id)
	require.NoError(t, err)
	require.Equal(t, rev, got.Revision)
	require.Equal(t, viaJSON(t, st), got.Status)

	// A value that is not status JSON is an error, not a zero status.
	_, err = kv.Put(ctx, "garbage", []byte("not json"))
	require.NoError(t, err)
	_, err = b.store.GetStatus(ctx, "garbage")
	require.Error(t, err)
	require.NotErrorIs(t, err, storage.ErrNotFound)
}

func TestWatchStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	const id = "watch.me"

	r1, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusPending, ""), 0)
	require.NoError(t, err)
	_, err = b.store.PutStatus(ctx, "someone else", status("someone else", jetflow.StatusPending, ""), 0)
	require.NoError(t, err)

	wctx, cancel := context.WithCancel(ctx)
	ch, err := b.store.WatchStatus(wctx, id, 0)
	require.NoError(t, err)

	u := testkit.Receive(t, ch, 5*time.Second)
	require.Equal(t, r1, u.Revision, "the current value first")
	require.Equal(t, jetflow.StatusPending, u.Status.RuntimeStatus)
	require.Equal(t, id, u.Status.InstanceID)
	require.False(t, u.Deleted)

	r2, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusRunning, `"Tokyo"`), r1)
	require.NoError(t, err)
	u = testkit.Receive(t, ch, 5*time.Second)
	require.Equal(t, r2, u.Revision)
	require.Equal(t, jetflow.StatusRunning, u.Status.RuntimeStatus)
	require.JSONEq(t, `"Tokyo"`, string(u.Status.CustomStatus))

	require.NoError(t, b.store.DeleteStatus(ctx, id, r2))
	u = testkit.Receive(t, ch, 5*time.Second)
	require.True(t, u.Deleted)
	require.Greater(t, u.Revision, r2)
	testkit.Quiet(t, ch, 200*time.Millisecond)

	cancel()
	testkit.Collect(t, ch, 5*time.Second)

	t.Run("resume from a revision", func(t *testing.T) {
		const id = "resume"
		r1, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusPending, ""), 0)
		require.NoError(t, err)
		r2, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusRunning, ""), r1)
		require.NoError(t, err)

		ch, err := b.store.WatchStatus(within(t, 10*time.Second), id, r2)
		require.NoError(t, err)
		u := testkit.Receive(t, ch, 5*time.Second)
		require.Equal(t, r2, u.Revision, "starts at fromRev")
		testkit.Quiet(t, ch, 200*time.Millisecond)
		r3, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusCompleted, ""), r2)
		require.NoError(t, err)
		require.Equal(t, r3, testkit.Receive(t, ch, 5*time.Second).Revision)

		// From a revision still to come: nothing until it is written.
		ch, err = b.store.WatchStatus(within(t, 10*time.Second), id, r3+1)
		require.NoError(t, err)
		testkit.Quiet(t, ch, 200*time.Millisecond)
	})

	t.Run("no status yet", func(t *testing.T) {
		const id = "later"
		ch, err := b.store.WatchStatus(within(t, 10*time.Second), id, 0)
		require.NoError(t, err)
		testkit.Quiet(t, ch, 200*time.Millisecond)
		rev, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusPending, ""), 0)
		require.NoError(t, err)
		require.Equal(t, rev, testkit.Receive(t, ch, 5*time.Second).Revision)
	})
}

func TestWatchEveryStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	ids := []string{"a", "b.c", "d e", "é"}
	revs := map[string]uint64{}
	for _, id := range ids[:3] {
		rev, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusPending, ""), 0)
		require.NoError(t, err)
		revs[id] = rev
	}
	ch, err := b.store.WatchStatuses(within(t, 10*time.Second), "", 0)
	require.NoError(t, err)
	got := map[string]uint64{}
	for range 3 {
		u := testkit.Receive(t, ch, 5*time.Second)
		got[u.Status.InstanceID] = u.Revision
	}
	require.Equal(t, revs, got)

	rev, err := b.store.PutStatus(ctx, ids[3], status(ids[3], jetflow.StatusPending, ""), 0)
	require.NoError(t, err)
	u := testkit.Receive(t, ch, 5*time.Second)
	require.Equal(t, ids[3], u.Status.InstanceID)
	require.Equal(t, rev, u.Revision)

	// Resuming from a revision skips the statuses written before it.
	ch, err = b.store.WatchStatuses(within(t, 10*time.Second), "", revs["d e"])
	require.NoError(t, err)
	require.Equal(t, "d e", testkit.Receive(t, ch, 5*time.Second).Status.InstanceID)
	require.Equal(t, ids[3], testkit.Receive(t, ch, 5*time.Second).Status.InstanceID)
	testkit.Quiet(t, ch, 200*time.Millisecond)
}

func orchMessage(id, msgID string) *storage.InboxMessage {
	return &storage.InboxMessage{InstanceID: id, Orchestrator: "O", ExecutionID: "exec-1", Event: history.Event{
		Type: history.EventRaised, Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Name: "Approval", Input: json.RawMessage(`true`), MsgID: msgID,
	}}
}

func TestPublish(t *testing.T) {
	t.Parallel()

	t.Run("same message id twice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		out, err := b.store.InboxWrite(orchMessage("x", "exec-1:result:0"))
		require.NoError(t, err)
		require.Equal(t, b.store.Names().InboxSubject("O", "x"), out.Subject())

		first := b.store.Publish(t.Context(), out)
		require.Len(t, first, 1)
		require.NoError(t, first[0].Err)
		require.False(t, first[0].Duplicate)
		second := b.store.Publish(t.Context(), out)
		require.NoError(t, second[0].Err)
		require.True(t, second[0].Duplicate)
		require.Equal(t, first[0].Seq, second[0].Seq)

		// Within one batch too.
		other, err := b.store.InboxWrite(orchMessage("x", "exec-1:result:1"))
		require.NoError(t, err)
		res := b.store.Publish(t.Context(), other, out, other)
		require.NoError(t, storage.FirstError(res))
		require.False(t, res[0].Duplicate)
		require.True(t, res[1].Duplicate)
		require.True(t, res[2].Duplicate)

		orch, err := b.js.Stream(t.Context(), "jetflow-orch")
		require.NoError(t, err)
		info, err := orch.Info(t.Context())
		require.NoError(t, err)
		require.Equal(t, uint64(2), info.State.Msgs)
	})

	t.Run("a lost compare-and-set in a batch", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := t.Context()
		rev, err := b.store.PutStatus(ctx, "x", status("x", jetflow.StatusPending, ""), 0)
		require.NoError(t, err)
		stale, err := b.store.StatusWrite("x", status("x", jetflow.StatusRunning, ""), rev+5)
		require.NoError(t, err)
		msg, err := b.store.InboxWrite(orchMessage("x", "m1"))
		require.NoError(t, err)
		task, err := b.store.TaskWrite(&storage.ActivityTask{InstanceID: "x", ExecutionID: "e", TaskID: 1, Name: "say.hi"}, "e:task:1")
		require.NoError(t, err)
		require.Equal(t, "jetflow.act.say=2Ehi", task.Subject())

		res := b.store.Publish(ctx, msg, stale, task)
		require.Len(t, res, 3)
		require.NoError(t, res[0].Err)
		require.ErrorIs(t, res[1].Err, storage.ErrConflict)
		require.NoError(t, res[2].Err)
		require.ErrorIs(t, storage.FirstError(res), storage.ErrConflict)
		got, err := b.store.GetStatus(ctx, "x")
		require.NoError(t, err)
		require.Equal(t, rev, got.Revision)
		require.Equal(t, jetflow.StatusPending, got.Status.RuntimeStatus)
	})
}

// received is one message a test consumer got.
type received struct {
	msg *storage.InboxMessage
	at  time.Time
}

func TestTimer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := embedded.Run(embedded.Config{Dir: dir, Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown) // if the test stops before the restart
	listen := srv.Addr().(*net.TCPAddr).String()
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	store, err := storage.Open(t.Context(), nc, storage.Config{})
	require.NoError(t, err)

	now := time.Now()
	at1 := now.Add(1500 * time.Millisecond)
	at2 := now.Add(2500 * time.Millisecond)
	msg1, msg2 := orchMessage("timer.é", "exec-1:timer:1"), orchMessage("timer.é", "exec-1:timer:2")
	msg1.Event.Type, msg1.Event.FireAt = history.TimerFired, at1.UTC()
	msg2.Event.Type, msg2.Event.FireAt = history.TimerFired, at2.UTC()
	// Published in the opposite order of their times.
	out2, err := store.TimerWrite(msg2, 2, at2)
	require.NoError(t, err)
	out1, err := store.TimerWrite(msg1, 1, at1)
	require.NoError(t, err)
	require.Equal(t, store.Names().TimerSubject("timer.é", "exec-1", 1), out1.Subject())
	require.NoError(t, storage.FirstError(store.Publish(t.Context(), out2, out1)))

	// Restart the server before the timers are due.
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()
	srv = runServer(t, dir, listen)
	nc, _ = connect(t, srv)
	store, err = storage.Open(t.Context(), nc, storage.Config{})
	require.NoError(t, err)

	got := make(chan received, 10)
	c, err := store.ConsumeInbox(t.Context(), "O", storage.ConsumeConfig{}, func(m *storage.InboxMessage, d storage.Delivery) {
		got <- received{m, time.Now()}
		d.Ack()
	})
	require.NoError(t, err)
	t.Cleanup(c.Stop)

	for _, want := range []struct {
		msg *storage.InboxMessage
		at  time.Time
	}{{msg1, at1}, {msg2, at2}} {
		r := testkit.Receive(t, got, 5*time.Second)
		t.Logf("timer due %s fired %s (%+v)", want.at.Format(time.StampMilli), r.at.Format(time.StampMilli), r.at.Sub(want.at))
		require.Equal(t, want.msg.Event.MsgID, r.msg.Event.MsgID, "timers fire in time order")
		require.False(t, r.at.Before(want.at), "timer due at %s fired early, at %s", want.at.Format(time.StampMilli), r.at.Format(time.StampMilli))
		require.WithinDuration(t, want.at, r.at, 2*time.Second)
		r.msg.Event.Time, r.msg.Event.FireAt = r.msg.Event.Time.UTC(), r.msg.Event.FireAt.UTC()
		require.Equal(t, want.msg, r.msg)
	}
	testkit.Quiet(t, got, 200*time.Millisecond)
}

func TestPurgeAcked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()

	// Nothing to do yet.
	_, err := b.store.PurgeAcked(ctx, nil)
	require.NoError(t, err)

	var outs []storage.Outgoing
	for i := range 5 {
		out, err := b.store.InboxWrite(orchMessage("m"+strconv.Itoa(i), "msg-"+strconv.Itoa(i)))
		require.NoError(t, err)
		outs = append(outs, out)
	}
	timer, err := b.store.TimerWrite(orchMessage("m0", "exec-1:timer:0"), 0, time.Now().Add(time.Hour))
	require.NoError(t, err)
	outs = append(outs, timer)
	const act = "Say hello."
	for i := range 2 {
		for _, name := range []string{act, "unconsumed"} {
			out, err := b.store.TaskWrite(&storage.ActivityTask{InstanceID: "m0", ExecutionID: "e", TaskID: int32(i), Name: name}, name+strconv.Itoa(i))
			require.NoError(t, err)
			outs = append(outs, out)
		}
	}
	require.NoError(t, storage.FirstError(b.store.Publish(ctx, outs...)))

	// Ack the first three inbox messages and every task of one activity.
	orchSeen := make(chan string, 10)
	c, err := b.store.ConsumeInbox(ctx, "O", storage.ConsumeConfig{}, func(m *storage.InboxMessage, d storage.Delivery) {
		if m.InstanceID < "m3" {
			d.Ack()
		}
		orchSeen <- m.InstanceID
	})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	actSeen := make(chan string, 10)
	ac, err := b.store.ConsumeActivity(ctx, act, storage.ConsumeConfig{}, make(chan struct{}, 4), func(task *storage.ActivityTask, d storage.Delivery) {
		d.Ack()
		actSeen <- task.Name
	})
	require.NoError(t, err)
	t.Cleanup(ac.Stop)
	for range 5 {
		testkit.Receive(t, orchSeen, 5*time.Second)
	}
	for range 2 {
		require.Equal(t, act, testkit.Receive(t, actSeen, 5*time.Second))
	}

	orch, err := b.js.Stream(ctx, "jetflow-orch")
	require.NoError(t, err)
	acts, err := b.js.Stream(ctx, "jetflow-act")
	require.NoError(t, err)
	// Acks are fire and forget: wait until the server has them all.
	testkit.WaitFor(t, 5*time.Second, "the server to have every ack", func() bool {
		oc, err := orch.Consumer(ctx, b.store.Names().InboxConsumer("O"))
		if err != nil {
			return false
		}
		ac, err := acts.Consumer(ctx, b.store.Names().TaskConsumer(act))
		if err != nil {
			return false
		}
		return oc.CachedInfo().AckFloor.Stream == 3 && ac.CachedInfo().NumAckPending == 0
	})

	subjects := func(st natsjs.Stream) map[string]uint64 {
		info, err := st.Info(ctx, natsjs.WithSubjectFilter(">"))
		require.NoError(t, err)
		return info.State.Subjects
	}
	require.Len(t, subjects(orch), 6)
	require.Len(t, subjects(acts), 2)

	for range 2 { // idempotent
		_, err = b.store.PurgeAcked(ctx, nil)
		require.NoError(t, err)
		n := b.store.Names()
		require.Equal(t, map[string]uint64{
			n.InboxSubject("O", "m3"):         1,
			n.InboxSubject("O", "m4"):         1,
			n.TimerSubject("m0", "exec-1", 0): 1,
		}, subjects(orch), "unacked messages and timers stay")
		require.Equal(t, map[string]uint64{n.TaskSubject("unconsumed", "x"): 2}, subjects(acts))
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	names := []string{"E1_HelloSequence", "a.b c", "é"}

	for _, n := range names {
		ok, err := b.store.IsRegistered(ctx, storage.KindOrchestrator, n)
		require.NoError(t, err)
		require.False(t, ok)
	}
	require.NoError(t, b.store.Register(ctx, storage.KindOrchestrator, names, "w1"))
	require.NoError(t, b.store.Register(ctx, storage.KindOrchestrator, names, "w2"), "idempotent")
	require.NoError(t, b.store.Register(ctx, storage.KindActivity, nil, "w1"))

	// Another process sees them; a name is registered per kind.
	nc, _ := connect(t, b.srv)
	other, err := storage.Open(ctx, nc, storage.Config{})
	require.NoError(t, err)
	for _, s := range []*storage.Store{b.store, other} {
		for _, n := range names {
			ok, err := s.IsRegistered(ctx, storage.KindOrchestrator, n)
			require.NoError(t, err)
			require.True(t, ok, n)
			ok, err = s.IsRegistered(ctx, storage.KindActivity, n)
			require.NoError(t, err)
			require.False(t, ok, n)
		}
		ok, err := s.IsRegistered(ctx, storage.KindOrchestrator, "E1_HelloSequenc")
		require.NoError(t, err)
		require.False(t, ok)
	}

	kv, err := b.js.KeyValue(ctx, "jetflow-registry")
	require.NoError(t, err)
	keys, err := kv.Keys(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"hub.shards", "orchestrator.E1_HelloSequence", "orchestrator.a=2Eb=20c", "orchestrator.=C3=A9"}, keys)
}

// TestLoadHistoryOverBatches: a history of more chunk keys than one
// multi-last read answers (1,024) loads whole and in order, with each
// chunk's revision, through the batched reads in stream order (1,000 a
// batch).
func TestLoadHistoryOverBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	const id, n = "long one", 1030
	revs := []uint64{0}
	for c := 1; c <= n; c++ {
		rev, err := b.store.AppendChunk(ctx, id, uint32(c), revs[c-1], events(c, 1), nil)
		require.NoError(t, err)
		revs = append(revs, rev)
	}
	_, err := b.store.AppendChunk(ctx, "long", 1, 0, events(1, 1), nil) // a neighbour, not read with it
	require.NoError(t, err)
	chunks, err := b.store.LoadHistory(ctx, id)
	require.NoError(t, err)
	require.Len(t, chunks, n)
	for k, c := range chunks {
		require.EqualValues(t, k+1, c.Number)
		require.Equal(t, revs[k+1], c.Revision, "chunk %d", k+1)
	}
}
