package storage_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// conformanceBundle is what a case of the storage conformance suite gets:
// a fresh hub, opened twice as two processes would open it.
type conformanceBundle struct {
	// store and other are the hub opened on two connections. On a cluster
	// they are connected to different servers, and other's server is,
	// where the leaders allow, one that leads neither the status nor the
	// history stream: what is written through store and read through
	// other is read through a server that is not the stream's leader.
	store, other *storage.Store
	// js is nats.go's own view of the hub (on store's connection), to
	// check what is stored.
	js natsjs.JetStream
}

// conformanceSetup returns a fresh conformanceBundle: a hub that no other
// case uses.
type conformanceSetup func(t *testing.T) *conformanceBundle

// conformanceTimeout bounds how long the suite waits for a watch's next
// value. It is generous for a loaded 2-core machine; a case that
// passes takes milliseconds per wait.
const conformanceTimeout = 10 * time.Second

// runConformance is the storage conformance suite: the invariants the
// engine relies on from package jetstream, checked through its API against
// whatever servers setup connects to. TestConformanceSingleServer runs it
// on one embedded server and TestConformanceCluster on a 3-node cluster
// with an R3 hub and stores connected to different servers. It proves:
//
//   - the history fence (invariant 2): AppendChunk stores a chunk only over
//     the instance's last chunk; of writers racing on one revision exactly
//     one wins and the others get ErrConflict; a writer holding a revision
//     from before a purge loses to the new run; the history reads back in
//     chunk order with its revisions and the custom status each commit
//     recorded;
//   - the status compare-and-set (invariant 5): PutStatus creates only
//     what is absent (also after a delete or purge), updates only the
//     current revision, and of racing writers exactly one wins;
//     DeleteStatus with a stale revision removes nothing; a missing status
//     is ErrNotFound and jetflow.ErrInstanceNotFound;
//   - read-your-writes across processes: what one store wrote and was
//     acknowledged is read at once, with its revision, through the other
//     (on a cluster, through another server: the leader reads of a
//     replicated hub);
//   - status watches: the current value, then every change in revision
//     order while the watcher keeps up; when writes outpace it, the values
//     it is sent are still in revision order and the last one (a terminal
//     status, a delete) is never missed; a watch resumed from a revision
//     misses no instance changed at or after it;
//   - trim: TrimHistory removes an instance's chunks before a revision,
//     and the fence still holds over the chunks left;
//   - the inbox: InboxMessageIDs lists the ids of an instance's stored
//     messages, oldest first, and no other instance's;
//   - purge: PurgeInstance removes the instance's status, history, inbox
//     messages and timers, and nothing of any other instance.
//
// Every case runs in parallel on its own hub.
func runConformance(t *testing.T, setup conformanceSetup) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, b *conformanceBundle)
	}{
		{"fence: a chunk only over the last one", testFenceSequence},
		{"fence: of racing writers one wins", testFenceRace},
		{"fence: holds after a purge", testFenceAfterPurge},
		{"history reads back in order", testHistoryReadsBack},
		{"status: compare-and-set", testStatusCompareAndSet},
		{"status: of racing writers one wins", testStatusRace},
		{"status: not found", testStatusNotFound},
		{"status: delete compare-and-set", testDeleteStatusCompareAndSet},
		{"read your writes through the other store", testReadYourWrites},
		{"watch: current value then each change", testWatchStatus},
		{"watch: resume from a revision", testWatchResume},
		{"purge: the instance and nothing else", testPurge},
		{"trim: earlier chunks go, the fence stays", testTrim},
		{"inbox: the ids of an instance's stored messages", testInboxMessageIDs},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, setup(t))
		})
	}
}

// hubSeq numbers the hubs of the suite's cases.
var hubSeq atomic.Int64

// freshHub returns a hub name no case has used.
func freshHub() string { return "conf" + strconv.FormatInt(hubSeq.Add(1), 10) }

func openStore(t *testing.T, nc *nats.Conn, cfg storage.Config) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), nc, cfg)
	require.NoError(t, err)
	return s
}

// TestConformanceSingleServer runs the conformance suite on one embedded
// server, the two stores of a case on two connections to it.
func TestConformanceSingleServer(t *testing.T) {
	t.Parallel()
	srv := runServer(t, t.TempDir(), "127.0.0.1:0")
	runConformance(t, func(t *testing.T) *conformanceBundle {
		t.Helper()
		cfg := storage.Config{Hub: freshHub()}
		nc, js := connect(t, srv)
		otherNC, _ := connect(t, srv)
		return &conformanceBundle{store: openStore(t, nc, cfg), other: openStore(t, otherNC, cfg), js: js}
	})
}

