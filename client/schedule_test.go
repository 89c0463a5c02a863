package client_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
)

// runLog records, per instance, when its orchestrator first ran (wall
// clock, in the orchestrator itself, replays included) and how often.
type runLog struct {
	mu    sync.Mutex
	first map[string]time.Time
	runs  map[string]int
}

func (l *runLog) ran(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.first[id]; !ok {
		l.first[id] = time.Now()
	}
	l.runs[id]++
}

func (l *runLog) of(id string) (time.Time, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first[id], l.runs[id]
}

// scheduleEngine is an engine with two orchestrators that log their runs:
// Stamp returns its input at once; Waits returns the data of event "go".
func scheduleEngine(t *testing.T) (*testengine.Engine, *runLog) {
	t.Helper()
	log := &runLog{first: map[string]time.Time{}, runs: map[string]int{}}
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddOrchestrator("Stamp", func(ctx *jetflow.OrchestrationContext) (any, error) {
			log.ran(ctx.InstanceID())
			var in any
			return in, ctx.GetInput(&in)
		})
		return r.AddOrchestrator("Waits", func(ctx *jetflow.OrchestrationContext) (any, error) {
			log.ran(ctx.InstanceID())
			var v any
			return v, ctx.WaitForExternalEvent("go").Await(&v)
		})
	}})
	return e, log
}

// startSubjects lists the schedule subjects of starts stored for id.
func startSubjects(t *testing.T, e *testengine.Engine, id string) []string {
	t.Helper()
	timers := strings.TrimSuffix(e.Storage.Names().TimerFilter(id), ">")
	return slices.DeleteFunc(slices.Collect(maps.Keys(storedFor(t, e, id))), func(s string) bool {
		return !strings.HasPrefix(s, timers) || !strings.HasSuffix(s, ".start")
	})
}

// TestScheduledStart: a start for a later time (WithStartTime) is Pending
// with its time until then, runs no earlier, and is a server message
// schedule among the instance's timers.
func TestScheduledStart(t *testing.T) {
	t.Parallel()
	e, log := scheduleEngine(t)
	ctx := e.Context(60 * time.Second)
	c := e.Client

	at := time.Now().Add(2500 * time.Millisecond)
	id, err := c.StartOrchestration(ctx, "Stamp", client.WithInstanceID("sched-1"), client.WithInput("x"), client.WithStartTime(at))
	require.NoError(t, err)
	st, err := c.GetStatus(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusPending, st.RuntimeStatus)
	want := at.UTC().Truncate(time.Second).Add(time.Second)
	require.Equal(t, want, st.ScheduledStartTime.Time, "the status shows the time, rounded up to the second")
	b, err := st.MarshalJSON()
	require.NoError(t, err)
	require.Contains(t, string(b), `"scheduledStartTime":"`+want.Format(jetflow.TimeFormat)+`"`)
	require.Len(t, startSubjects(t, e, id), 1, "the start is a schedule on the instance's start subject")

	done, err := c.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, done.RuntimeStatus)
	require.JSONEq(t, `"x"`, string(done.Output))
	first, runs := log.of(id)
	require.Equal(t, 1, runs)
	require.False(t, first.Before(at), "ran at %s, before its time %s", first.Format(time.StampMilli), at.Format(time.StampMilli))
	t.Logf("asked for %s, scheduled for %s, ran %s after the scheduled second", at.Format(time.StampMilli), want.Format(time.Stamp), first.Sub(want))
	require.Equal(t, want, done.ScheduledStartTime.Time, "the run's statuses keep the time it was scheduled for")
	require.Equal(t, st.CreatedTime, done.CreatedTime, "created when started, not when it ran")
	require.Empty(t, startSubjects(t, e, id), "a schedule that fired is gone")

	// A time that has passed, or is less than a second ahead, starts at once.
	for i, at := range []time.Time{time.Now().Add(-time.Hour), time.Now().Add(500 * time.Millisecond)} {
		id, err := c.StartOrchestration(ctx, "Stamp", client.WithInstanceID("now-"+string(rune('a'+i))), client.WithStartTime(at))
		require.NoError(t, err)
		st, err := c.GetStatus(ctx, id)
		require.NoError(t, err)
		require.True(t, st.ScheduledStartTime.IsZero(), "not scheduled: %s", st.ScheduledStartTime)
		b, err := st.MarshalJSON()
		require.NoError(t, err)
		require.NotContains(t, string(b), "scheduledStartTime", "the Durable Functions shape is unchanged")
		_, err = c.WaitForCompletion(ctx, id)
		require.NoError(t, err)
	}

	// Bad input changes nothing.
	_, err = c.StartOrchestration(ctx, "Stamp", client.WithInstanceID("bad-time"), client.WithStartTime(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)))
	require.ErrorIs(t, err, jetflow.ErrInvalidOption)
	_, err = c.GetStatus(ctx, "bad-time")
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound)
}

// TestScheduledStartSurvivesRestarts: the schedule is the server's, so a
// start whose time passes while no worker runs and the server restarted
// runs once a worker is back; a retry of the start with its request id
// schedules nothing twice.
func TestScheduledStartSurvivesRestarts(t *testing.T) {
	t.Parallel()
	e, log := scheduleEngine(t)
	ctx := e.Context(60 * time.Second)

	at := time.Now().Add(2 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Stamp", client.WithInstanceID("sched-r"), client.WithStartTime(at), client.WithRequestID("req-r"))
	require.NoError(t, err)
	before := storedFor(t, e, id)
	again, err := e.Client.StartOrchestration(ctx, "Stamp", client.WithInstanceID("sched-r"), client.WithStartTime(at.Add(time.Hour)), client.WithRequestID("req-r"))
	require.NoError(t, err)
	require.Equal(t, id, again)
	require.Equal(t, before, storedFor(t, e, id), "a retry of the request stores nothing new")

	e.RestartServer() // stops the worker too
	testkit.WaitFor(t, 10*time.Second, "the start time to pass and the schedule to fire", func() bool {
		return time.Now().After(at.Add(time.Second)) && len(startSubjects(t, e, id)) == 0
	})
	st, err := e.Client.GetStatus(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusPending, st.RuntimeStatus, "no worker: nothing ran")

	e.StartWorker()
	done, err := e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, done.RuntimeStatus)
	first, runs := log.of(id)
	require.Equal(t, 1, runs, "it ran once")
	require.False(t, first.Before(at))
}

