package storage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// drainQuiet receives updates until none comes for a moment.
func drainQuiet(t *testing.T, ch <-chan storage.StatusUpdate) []storage.StatusUpdate {
	t.Helper()
	var out []storage.StatusUpdate
	for {
		select {
		case u, ok := <-ch:
			require.True(t, ok, "channel closed")
			out = append(out, u)
		case <-time.After(300 * time.Millisecond):
			return out
		}
	}
}

func ids(us []storage.StatusUpdate) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Status.InstanceID
	}
	return out
}

func TestWatchStatuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	all := []string{"ord-1", "ord-2", "ord.1", "order", "or", "x-ord-1", "é1", "é.2", "ord=3"}
	revs := map[string]uint64{}
	for _, id := range all {
		rev, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusPending, ""), 0)
		require.NoError(t, err)
		revs[id] = rev
	}

	// Not parallel: the empty prefix sees every key of the bucket, so this
	// runs before the other subtests write theirs.
	t.Run("prefix", func(t *testing.T) {
		for _, tt := range []struct {
			prefix string
			want   []string
		}{
			{"", all},
			{"ord", []string{"ord-1", "ord-2", "ord.1", "order", "ord=3"}},
			{"ord-", []string{"ord-1", "ord-2"}},
			{"ord.", []string{"ord.1"}},
			{"ord=", []string{"ord=3"}}, // '=' is the escape character of keys
			{"é", []string{"é1", "é.2"}},
			{"or", []string{"ord-1", "ord-2", "ord.1", "order", "or", "ord=3"}},
			{"order", []string{"order"}},
			{"nobody", []string{}},
		} {
			ch, err := b.store.WatchStatuses(within(t, 10*time.Second), tt.prefix, 0)
			require.NoError(t, err)
			got := drainQuiet(t, ch)
			require.Equal(t, tt.want, ids(got), "prefix %q: current values in revision order", tt.prefix)
			for _, u := range got {
				require.Equal(t, revs[u.Status.InstanceID], u.Revision)
				require.False(t, u.Deleted)
			}
		}
	})

	t.Run("changes and deletions", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		ch, err := b.store.WatchStatuses(within(t, 10*time.Second), "del.", 0)
		require.NoError(t, err)
		testkit.Quiet(t, ch, 200*time.Millisecond)
		r1, err := b.store.PutStatus(ctx, "del.1", status("del.1", jetflow.StatusPending, ""), 0)
		require.NoError(t, err)
		_, err = b.store.PutStatus(ctx, "de", status("de", jetflow.StatusPending, ""), 0)
		require.NoError(t, err)
		r2, err := b.store.PutStatus(ctx, "del.1", status("del.1", jetflow.StatusRunning, ""), r1)
		require.NoError(t, err)
		require.NoError(t, b.store.DeleteStatus(ctx, "del.1", r2))

		// The bucket keeps one value per key: a value overwritten (or
		// purged) before the watch read it is skipped, so r1 and r2 may not
		// both come; what comes, comes in order, and the deletion last.
		var del storage.StatusUpdate
		var last uint64
		for del = testkit.Receive(t, ch, 5*time.Second); !del.Deleted; del = testkit.Receive(t, ch, 5*time.Second) {
			require.Contains(t, []uint64{r1, r2}, del.Revision)
			require.Greater(t, del.Revision, last)
			last = del.Revision
		}
		require.True(t, del.Deleted)
		require.Equal(t, "del.1", del.Status.InstanceID, "a deletion names the decoded id")
		require.Greater(t, del.Revision, r2)
		testkit.Quiet(t, ch, 200*time.Millisecond)

		// A new watch does not send deleted instances as current values...
		ch, err = b.store.WatchStatuses(within(t, 10*time.Second), "del.", 0)
		require.NoError(t, err)
		testkit.Quiet(t, ch, 200*time.Millisecond)
		// ...but a resumed one does: the watcher may have seen the instance.
		ch, err = b.store.WatchStatuses(within(t, 10*time.Second), "del.", r1)
		require.NoError(t, err)
		require.Equal(t, del, testkit.Receive(t, ch, 5*time.Second), "only the latest value of a key changed since")
		testkit.Quiet(t, ch, 200*time.Millisecond)
	})

	t.Run("resume", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		const id = "res-1"
		r1, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusPending, ""), 0)
		require.NoError(t, err)
		r2, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusRunning, `"Tokyo"`), r1)
		require.NoError(t, err)
		rOther, err := b.store.PutStatus(ctx, "res-2", status("res-2", jetflow.StatusPending, ""), 0)
		require.NoError(t, err)
		r3, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusCompleted, `"London"`), r2)
		require.NoError(t, err)

		// From r2 (inclusive): res-2, then res-1 at its latest value.
		ch, err := b.store.WatchStatuses(within(t, 10*time.Second), "res-", r2)
		require.NoError(t, err)
		got := drainQuiet(t, ch)
		require.Len(t, got, 2)
		require.Equal(t, rOther, got[0].Revision)
		require.Equal(t, r3, got[1].Revision)
		require.Equal(t, jetflow.StatusCompleted, got[1].Status.RuntimeStatus, "the terminal status is never missed")

		// After the last revision: nothing until the next write.
		ch, err = b.store.WatchStatuses(within(t, 10*time.Second), "res-", r3+1)
		require.NoError(t, err)
		testkit.Quiet(t, ch, 200*time.Millisecond)
		r4, err := b.store.PutStatus(ctx, "res-2", status("res-2", jetflow.StatusRunning, ""), rOther)
		require.NoError(t, err)
		require.Equal(t, r4, testkit.Receive(t, ch, 5*time.Second).Revision)
	})
}