// TestConformancePartitioned runs the conformance suite on one embedded
// server with hubs of four partitions: every instance's streams are its
// partition's.
func TestConformancePartitioned(t *testing.T) {
	t.Parallel()
	srv := runServer(t, t.TempDir(), "127.0.0.1:0")
	runConformance(t, func(t *testing.T) *conformanceBundle {
		t.Helper()
		cfg := storage.Config{Hub: freshHub(), Partitions: 4}
		nc, js := connect(t, srv)
		otherNC, _ := connect(t, srv)
		return &conformanceBundle{store: openStore(t, nc, cfg), other: openStore(t, otherNC, cfg), js: js}
	})
}

// TestConformanceCluster runs the conformance suite on an in-process
// 3-node cluster with R3 hubs, the two stores of a case connected to
// different servers.
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	servers := runCluster(t, 3)
	var next atomic.Int64
	runConformance(t, func(t *testing.T) *conformanceBundle {
		t.Helper()
		cfg := storage.Config{Hub: freshHub(), Replicas: 3}
		writer := servers[int(next.Add(1))%len(servers)]
		nc, js := connect(t, writer)
		store := openStore(t, nc, cfg)

		info, err := js.Stream(t.Context(), store.Names().StatusStream())
		require.NoError(t, err)
		require.Equal(t, 3, info.CachedInfo().Config.Replicas, "the hub is replicated, so the store reads through the leaders")

		// The other store's server: not the writer's, and leading as few
		// of the two streams as it can (of three servers, one leads
		// neither).
		leads := func(srv *server.Server) int {
			n := 0
			for _, stream := range []string{store.Names().StatusStream(), store.Names().HistoryStream(0)} {
				if srv.JetStreamIsStreamLeader(srv.GlobalAccount().Name, stream) {
					n++
				}
			}
			return n
		}
		var reader *server.Server
		for _, srv := range servers {
			if srv != writer && (reader == nil || leads(srv) < leads(reader)) {
				reader = srv
			}
		}
		otherNC, _ := connect(t, reader)
		return &conformanceBundle{store: store, other: openStore(t, otherNC, cfg), js: js}
	})
}

// chunkAttempt is one AppendChunk of a fence case.
type chunkAttempt struct {
	name string
	n    uint32
	// prev gives the revision to write over, from the revisions of the
	// instance's chunks stored so far (ours[k] is chunk k's, ours[0] is 0)
	// and the last revision of a neighbouring instance's history.
	prev      func(ours []uint64, neighbour uint64) uint64
	withError error
}

func testFenceSequence(t *testing.T, b *conformanceBundle) {
	ctx := t.Context()
	// The neighbour's key is a prefix of ours: its chunks must not move
	// our fence.
	const id, neighbour = "fence é", "fence"
	ours := []uint64{0}
	var theirs uint64
	var want [][]history.Event
	for i, a := range []chunkAttempt{
		{name: "the first chunk over none", n: 1, prev: func(o []uint64, _ uint64) uint64 { return 0 }},
		{name: "the first chunk again", n: 1, prev: func(o []uint64, _ uint64) uint64 { return 0 }, withError: storage.ErrConflict},
		{name: "the second over none", n: 2, prev: func(o []uint64, _ uint64) uint64 { return 0 }, withError: storage.ErrConflict},
		{name: "the second over the first", n: 2, prev: func(o []uint64, _ uint64) uint64 { return o[1] }},
		{name: "the second again over the first", n: 2, prev: func(o []uint64, _ uint64) uint64 { return o[1] }, withError: storage.ErrConflict},
		{name: "the third over the first: missed the second", n: 3, prev: func(o []uint64, _ uint64) uint64 { return o[1] }, withError: storage.ErrConflict},
		{name: "the third over a revision not written yet", n: 3, prev: func(o []uint64, _ uint64) uint64 { return o[2] + 1000 }, withError: storage.ErrConflict},
		{name: "the third over the neighbour's last chunk", n: 3, prev: func(_ []uint64, nb uint64) uint64 { return nb }, withError: storage.ErrConflict},
		{name: "the third over the second", n: 3, prev: func(o []uint64, _ uint64) uint64 { return o[2] }},
	} {
		// Two processes take turns, and the neighbour writes between them.
		s := [2]*storage.Store{b.store, b.other}[i%2]
		evs := events(i+1, 1)
		rev, err := s.AppendChunk(ctx, id, a.n, a.prev(ours, theirs), evs, nil)
		if a.withError != nil {
			require.ErrorIs(t, err, a.withError, a.name)
			require.Zero(t, rev, a.name)
		} else {
			require.NoError(t, err, a.name)
			require.Greater(t, rev, ours[len(ours)-1], a.name)
			ours = append(ours, rev)
			want = append(want, evs)
		}
		theirs, err = b.other.AppendChunk(ctx, neighbour, uint32(i+1), theirs, events(100+i, 1), nil)
		require.NoError(t, err, "the neighbour's chunk after %q", a.name)
	}

	for _, s := range []*storage.Store{b.store, b.other} {
		chunks, err := s.LoadHistory(ctx, id)
		require.NoError(t, err)
		require.Len(t, chunks, len(want), "only the winners are stored")
		for k, c := range chunks {
			require.Equal(t, uint32(k+1), c.Number)
			require.Equal(t, ours[k+1], c.Revision)
			require.Equal(t, want[k], utc(c.Events), "chunk %d is the winner's", k+1)
		}
	}
}

