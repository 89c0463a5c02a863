package client_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/samples"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// storedFor counts, by subject, the messages stored for an instance in
// the hub's streams and buckets: its status key, its history chunks, its
// inbox and its timers.
func storedFor(t *testing.T, e *testengine.Engine, id string) map[string]uint64 {
	t.Helper()
	js, err := natsjs.New(e.Conn)
	require.NoError(t, err)
	n := e.Storage.Names()
	out := map[string]uint64{}
	for _, f := range []struct{ stream, filter string }{
		{"KV_" + n.StatusBucket(), "$KV." + n.StatusBucket() + "." + n.StatusKey(id)},
		{n.HistoryStream(n.Partition(id)), n.HistorySubjects(id)},
		{n.InboxStream(n.Partition(id)), n.InstanceInboxFilter(id)},
		{n.InboxStream(n.Partition(id)), n.TimerFilter(id)},
	} {
		st, err := js.Stream(t.Context(), f.stream)
		require.NoError(t, err)
		info, err := st.Info(t.Context(), natsjs.WithSubjectFilter(f.filter))
		require.NoError(t, err)
		for subj, count := range info.State.Subjects {
			out[subj] += count
		}
	}
	return out
}

func TestPurgeInstance(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{
		Store: jetstream.Config{PurgeMarkerTTL: time.Second},
		Register: func(r *jetflow.Registry) error {
			return samples.Register(r, samples.Options{DiscountTimeout: time.Hour})
		},
	})
	ctx := e.Context(60 * time.Second)
	c := e.Client

	// ReserveTicket waits for an event with a durable timer of an hour: a
	// timer schedule stays in the inbox stream after it is terminated.
	id, err := c.StartOrchestration(ctx, "ReserveTicket", client.WithInstanceID("purge-1"), client.WithInput("u"))
	require.NoError(t, err)
	ch, err := c.WatchStatus(ctx, id, 0)
	require.NoError(t, err)
	untilCustomStatus(t, ch)

	require.ErrorIs(t, c.PurgeInstance(ctx, id), jetflow.ErrInstanceNotFinished, "a running instance is not purged")
	require.NotEmpty(t, storedFor(t, e, id))

	require.NoError(t, c.Terminate(ctx, id, "done"))
	_, err = c.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	stored := storedFor(t, e, id)
	timers := strings.TrimSuffix(e.Storage.Names().TimerFilter(id), ">")
	require.True(t, slices.ContainsFunc(slices.Collect(maps.Keys(stored)), func(s string) bool { return strings.HasPrefix(s, timers) }),
		"the pending timer is stored: %v", stored)

	require.NoError(t, c.PurgeInstance(ctx, id))
	_, err = c.GetStatus(ctx, id)
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound)
	hist, err := c.GetHistory(ctx, id)
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "history: %v", hist)
	require.ErrorIs(t, c.PurgeInstance(ctx, id), jetflow.ErrInstanceNotFound, "purged twice")
	require.ErrorIs(t, c.PurgeInstance(ctx, "never-was"), jetflow.ErrInstanceNotFound)

	// Only the status's purge marker is left, and it expires.
	testkit.WaitForNoError(t, 20*time.Second, "the purge marker to expire", func() error {
		if left := storedFor(t, e, id); len(left) > 0 {
			return fmt.Errorf("left behind: %v", left)
		}
		return nil
	})

	// The id can be used again: a new run with a history of its own.
	_, err = c.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(id))
	require.NoError(t, err)
	st, err := c.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	chunks, err := e.Storage.LoadHistory(ctx, id)
	require.NoError(t, err)
	require.Equal(t, uint32(1), chunks[0].Number)
	require.Equal(t, "E1_HelloSequence", chunks[0].Events[1].Name)
}

