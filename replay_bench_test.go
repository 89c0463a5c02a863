package jetflow

import (
	"testing"

	"github.com/jetflow/jetflow/internal/history"
)

// replayHistory builds the history of an instance that has called
// Double one call after the other until its history holds at least n
// events (each call adds an OrchestratorStarted, the TaskCompleted and the
// next TaskScheduled), with the replayer that made it.
func replayHistory(b *testing.B, n int) (*sim, []history.Event) {
	return replayHistoryOf(b, n, n)
}

// replayHistoryOf is replayHistory of an instance that makes up to calls
// calls.
func replayHistoryOf(b *testing.B, n, calls int) (*sim, []history.Event) {
	b.Helper()
	r := testRegistry(b)
	addOrchestrator(b, r, "Sequence", func(ctx *OrchestrationContext) (any, error) {
		var limit int
		if err := ctx.GetInput(&limit); err != nil {
			return nil, err
		}
		for i := range limit {
			if err := ctx.CallActivity("Double", i).Await(nil); err != nil {
				return nil, err
			}
		}
		return limit, nil
	})
	s := newSim(b, r, "bench")
	s.start("Sequence", calls) // at least as many calls as the history will hold: it does not complete
	for len(s.hist) < n {
		s.turn(s.completions()...)
	}
	return s, s.hist
}

// BenchmarkReplay1000 replays a history of 1,000 events through the Go
// executor (the orchestrator's code rerun, each awaited call answered from
// history) with no new events: what a worker does for an instance it has
// not cached, and, as the executor replays from the start on every turn,
// for every turn of an instance that long.
func BenchmarkReplay1000(b *testing.B) {
	s, hist := replayHistory(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := s.full.Execute(s.id, hist, nil)
		if res.Done || len(res.Events) != 0 {
			b.Fatalf("replay asked for %d events, done %v", len(res.Events), res.Done)
		}
	}
	b.ReportMetric(float64(len(hist)), "events")
}

// BenchmarkReplay1000Turn is one turn of an instance with 1,000 events:
// the replay and then the new TaskCompleted, which schedules the next
// call.
func BenchmarkReplay1000Turn(b *testing.B) {
	s, hist := replayHistory(b, 1000)
	open := s.openIDs()
	if len(open) != 1 {
		b.Fatalf("%d calls open, want 1", len(open))
	}
	newEvents := []history.Event{
		{Type: history.OrchestratorStarted, Time: s.now},
		{Type: history.TaskCompleted, TaskID: open[0], Result: mustJSON(b, 2), Time: s.now},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := s.full.Execute(s.id, hist, newEvents)
		if len(res.Events) != 1 || res.Events[0].Type != history.TaskScheduled {
			b.Fatalf("the turn added %d events, want the next TaskScheduled", len(res.Events))
		}
	}
}

// BenchmarkTurnInSession1000 is BenchmarkReplay1000Turn for a worker that
// kept the instance's session: each turn continues the replay of the one
// before (the history grows by the turn's events), so a turn costs its
// new events only, however long the history is.
func BenchmarkTurnInSession1000(b *testing.B) {
	s, hist := replayHistoryOf(b, 1000, 1<<30)
	x := newReplayer(s.reg, nil)
	if res := x.Execute(s.id, hist, nil); res.Done || len(res.Events) != 0 {
		b.Fatalf("replay asked for %d events, done %v", len(res.Events), res.Done)
	}
	open := s.openIDs()[0]
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		newEvents := []history.Event{
			{Type: history.OrchestratorStarted, Time: s.now},
			{Type: history.TaskCompleted, TaskID: open, Result: mustJSON(b, 2), Time: s.now},
		}
		res := x.Execute(s.id, hist, newEvents)
		if len(res.Events) != 1 || res.Events[0].Type != history.TaskScheduled {
			b.Fatalf("the turn added %d events, want the next TaskScheduled", len(res.Events))
		}
		hist = append(append(hist, newEvents...), res.Events...)
		open = res.Events[0].ID
	}
	b.StopTimer()
	if x.sessions.resumed.Load() == 0 {
		b.Fatal("no turn continued the session")
	}
}