func testFenceRace(t *testing.T, b *conformanceBundle) {
	for _, tc := range []struct {
		name   string
		before uint32 // chunks stored before the race
	}{
		{name: "on the first chunk", before: 0},
		{name: "on a later chunk", before: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			id := "race " + tc.name
			var prev uint64
			for c := uint32(1); c <= tc.before; c++ {
				var err error
				prev, err = b.store.AppendChunk(ctx, id, c, prev, events(int(c), 1), nil)
				require.NoError(t, err)
			}

			// Six writers, three through each store, start together on
			// the same revision.
			const writers = 6
			var wg sync.WaitGroup
			start := make(chan struct{})
			revs := make([]uint64, writers)
			errs := make([]error, writers)
			for i := range writers {
				s := [2]*storage.Store{b.store, b.other}[i%2]
				wg.Go(func() {
					<-start
					revs[i], errs[i] = s.AppendChunk(ctx, id, tc.before+1, prev, events(50+i, 1), nil)
				})
			}
			close(start)
			wg.Wait()
			winner := oneWinner(t, errs)

			chunks, err := b.other.LoadHistory(ctx, id)
			require.NoError(t, err)
			require.Len(t, chunks, int(tc.before)+1)
			last := chunks[len(chunks)-1]
			require.Equal(t, revs[winner], last.Revision)
			require.Equal(t, events(50+winner, 1), utc(last.Events), "the winner's chunk is stored")
		})
	}
}

func testFenceAfterPurge(t *testing.T, b *conformanceBundle) {
	ctx := t.Context()
	const id = "purged fence"
	old := []uint64{0}
	for c := uint32(1); c <= 3; c++ {
		rev, err := b.store.AppendChunk(ctx, id, c, old[c-1], events(int(c), 1), nil)
		require.NoError(t, err)
		old = append(old, rev)
	}
	rev, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusCompleted, ""), 0)
	require.NoError(t, err)
	require.NoError(t, b.other.PurgeInstance(ctx, id, rev))

	// stale is a writer that still holds the purged run (in its cache):
	// whatever it writes over the purged run's revisions loses, before
	// and during a new run of the id.
	type attempt struct {
		n    uint32
		prev uint64
	}
	stale := func(when string, attempts ...attempt) {
		t.Helper()
		for _, a := range attempts {
			_, err := b.store.AppendChunk(ctx, id, a.n, a.prev, events(9, 1), nil)
			require.ErrorIs(t, err, storage.ErrConflict, "%s: chunk %d over revision %d", when, a.n, a.prev)
		}
	}
	stale("before a new run", attempt{4, old[3]}, attempt{1, old[3]}, attempt{2, old[1]})

	// A new run of the id begins, through the other process.
	newRun := []uint64{0}
	for c := uint32(1); c <= 2; c++ {
		rev, err := b.other.AppendChunk(ctx, id, c, newRun[c-1], events(20+int(c), 1), nil)
		require.NoError(t, err, "chunk %d of the new run", c)
		newRun = append(newRun, rev)
	}
	stale("during the new run", attempt{4, old[3]}, attempt{3, old[2]}, attempt{2, old[1]})

	chunks, err := b.store.LoadHistory(ctx, id)
	require.NoError(t, err)
	require.Len(t, chunks, 2, "the new run's history, and nothing of the stale writer")
	for k, c := range chunks {
		require.Equal(t, newRun[k+1], c.Revision)
		require.Equal(t, events(21+k, 1), utc(c.Events))
	}
}