// TestPurgeRacesRestart purges finished instances while they are started
// again under the same id, on two workers: whichever wins, a run that
// started completes, with a history of its own.
func TestPurgeRacesRestart(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: 2, Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	ctx := e.Context(90 * time.Second)
	c := e.Client
	const n = 12
	ids := make([]string, n)
	for i := range ids {
		id, err := c.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(fmt.Sprintf("race-%d", i)))
		require.NoError(t, err)
		ids[i] = id
	}
	for _, id := range ids {
		_, err := c.WaitForCompletion(ctx, id)
		require.NoError(t, err)
	}
	for round := range 3 {
		var wg sync.WaitGroup
		restarted, purged := make([]bool, n), make([]bool, n)
		for i, id := range ids {
			wg.Go(func() {
				err := c.PurgeInstance(ctx, id)
				purged[i] = err == nil
				if err != nil && !errors.Is(err, jetflow.ErrInstanceNotFinished) && !errors.Is(err, jetflow.ErrInstanceNotFound) {
					t.Errorf("round %d: purge %s: %v", round, id, err)
				}
			})
			wg.Go(func() {
				// The purge reads more before it deletes: staggered starts
				// land before, during and after it.
				time.Sleep(time.Duration(i) * 3 * time.Millisecond) // the scenario: staggered starts
				_, err := c.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(id))
				if err != nil && !errors.Is(err, jetflow.ErrInstanceExists) {
					t.Errorf("round %d: start %s: %v", round, id, err)
				}
				restarted[i] = err == nil
			})
		}
		wg.Wait()
		t.Logf("round %d: %d purged, %d started, of %d", round, count(purged), count(restarted), n)
		for i, id := range ids {
			if !restarted[i] {
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			st, err := c.WaitForCompletion(wctx, id)
			cancel()
			require.NoError(t, err, "round %d: %s was started and must finish", round, id)
			require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
			require.JSONEq(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(st.Output))
		}
		// Make every instance finished again for the next round.
		for _, id := range ids {
			if _, err := c.GetStatus(ctx, id); errors.Is(err, jetflow.ErrInstanceNotFound) {
				_, err := c.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(id))
				require.NoError(t, err)
			}
			_, err := c.WaitForCompletion(ctx, id)
			require.NoError(t, err)
		}
	}
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func TestPurgeInstances(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ctx := e.Context(60 * time.Second)
	c := e.Client
	start := time.Now().UTC().Add(-time.Second)
	for i := range 5 {
		id, err := c.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(fmt.Sprintf("old-%d", i)))
		require.NoError(t, err)
		_, err = c.WaitForCompletion(ctx, id)
		require.NoError(t, err)
	}
	running, err := c.StartOrchestration(ctx, "SetStatusTest", client.WithInstanceID("old-running"))
	require.NoError(t, err)
	n, err := c.PurgeInstances(ctx, client.Query{CreatedTimeTo: start.Add(-time.Hour)})
	require.NoError(t, err)
	require.Zero(t, n, "nothing was created that early")

	n, err = c.PurgeInstances(ctx, client.Query{CreatedTimeFrom: start, InstanceIDPrefix: "old-"})
	require.NoError(t, err)
	require.Equal(t, 5, n, "the finished ones")
	page, err := c.ListInstances(ctx, client.Query{InstanceIDPrefix: "old-"})
	require.NoError(t, err)
	require.Len(t, page.Instances, 1)
	require.Equal(t, running, page.Instances[0].InstanceID)
}

func TestPurgeProgress(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ctx := e.Context(60 * time.Second)
	c := e.Client
	for _, id := range []string{"prog-0", "prog-1", "prog-2", "other-0"} {
		_, err := c.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(id))
		require.NoError(t, err)
		_, err = c.WaitForCompletion(ctx, id)
		require.NoError(t, err)
	}
	_, err := c.StartOrchestration(ctx, "SetStatusTest", client.WithInstanceID("prog-running"))
	require.NoError(t, err)

	t.Run("counted, then each purge", func(t *testing.T) {
		var got []client.PurgeProgress
		n, err := c.PurgeInstances(ctx, client.Query{InstanceIDPrefix: "prog-"},
			client.WithPurgeProgress(func(p client.PurgeProgress) { got = append(got, p) }))
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.Equal(t, []client.PurgeProgress{{Total: 3}, {Total: 3, Purged: 1}, {Total: 3, Purged: 2}, {Total: 3, Purged: 3}}, got,
			"the running instance is not counted")
		_, err = c.GetStatus(ctx, "other-0")
		require.NoError(t, err, "outside the query")
	})

	t.Run("nothing to purge", func(t *testing.T) {
		for _, q := range []client.Query{
			{InstanceIDPrefix: "prog-", RuntimeStatus: []jetflow.RuntimeStatus{jetflow.StatusRunning}},
			{InstanceIDPrefix: "nothing-"},
		} {
			var got []client.PurgeProgress
			n, err := c.PurgeInstances(ctx, q, client.WithPurgeProgress(func(p client.PurgeProgress) { got = append(got, p) }))
			require.NoError(t, err)
			require.Zero(t, n)
			require.Equal(t, []client.PurgeProgress{{}}, got, "reported once, before purging, for %+v", q)
		}
		_, err := c.GetStatus(ctx, "prog-running")
		require.NoError(t, err)
	})

	t.Run("invalid query", func(t *testing.T) {
		called := false
		_, err := c.PurgeInstances(ctx, client.Query{RuntimeStatus: []jetflow.RuntimeStatus{"Sleeping"}},
			client.WithPurgeProgress(func(client.PurgeProgress) { called = true }))
		require.ErrorIs(t, err, jetflow.ErrInvalidOption)
		require.False(t, called)
	})

	t.Run("a count over many index pages, stopped by the callback", func(t *testing.T) {
		// More finished instances than a page of the index holds, and
		// running ones among them.
		sts := make([]jetflow.Status, client.MaxPageSize+500+20)
		for i := range sts {
			sts[i] = jetflow.Status{Name: "Bulk", InstanceID: fmt.Sprintf("bulk-%04d", i), RuntimeStatus: jetflow.StatusCompleted,
				CreatedTime: jetflow.Time{Time: time.Now().UTC()}}
			if i%76 == 0 { // 20 of them
				sts[i].RuntimeStatus = jetflow.StatusRunning
			}
		}
		putStatuses(t, e.Storage, sts)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var got []client.PurgeProgress
		n, err := c.PurgeInstances(ctx, client.Query{InstanceIDPrefix: "bulk-"}, client.WithPurgeProgress(func(p client.PurgeProgress) {
			got = append(got, p)
			cancel()
		}))
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, n)
		require.Equal(t, []client.PurgeProgress{{Total: client.MaxPageSize + 500}}, got)
		page, err := c.ListInstances(t.Context(), client.Query{InstanceIDPrefix: "bulk-", Top: client.MaxPageSize})
		require.NoError(t, err)
		require.Len(t, page.Instances, client.MaxPageSize, "none purged")
	})
}
