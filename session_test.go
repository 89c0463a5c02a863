package jetflow

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow/internal/history"
)

// sequenceRegistry has "Sequence": Double called one after the other, as
// many times as its input says, with a custom status after each call, and
// the sum as output.
func sequenceRegistry(t testing.TB) *Registry {
	r := testRegistry(t)
	addOrchestrator(t, r, "Sequence", func(ctx *OrchestrationContext) (any, error) {
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		sum := 0
		for i := range n {
			var d int
			if err := ctx.CallActivity("Double", i).Await(&d); err != nil {
				return nil, err
			}
			sum += d
			if err := ctx.SetCustomStatus(sum); err != nil {
				return nil, err
			}
		}
		return sum, nil
	})
	return r
}

// TestReplaySessions: turns of a long execution continue its kept replay
// (sim compares every turn with a replay of the whole history by a
// replayer that keeps none), and a turn whose history is not what the
// session saw replays from the start.
func TestReplaySessions(t *testing.T) {
	t.Parallel()
	r := sequenceRegistry(t)

	t.Run("continued", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, r, "long")
		require.False(t, s.start("Sequence", 150).Resumed)
		require.True(t, s.turn(s.completions()...).Resumed)
		requireCompleted(t, s.run(), "22350")
		require.True(t, s.last.Resumed)
		require.EqualValues(t, 150, s.x.sessions.resumed.Load(), "every turn after the first continues the session")
		require.Zero(t, s.x.sessions.count(), "a finished execution keeps no session")
	})

	t.Run("history it did not see", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, r, "diverged")
		s.start("Sequence", 10)
		s.turn(s.completions()...)
		s.turn(s.completions()...)
		resumed := s.x.sessions.resumed.Load()
		// A turn that was never committed (its worker lost the fence):
		// the session moved past the stored history.
		s.now = s.now.Add(time.Second)
		lost := s.x.Execute(s.id, slices.Clone(s.hist), []history.Event{
			{Type: history.OrchestratorStarted, Time: s.now}, {Type: history.TaskCompleted, TaskID: 2, Result: []byte("99"), Time: s.now}})
		require.Len(t, lost.Events, 1)
		require.Equal(t, resumed+1, s.x.sessions.resumed.Load())
		// Another worker committed the same turn with the true result: a
		// history as long as the one the session expects, but not it.
		other := []history.Event{{Type: history.OrchestratorStarted, Time: s.now}, {Type: history.TaskCompleted, TaskID: 2, Result: []byte("4"), Time: s.now}}
		res := s.full.Execute(s.id, slices.Clone(s.hist), other)
		s.hist = append(append(s.hist, other...), res.Events...)
		delete(s.open, 2)
		for _, e := range res.Events {
			s.open[e.ID] = e
		}
		require.Len(t, s.hist, s.x.sessions.byID[s.id].events(), "the same length")
		res = s.turn(s.completions()...)
		require.Equal(t, resumed+1, s.x.sessions.resumed.Load(), "a history the session did not see is replayed")
		require.Equal(t, `12`, string(res.CustomStatus), "0 + 2 + 4 + 6, not the lost turn's 99")
		requireCompleted(t, s.run(), "90")
	})

	t.Run("events recorded without a run", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, r, "suspended")
		s.start("Sequence", 5)
		s.turn(s.completions()...)
		// A suspended instance's worker records what arrives without
		// running the orchestrator.
		s.hist = append(s.hist, history.Event{Type: history.OrchestratorStarted, Time: s.now},
			history.Event{Type: history.ExecutionSuspended, Time: s.now, MsgID: "s1"})
		resumed := s.x.sessions.resumed.Load()
		s.turn(append(s.completions(), history.Event{Type: history.ExecutionResumed, MsgID: "r1"})...)
		require.Equal(t, resumed+1, s.x.sessions.resumed.Load(), "the session goes through the events it did not see")
		requireCompleted(t, s.run(), "20")
	})

	t.Run("another worker's turns", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, r, "overtaken")
		s.start("Sequence", 8)
		s.turn(s.completions()...)
		// Another worker (a replayer of its own) runs the next three
		// turns; this one's cache then catches up with their chunks.
		mine := s.x
		s.x = s.full
		for range 3 {
			s.turn(s.completions()...)
		}
		s.x = mine
		resumed := s.x.sessions.resumed.Load()
		res := s.turn(s.completions()...)
		require.Equal(t, resumed+1, s.x.sessions.resumed.Load(), "the session went through the other worker's turns")
		require.True(t, res.Resumed)
		require.Equal(t, `20`, string(res.CustomStatus), "0 + 2 + 4 + 6 + 8")
		requireCompleted(t, s.run(), "56")
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		x := newReplayer(r, nil)
		x.sessions = newSessions(0, 2, 1_000_000)
		sims := make([]*sim, 3)
		for i := range sims {
			sims[i] = newSim(t, r, string(rune('a'+i)))
			sims[i].x = x
			sims[i].start("Sequence", 3)
		}
		require.Equal(t, 2, x.sessions.count(), "the oldest session was unwound")
		require.Nil(t, x.sessions.take("a"))
		for _, s := range sims {
			requireCompleted(t, s.run(), "6")
		}
		require.Zero(t, x.sessions.count())

		x.sessions = newSessions(0, 10, 8)
		s := newSim(t, r, "big")
		s.x = x
		s.start("Sequence", 10)
		s.turn(s.completions()...)
		require.Equal(t, 1, x.sessions.count())
		s.turn(s.completions()...) // 9 events: over the bound alone
		require.Zero(t, x.sessions.count())
	})

	t.Run("released", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, r, "released")
		s.start("Sequence", 5)
		kept := s.x.sessions.byID["released"]
		require.NotNil(t, kept)
		goExecutor{s.x}.Release()
		require.Zero(t, s.x.sessions.count())
		require.True(t, kept.r.c.exited, "the orchestrator goroutine was unwound")
		requireCompleted(t, s.run(), "20")
	})

	t.Run("short executions keep none", func(t *testing.T) {
		t.Parallel()
		x := newReplayer(r, nil)
		s := newSim(t, r, "short")
		s.x = x
		s.start("Sequence", 3)
		require.Zero(t, x.sessions.count())
		requireCompleted(t, s.run(), "6")
		require.Zero(t, x.sessions.resumed.Load())
	})
}