func testHistoryReadsBack(t *testing.T, b *conformanceBundle) {
	ctx := t.Context()
	const id, n = "history 1.é", 12
	// Chunks record the custom status of their turn: unchanged (nil), set,
	// or cleared (null).
	custom := func(c int) json.RawMessage {
		switch c % 3 {
		case 1:
			return nil
		case 2:
			return json.RawMessage(`{"step":` + strconv.Itoa(c) + `}`)
		}
		return json.RawMessage(`null`)
	}
	revs := []uint64{0}
	for c := 1; c <= n; c++ {
		s := [2]*storage.Store{b.store, b.other}[c%2]
		rev, err := s.AppendChunk(ctx, id, uint32(c), revs[c-1], events(c, c%3+1), custom(c))
		require.NoError(t, err)
		revs = append(revs, rev)
	}

	for _, s := range []*storage.Store{b.store, b.other} {
		chunks, err := s.LoadHistory(ctx, id)
		require.NoError(t, err)
		require.Len(t, chunks, n)
		for k, c := range chunks {
			num := k + 1
			require.Equal(t, uint32(num), c.Number)
			require.Equal(t, revs[num], c.Revision, "chunk %d", num)
			require.Equal(t, events(num, num%3+1), utc(c.Events), "chunk %d", num)
			require.Equal(t, custom(num), c.CustomStatus, "chunk %d", num)
		}

		for _, tc := range []struct {
			id   string
			n    uint32
			want bool
		}{
			{id: id, n: 1, want: true},
			{id: id, n: n, want: true},
			{id: id, n: n + 1},
			{id: "nobody", n: 1},
		} {
			ok, err := s.ChunkExists(ctx, tc.id, tc.n)
			require.NoError(t, err)
			require.Equal(t, tc.want, ok, "chunk %d of %q", tc.n, tc.id)
		}
		chunks, err = s.LoadHistory(ctx, "nobody")
		require.NoError(t, err)
		require.Empty(t, chunks, "an instance without history")
	}
}

func testStatusCompareAndSet(t *testing.T, b *conformanceBundle) {
	put := func(t *testing.T, id string, rs jetflow.RuntimeStatus, rev uint64) uint64 {
		t.Helper()
		rev, err := b.store.PutStatus(t.Context(), id, status(id, rs, ""), rev)
		require.NoError(t, err)
		return rev
	}
	for i, tc := range []struct {
		name string
		// prepare writes through b.store and returns the revision that
		// b.other then writes with.
		prepare   func(t *testing.T, id string) uint64
		withError error
	}{
		{
			name:    "create",
			prepare: func(t *testing.T, id string) uint64 { return 0 },
		},
		{
			name: "create over an existing status",
			prepare: func(t *testing.T, id string) uint64 {
				put(t, id, jetflow.StatusPending, 0)
				return 0
			},
			withError: storage.ErrConflict,
		},
		{
			name: "update the current revision",
			prepare: func(t *testing.T, id string) uint64 {
				return put(t, id, jetflow.StatusRunning, put(t, id, jetflow.StatusPending, 0))
			},
		},
		{
			name: "update a stale revision",
			prepare: func(t *testing.T, id string) uint64 {
				rev := put(t, id, jetflow.StatusPending, 0)
				put(t, id, jetflow.StatusRunning, rev)
				return rev
			},
			withError: storage.ErrConflict,
		},
		{
			name: "update a revision not written yet",
			prepare: func(t *testing.T, id string) uint64 {
				return put(t, id, jetflow.StatusPending, 0) + 1000
			},
			withError: storage.ErrConflict,
		},
		{
			name:      "update a missing status",
			prepare:   func(t *testing.T, id string) uint64 { return 1 },
			withError: storage.ErrConflict,
		},
		{
			name: "create after a delete",
			prepare: func(t *testing.T, id string) uint64 {
				require.NoError(t, b.store.DeleteStatus(t.Context(), id, put(t, id, jetflow.StatusPending, 0)))
				return 0
			},
		},
		{
			name: "create after a purge",
			prepare: func(t *testing.T, id string) uint64 {
				require.NoError(t, b.store.PurgeInstance(t.Context(), id, put(t, id, jetflow.StatusCompleted, 0)))
				return 0
			},
		},
		{
			name: "update a deleted status",
			prepare: func(t *testing.T, id string) uint64 {
				rev := put(t, id, jetflow.StatusPending, 0)
				require.NoError(t, b.store.DeleteStatus(t.Context(), id, rev))
				return rev
			},
			withError: storage.ErrConflict,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			id := "cas." + strconv.Itoa(i)
			rev := tc.prepare(t, id)
			before, beforeErr := b.store.GetStatus(ctx, id)
			want := status(id, jetflow.StatusCompleted, `"done"`)
			newRev, err := b.other.PutStatus(ctx, id, want, rev)
			after, afterErr := b.store.GetStatus(ctx, id)
			if tc.withError != nil {
				require.ErrorIs(t, err, tc.withError)
				require.Zero(t, newRev)
				require.Equal(t, before, after, "a lost write changes nothing")
				require.Equal(t, beforeErr == nil, afterErr == nil, "a lost write changes nothing")
				return
			}
			require.NoError(t, err)
			require.Greater(t, newRev, rev)
			require.NoError(t, afterErr)
			require.Equal(t, &storage.StatusEntry{Status: viaJSON(t, want), Revision: newRev}, after)
		})
	}
}