// TestTerminateScheduledStart: an instance terminated before its time
// never runs, the schedule that fires later is dropped, and a purge
// before the time removes the schedule. Events raised to it meanwhile
// are held as for any Pending instance and applied once it runs.
func TestTerminateScheduledStart(t *testing.T) {
	t.Parallel()
	e, log := scheduleEngine(t)
	ctx := e.Context(60 * time.Second)
	c := e.Client

	at := time.Now().Add(2 * time.Second)
	_, err := c.StartOrchestration(ctx, "Waits", client.WithInstanceID("term-soon"), client.WithStartTime(at))
	require.NoError(t, err)
	_, err = c.StartOrchestration(ctx, "Waits", client.WithInstanceID("term-later"), client.WithStartTime(time.Now().Add(time.Hour)))
	require.NoError(t, err)
	_, err = c.StartOrchestration(ctx, "Waits", client.WithInstanceID("raised"), client.WithStartTime(at))
	require.NoError(t, err)

	require.NoError(t, c.RaiseEvent(ctx, "raised", "go", "early"), "a scheduled instance takes events")
	for _, id := range []string{"term-soon", "term-later"} {
		require.NoError(t, c.RaiseEvent(ctx, id, "go", "early"))
		require.NoError(t, c.Terminate(ctx, id, "not wanted"))
		done, err := c.WaitForCompletion(ctx, id)
		require.NoError(t, err)
		require.Equal(t, jetflow.StatusTerminated, done.RuntimeStatus)
		require.JSONEq(t, `"not wanted"`, string(done.Output))
		require.True(t, time.Now().Before(at), "terminated before its time (the test ran too slowly)")
	}

	// Purged before its time: the schedule goes with it.
	require.Len(t, startSubjects(t, e, "term-later"), 1)
	require.NoError(t, c.PurgeInstance(ctx, "term-later"))
	left := storedFor(t, e, "term-later")
	delete(left, "$KV."+e.Storage.Names().StatusBucket()+"."+e.Storage.Names().StatusKey("term-later")) // the purge marker
	require.Empty(t, left, "the purge leaves nothing, the start's schedule included")
	_, err = c.GetStatus(ctx, "term-later")
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound)

	// The other's schedule fires, finds its start applied, and is dropped.
	done, err := c.WaitForCompletion(ctx, "raised")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, done.RuntimeStatus)
	require.JSONEq(t, `"early"`, string(done.Output), "the event raised before the start is applied")
	testkit.WaitFor(t, 10*time.Second, "the terminated instance's schedule to fire", func() bool {
		return len(startSubjects(t, e, "term-soon")) == 0
	})
	testkit.WaitForNoError(t, 10*time.Second, "the worker to take the fired start", func() error {
		return e.Idle(ctx)
	})
	st, err := c.GetStatus(ctx, "term-soon")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusTerminated, st.RuntimeStatus)
	for _, id := range []string{"term-soon", "term-later"} {
		_, runs := log.of(id)
		require.Zero(t, runs, "%s never ran", id)
	}
}

// TestEventsBeforeAFarStartAreDeferred: events raised to an instance whose
// start is scheduled well ahead are handed to the server, to come again at
// the start's time, instead of being held by a worker (a lease, and a
// status read every second, for as long as the start is ahead); they are
// applied when it starts.
func TestEventsBeforeAFarStartAreDeferred(t *testing.T) {
	t.Parallel()
	e, log := scheduleEngine(t)
	ctx := e.Context(60 * time.Second)
	c := e.Client

	at := time.Now().Add(14 * time.Second)
	_, err := c.StartOrchestration(ctx, "Waits", client.WithInstanceID("far"), client.WithStartTime(at))
	require.NoError(t, err)
	require.NoError(t, c.RaiseEvent(ctx, "far", "go", "early"))
	held := strings.TrimSuffix(e.Storage.Names().TimerFilter("far"), ">") + "held."
	heldSubjects := func() []string {
		return slices.DeleteFunc(slices.Collect(maps.Keys(storedFor(t, e, "far"))), func(s string) bool {
			return !strings.HasPrefix(s, held)
		})
	}
	testkit.WaitForNoError(t, 10*time.Second, "the event to be deferred, and no worker to hold it", func() error {
		if n := len(heldSubjects()); n != 1 {
			return fmt.Errorf("%d deferred messages", n)
		}
		return e.Idle(ctx)
	})
	require.True(t, time.Now().Before(at.Add(-5*time.Second)), "deferred well before the start (the test ran too slowly)")
	_, runs := log.of("far")
	require.Zero(t, runs, "nothing ran before the start")

	done, err := c.WaitForCompletion(ctx, "far")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, done.RuntimeStatus)
	require.JSONEq(t, `"early"`, string(done.Output), "the deferred event is applied at the start")
	first, _ := log.of("far")
	require.False(t, first.Before(at.Truncate(time.Second)), "ran at its time, not before")
	testkit.WaitFor(t, 10*time.Second, "the deferred message's schedule to be gone", func() bool {
		return len(heldSubjects()) == 0
	})
}