// TestWatchStatusesResumeUnderWrites resumes a watch again and again while
// statuses are written: across every resume, revisions only grow (nothing
// twice), each value is the one written at its revision, and every key ends
// at its last value (nothing missed).
func TestWatchStatusesResumeUnderWrites(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	const keys, writes = 8, 400

	var mu sync.Mutex
	written := map[uint64]string{} // revision -> "<id> <custom status>"
	final := map[string]uint64{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		revs := make([]uint64, keys)
		for i := range writes {
			k := rand.IntN(keys)
			id := fmt.Sprintf("load-%d", k)
			rev, err := b.store.PutStatus(ctx, id, status(id, jetflow.StatusRunning, fmt.Sprint(i)), revs[k])
			if err != nil {
				t.Error(err)
				return
			}
			revs[k] = rev
			mu.Lock()
			written[rev] = fmt.Sprintf("%s %d", id, i)
			final[id] = rev
			mu.Unlock()
		}
	}()

	var seen []storage.StatusUpdate
	after := uint64(0)
	resumes := 0
	for {
		wctx, cancel := context.WithCancel(ctx)
		from := uint64(0)
		if after > 0 {
			from = after + 1
		}
		ch, err := b.store.WatchStatuses(wctx, "load-", from)
		require.NoError(t, err)
		n := 1 + rand.IntN(40)
		finished := false
		for range n {
			select {
			case u := <-ch:
				seen = append(seen, u)
				after = u.Revision
				continue
			case <-done:
			case <-time.After(2 * time.Second):
			}
			// The writer is done: read what is left, then stop.
			seen = append(seen, drainQuiet(t, ch)...)
			finished = true
			break
		}
		cancel()
		testkit.Collect(t, ch, 5*time.Second)
		resumes++
		if finished {
			break
		}
	}
	<-done
	require.Greater(t, resumes, 3)

	mu.Lock()
	defer mu.Unlock()
	last := map[string]uint64{}
	for i, u := range seen {
		if i > 0 {
			require.Greater(t, u.Revision, seen[i-1].Revision, "revisions only grow")
		}
		want, ok := written[u.Revision]
		require.True(t, ok, "revision %d was written", u.Revision)
		require.Equal(t, want, u.Status.InstanceID+" "+string(u.Status.CustomStatus))
		last[u.Status.InstanceID] = u.Revision
	}
	require.Equal(t, final, last, "every key's last value was seen")
}

// TestWatchStopWithBacklog is not parallel: it counts goroutines. A watch
// stopped while nats.go holds more entries than its channel takes must not
// leave nats.go's delivery goroutine blocked for ever. The watch reads
// ahead (batches of up to 1,024 records, a few of them buffered), so the
// bucket holds more than that.
func TestWatchStopWithBacklog(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	outs := make([]storage.Outgoing, 10000)
	for i := range outs {
		id := fmt.Sprintf("backlog-%05d", i)
		o, err := b.store.StatusWrite(id, status(id, jetflow.StatusPending, ""), 0)
		require.NoError(t, err)
		outs[i] = o
	}
	require.NoError(t, storage.FirstError(b.store.Publish(ctx, outs...)))
	for range 3 {
		wctx, cancel := context.WithCancel(ctx)
		ch, err := b.store.WatchStatuses(wctx, "", 0)
		require.NoError(t, err)
		testkit.Receive(t, ch, 5*time.Second)
		testkit.WaitFor(t, 5*time.Second, "nats.go to fill its channel", func() bool {
			return goroutines("[chan send", "(*kvs).WatchFiltered.func") > 0
		})
		cancel()
		testkit.Collect(t, ch, 5*time.Second)
	}
	testkit.WaitForNoError(t, 5*time.Second, "nats.go's watch goroutines to be let go", func() error {
		if n := goroutines("(*kvs).WatchFiltered.func"); n > 0 {
			return fmt.Errorf("%d left blocked", n)
		}
		return nil
	})
}

// goroutines counts the goroutines whose stack trace holds every one of
// parts: with "(*kvs).WatchFiltered.func", those inside nats.go's KV watch
// callback.
func goroutines(parts ...string) int {
	return testkit.Goroutines(func(g string) bool {
		return !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(g, p) })
	})
}

// TestWatchResumeDeletionPastOneBatch: a resumed watch sends deletions
// however many records come before them. The watch reads in batches of at
// most 1,024 records; a deletion in a later batch, before the watch has
// caught up, was taken for an initial value and dropped.
func TestWatchResumeDeletionPastOneBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	outs := make([]storage.Outgoing, 1500)
	for i := range outs {
		id := fmt.Sprintf("many-%04d", i)
		o, err := b.store.StatusWrite(id, status(id, jetflow.StatusRunning, ""), 0)
		require.NoError(t, err)
		outs[i] = o
	}
	res := b.store.Publish(ctx, outs...)
	require.NoError(t, storage.FirstError(res))
	require.NoError(t, b.store.DeleteStatus(ctx, "many-0007", res[7].Seq))

	ch, err := b.store.WatchStatuses(ctx, "many-", res[0].Seq)
	require.NoError(t, err)
	deleted := false
	for n := 0; !deleted; n++ {
		u := testkit.Receive(t, ch, 10*time.Second, "update %d: no deletion of many-0007 came", n)
		deleted = u.Deleted && u.Status.InstanceID == "many-0007"
	}
}