func testStatusRace(t *testing.T, b *conformanceBundle) {
	for _, tc := range []struct {
		name string
		// prepare writes earlier statuses and returns the revision the
		// writers race on.
		prepare func(t *testing.T, id string) uint64
	}{
		{name: "to create", prepare: func(t *testing.T, id string) uint64 { return 0 }},
		{name: "to update", prepare: func(t *testing.T, id string) uint64 {
			rev, err := b.store.PutStatus(t.Context(), id, status(id, jetflow.StatusPending, ""), 0)
			require.NoError(t, err)
			return rev
		}},
		{name: "to create after a delete", prepare: func(t *testing.T, id string) uint64 {
			rev, err := b.store.PutStatus(t.Context(), id, status(id, jetflow.StatusPending, ""), 0)
			require.NoError(t, err)
			require.NoError(t, b.store.DeleteStatus(t.Context(), id, rev))
			return 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			id := "race " + tc.name
			rev := tc.prepare(t, id)
			const writers = 6
			var wg sync.WaitGroup
			start := make(chan struct{})
			revs := make([]uint64, writers)
			errs := make([]error, writers)
			for i := range writers {
				s := [2]*storage.Store{b.store, b.other}[i%2]
				wg.Go(func() {
					<-start
					revs[i], errs[i] = s.PutStatus(ctx, id, status(id, jetflow.StatusRunning, strconv.Itoa(i)), rev)
				})
			}
			close(start)
			wg.Wait()
			winner := oneWinner(t, errs)
			for _, s := range []*storage.Store{b.store, b.other} {
				got, err := s.GetStatus(ctx, id)
				require.NoError(t, err)
				require.Equal(t, revs[winner], got.Revision)
				require.JSONEq(t, strconv.Itoa(winner), string(got.Status.CustomStatus), "the winner's status is stored")
			}
		})
	}
}

func testStatusNotFound(t *testing.T, b *conformanceBundle) {
	ctx := t.Context()
	rev, err := b.store.PutStatus(ctx, "deleted", status("deleted", jetflow.StatusPending, ""), 0)
	require.NoError(t, err)
	require.NoError(t, b.store.DeleteStatus(ctx, "deleted", rev))
	rev, err = b.store.PutStatus(ctx, "purged", status("purged", jetflow.StatusCompleted, ""), 0)
	require.NoError(t, err)
	require.NoError(t, b.store.PurgeInstance(ctx, "purged", rev))

	for _, id := range []string{"never written", "deleted", "purged"} {
		for i, s := range []*storage.Store{b.store, b.other} {
			got, err := s.GetStatus(ctx, id)
			require.ErrorIs(t, err, storage.ErrNotFound, "%q through store %d", id, i)
			require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "%q through store %d", id, i)
			require.Nil(t, got)
		}
	}
}

func testDeleteStatusCompareAndSet(t *testing.T, b *conformanceBundle) {
	for i, tc := range []struct {
		name string
		// rev gives the revision to delete with from the status's first
		// and current revisions.
		rev       func(first, current uint64) uint64
		withError error
	}{
		{name: "the current revision", rev: func(_, current uint64) uint64 { return current }},
		{name: "a stale revision", rev: func(first, _ uint64) uint64 { return first }, withError: storage.ErrConflict},
		{name: "a revision not written yet", rev: func(_, current uint64) uint64 { return current + 1000 }, withError: storage.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			id := "delete." + strconv.Itoa(i)
			first, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusPending, ""), 0)
			require.NoError(t, err)
			current, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusRunning, ""), first)
			require.NoError(t, err)

			err = b.other.DeleteStatus(ctx, id, tc.rev(first, current))
			got, getErr := b.store.GetStatus(ctx, id)
			if tc.withError != nil {
				require.ErrorIs(t, err, tc.withError)
				require.NoError(t, getErr, "a lost delete keeps the status")
				require.Equal(t, current, got.Revision)
				return
			}
			require.NoError(t, err)
			require.ErrorIs(t, getErr, storage.ErrNotFound)
		})
	}
}

func testReadYourWrites(t *testing.T, b *conformanceBundle) {
	ctx := t.Context()
	const id, rounds = "ryw", 20
	stores := [2]*storage.Store{b.store, b.other}
	var statusRev, chunkRev uint64
	for r := range rounds {
		// The stores take turns; each writes over the revisions it has just
		// read, as a worker that loaded an instance does.
		writer, reader := stores[r%2], stores[(r+1)%2]
		custom := strconv.Itoa(r)
		rev, err := writer.PutStatus(ctx, id, status(id, jetflow.StatusRunning, custom), statusRev)
		require.NoError(t, err, "round %d", r)
		crev, err := writer.AppendChunk(ctx, id, uint32(r+1), chunkRev, events(r+1, 1), json.RawMessage(custom))
		require.NoError(t, err, "round %d", r)

		got, err := reader.GetStatus(ctx, id)
		require.NoError(t, err, "round %d", r)
		require.Equal(t, rev, got.Revision, "round %d: the status just written", r)
		require.JSONEq(t, custom, string(got.Status.CustomStatus), "round %d", r)
		ok, err := reader.ChunkExists(ctx, id, uint32(r+1))
		require.NoError(t, err, "round %d", r)
		require.True(t, ok, "round %d: the chunk just written", r)
		chunks, err := reader.LoadHistory(ctx, id)
		require.NoError(t, err, "round %d", r)
		require.Equal(t, r+1, len(chunks), "round %d: the history up to the chunk just written", r)
		require.Equal(t, crev, chunks[r].Revision, "round %d", r)
		statusRev, chunkRev = got.Revision, chunks[r].Revision
	}
}

// update is what a test expects of a StatusUpdate.
type update struct {
	ID      string
	Rev     uint64
	Deleted bool
}

func updateOf(u storage.StatusUpdate) update {
	return update{ID: u.Status.InstanceID, Rev: u.Revision, Deleted: u.Deleted}
}

// receiveUpdates receives n updates from ch.
func receiveUpdates(t *testing.T, ch <-chan storage.StatusUpdate, n int, what string) []update {
	t.Helper()
	out := make([]update, 0, n)
	for len(out) < n {
		out = append(out, updateOf(testkit.Receive(t, ch, conformanceTimeout, "%s: update %d of %d (got %v)", what, len(out)+1, n, out)))
	}
	return out
}

func testWatchStatus(t *testing.T, b *conformanceBundle) {
	for _, tc := range []struct {
		name     string
		existing int // statuses written before the watch starts
	}{
		{name: "an existing instance", existing: 2},
		{name: "no status yet", existing: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			id := "watch " + tc.name
			var rev, neighbourRev uint64
			put := func(rs jetflow.RuntimeStatus, custom string) {
				t.Helper()
				var err error
				rev, err = b.store.PutStatus(ctx, id, status(id, rs, custom), rev)
				require.NoError(t, err)
				// Another instance, whose id has ours as a prefix, changes
				// in between: the watch leaves it out.
				neighbourRev, err = b.store.PutStatus(ctx, id+" 2", status(id+" 2", rs, custom), neighbourRev)
				require.NoError(t, err)
			}
			for range tc.existing {
				put(jetflow.StatusRunning, "")
			}
			ch, err := b.other.WatchStatus(t.Context(), id, 0)
			require.NoError(t, err)
			if tc.existing > 0 {
				require.Equal(t, []update{{ID: id, Rev: rev}}, receiveUpdates(t, ch, 1, "the current value"))
			}

			// Each change, received before the next is written.
			for i, rs := range []jetflow.RuntimeStatus{jetflow.StatusRunning, jetflow.StatusSuspended, jetflow.StatusRunning} {
				put(rs, strconv.Itoa(i))
				require.Equal(t, []update{{ID: id, Rev: rev}}, receiveUpdates(t, ch, 1, "change "+strconv.Itoa(i)))
			}

			// A burst of changes: the bucket keeps one revision per key, so
			// a value overwritten before the watch read it is not sent (as
			// the watch on another server may well be behind, this is
			// common on a cluster). What is sent is in revision order, and
			// the last value, here the delete, is never missed.
			written := map[uint64]bool{}
			for i := range 4 {
				put(jetflow.StatusRunning, strconv.Itoa(10+i))
				written[rev] = true
			}
			put(jetflow.StatusCompleted, "")
			written[rev] = true
			require.NoError(t, b.store.DeleteStatus(ctx, id, rev))
			var got []update
			for {
				u := updateOf(testkit.Receive(t, ch, conformanceTimeout, "the burst (got %v)", got))
				require.Equal(t, id, u.ID, "only the watched instance")
				if len(got) > 0 {
					require.Greater(t, u.Rev, got[len(got)-1].Rev, "in revision order: %v then %v", got, u)
				}
				got = append(got, u)
				if u.Deleted {
					require.Greater(t, u.Rev, rev, "the delete")
					break
				}
				require.True(t, written[u.Rev], "revision %d is one of the burst's writes", u.Rev)
				require.Less(t, len(got), len(written)+1, "nothing sent twice: %v", got)
			}
			testkit.Quiet(t, ch, 100*time.Millisecond, "nothing after the delete")
		})
	}
}

func testWatchResume(t *testing.T, b *conformanceBundle) {
	for i, tc := range []struct {
		name string
		// from gives the revision to resume from, from the revisions of
		// the writes (by name) and the bucket's last revision.
		from func(rev map[string]uint64, last uint64) uint64
		// want names the writes the watch sends, in order, before the
		// next write.
		want []string
	}{
		{
			name: "from the current values",
			from: func(_ map[string]uint64, _ uint64) uint64 { return 0 },
			want: []string{"b", "c", "a2"}, // d is deleted
		},
		{
			name: "from the first write",
			from: func(rev map[string]uint64, _ uint64) uint64 { return rev["a1"] },
			want: []string{"b", "c", "d deleted", "a2"},
		},
		{
			name: "from a write in the middle",
			from: func(rev map[string]uint64, _ uint64) uint64 { return rev["c"] },
			want: []string{"c", "d deleted", "a2"}, // b changed before
		},
		{
			name: "from a write overwritten since",
			from: func(rev map[string]uint64, _ uint64) uint64 { return rev["d"] },
			want: []string{"d deleted", "a2"},
		},
		{
			name: "from the next revision",
			from: func(_ map[string]uint64, last uint64) uint64 { return last + 1 },
		},
		{
			name: "from beyond the bucket's revisions",
			from: func(_ map[string]uint64, last uint64) uint64 { return last + 1_000_000 },
			want: []string{"b", "c", "a2"}, // as a fresh watch
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			prefix := "resume" + strconv.Itoa(i) + "."
			rev := map[string]uint64{}
			wants := map[string]update{}
			write := func(name, id string, rs jetflow.RuntimeStatus, over string) {
				t.Helper()
				r, err := b.store.PutStatus(ctx, prefix+id, status(prefix+id, rs, ""), rev[over])
				require.NoError(t, err, name)
				rev[name], wants[name] = r, update{ID: prefix + id, Rev: r}
			}
			write("a1", "a", jetflow.StatusRunning, "")
			write("b", "b", jetflow.StatusCompleted, "")
			write("c", "c", jetflow.StatusRunning, "")
			write("d", "d", jetflow.StatusCompleted, "")
			require.NoError(t, b.store.DeleteStatus(ctx, prefix+"d", rev["d"]))
			write("a2", "a", jetflow.StatusCompleted, "a1")
			// Another prefix's instance, to be left out.
			_, err := b.store.PutStatus(ctx, "other"+prefix, status("other"+prefix, jetflow.StatusRunning, ""), 0)
			require.NoError(t, err)
			last, err := b.store.LastStatusRevision(ctx)
			require.NoError(t, err)

			ch, err := b.other.WatchStatuses(t.Context(), prefix, tc.from(rev, last))
			require.NoError(t, err)
			got := receiveUpdates(t, ch, len(tc.want), "the resumed watch")
			want := []update{}
			for k, name := range tc.want {
				if name == "d deleted" {
					require.True(t, got[k].Deleted, "update %d: %v", k, got)
					require.Greater(t, got[k].Rev, rev["d"])
					require.Less(t, got[k].Rev, rev["a2"])
					want = append(want, update{ID: prefix + "d", Rev: got[k].Rev, Deleted: true})
					continue
				}
				want = append(want, wants[name])
			}
			require.Equal(t, want, got)
			testkit.Quiet(t, ch, 100*time.Millisecond, "nothing before the next write")

			write("e", "e", jetflow.StatusPending, "")
			require.Equal(t, []update{wants["e"]}, receiveUpdates(t, ch, 1, "the next write"))
		})
	}
}

// storedUnder returns how many messages stream holds under subject filter
// (nats.go's own count, asked of the stream leader).
func storedUnder(t *testing.T, js natsjs.JetStream, stream, filter string) uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), stream)
	require.NoError(t, err)
	info, err := st.Info(t.Context(), natsjs.WithSubjectFilter(filter))
	require.NoError(t, err)
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func testPurge(t *testing.T, b *conformanceBundle) {
	ctx := t.Context()
	names := b.store.Names()
	// The neighbours' ids share a prefix with the purged one.
	const id = "purge me"
	ids := []string{id, "purge", "purge me too"}
	revs := map[string]uint64{}
	first := map[string]uint64{}
	for _, x := range ids {
		var prev uint64
		for c := uint32(1); c <= 2; c++ {
			var err error
			prev, err = b.store.AppendChunk(ctx, x, c, prev, events(int(c), 1), nil)
			require.NoError(t, err)
		}
		var outs []storage.Outgoing
		for k := range 2 {
			o, err := b.store.InboxWrite(orchMessage(x, fmt.Sprintf("%s:event:%d", x, k)))
			require.NoError(t, err)
			outs = append(outs, o)
		}
		o, err := b.store.TimerWrite(orchMessage(x, x+":timer:1"), 1, time.Now().Add(time.Hour))
		require.NoError(t, err)
		outs = append(outs, o)
		require.NoError(t, storage.FirstError(b.store.Publish(ctx, outs...)))
		first[x], err = b.store.PutStatus(ctx, x, status(x, jetflow.StatusRunning, ""), 0)
		require.NoError(t, err)
		revs[x], err = b.store.PutStatus(ctx, x, status(x, jetflow.StatusCompleted, ""), first[x])
		require.NoError(t, err)
	}

	// stored checks what is left of instance x, through both stores and
	// the streams themselves.
	stored := func(t *testing.T, x string, present bool, what string) {
		t.Helper()
		chunks, inbox, timers := 2, uint64(2), uint64(1)
		if !present {
			chunks, inbox, timers = 0, 0, 0
		}
		for i, s := range []*storage.Store{b.store, b.other} {
			got, err := s.GetStatus(ctx, x)
			if present {
				require.NoError(t, err, "%s: the status of %q through store %d", what, x, i)
				require.Equal(t, revs[x], got.Revision)
			} else {
				require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "%s: the status of %q through store %d", what, x, i)
			}
			h, err := s.LoadHistory(ctx, x)
			require.NoError(t, err)
			require.Len(t, h, chunks, "%s: the history of %q through store %d", what, x, i)
			ok, err := s.ChunkExists(ctx, x, 1)
			require.NoError(t, err)
			require.Equal(t, present, ok, "%s: chunk 1 of %q through store %d", what, x, i)
		}
		require.Equal(t, inbox, storedUnder(t, b.js, names.InboxStream(names.Partition(x)), names.InstanceInboxFilter(x)), "%s: the inbox of %q", what, x)
		require.Equal(t, timers, storedUnder(t, b.js, names.InboxStream(names.Partition(x)), names.TimerFilter(x)), "%s: the timers of %q", what, x)
		require.Equal(t, uint64(chunks), storedUnder(t, b.js, names.HistoryStream(names.Partition(x)), names.HistorySubjects(x)), "%s: the chunks of %q", what, x)
	}

	for _, tc := range []struct {
		name      string
		rev       func() uint64
		withError error
		gone      []string // the instances purged once it has run
	}{
		{name: "a stale revision", rev: func() uint64 { return first[id] }, withError: storage.ErrConflict},
		{name: "a revision not written yet", rev: func() uint64 { return revs[id] + 1000 }, withError: storage.ErrConflict},
		{name: "the current revision", rev: func() uint64 { return revs[id] }, gone: []string{id}},
		{name: "again", rev: func() uint64 { return revs[id] }, withError: storage.ErrConflict, gone: []string{id}},
	} {
		err := b.other.PurgeInstance(ctx, id, tc.rev())
		if tc.withError != nil {
			require.ErrorIs(t, err, tc.withError, tc.name)
		} else {
			require.NoError(t, err, tc.name)
		}
		for _, x := range ids {
			stored(t, x, !slices.Contains(tc.gone, x), "after a purge with "+tc.name)
		}
	}
}

// oneWinner requires that exactly one of racing writers succeeded and the
// others lost with ErrConflict, and returns the winner.
func oneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "writers %d and %d both won", winner, i)
			winner = i
			continue
		}
		require.ErrorIs(t, err, storage.ErrConflict, "writer %d", i)
	}
	require.NotEqual(t, -1, winner, "one writer wins")
	return winner
}

func testTrim(t *testing.T, b *conformanceBundle) {
	ctx := t.Context()
	const id = "trim 1"
	revs := []uint64{0}
	for c := 1; c <= 4; c++ {
		rev, err := b.store.AppendChunk(ctx, id, uint32(c), revs[c-1], events(c, 1), nil)
		require.NoError(t, err)
		revs = append(revs, rev)
	}
	require.NoError(t, b.store.TrimHistory(ctx, id, revs[3]))
	for _, s := range []*storage.Store{b.store, b.other} {
		chunks, err := s.LoadHistory(ctx, id)
		require.NoError(t, err)
		require.Len(t, chunks, 2)
		require.EqualValues(t, 3, chunks[0].Number)
		require.EqualValues(t, 4, chunks[1].Number)
	}
	_, err := b.other.AppendChunk(ctx, id, 5, revs[2], events(5, 1), nil)
	require.ErrorIs(t, err, storage.ErrConflict, "a writer holding a trimmed chunk's revision")
	_, err = b.other.AppendChunk(ctx, id, 5, revs[4], events(5, 1), nil)
	require.NoError(t, err, "the writer holding the last revision")
}

func testInboxMessageIDs(t *testing.T, b *conformanceBundle) {
	ctx := t.Context()
	const id = "inbox me"
	var outs []storage.Outgoing
	for _, x := range []string{id, "inbox", id + " too", id} {
		o, err := b.store.InboxWrite(orchMessage(x, fmt.Sprintf("%s:event:%d", x, len(outs))))
		require.NoError(t, err)
		outs = append(outs, o)
	}
	require.NoError(t, storage.FirstError(b.store.Publish(ctx, outs...)))
	for _, s := range []*storage.Store{b.store, b.other} {
		ids, complete, err := s.InboxMessageIDs(ctx, id)
		require.NoError(t, err)
		require.True(t, complete)
		require.Equal(t, []string{id + ":event:0", id + ":event:3"}, ids)
		ids, complete, err = s.InboxMessageIDs(ctx, "nobody")
		require.NoError(t, err)
		require.True(t, complete)
		require.Empty(t, ids)
	}
}
