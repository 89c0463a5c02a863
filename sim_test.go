package jetflow

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
)

// t0 is the simulated clock's start.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// sim drives Execute turn by turn the way a worker does: it keeps the
// history, feeds each turn's new events, appends what Execute returns, and
// checks after every turn that replaying the history reproduces it.
type sim struct {
	t    testing.TB
	reg  *Registry
	x    *replayer // keeps sessions from the first event on
	full *replayer // keeps none: every Execute replays all of history
	id   string
	now  time.Time
	hist []history.Event
	open map[int32]history.Event // scheduled, not completed yet
	last *executor.TurnResult
}

func newSim(t testing.TB, reg *Registry, id string) *sim {
	x := newReplayer(reg, nil)
	x.sessions = newSessions(0, sessionMaxCount, sessionMaxEvents)
	full := newReplayer(reg, nil)
	full.sessions = nil
	return &sim{t: t, reg: reg, x: x, full: full, id: id, now: t0, open: map[int32]history.Event{}}
}

// start begins the execution.
func (s *sim) start(name string, input any) *executor.TurnResult {
	s.t.Helper()
	return s.turn(history.Event{Type: history.ExecutionStarted, Name: name, Input: mustJSON(s.t, input), ExecutionID: s.id + "#1"})
}

// turn runs one turn one second after the last, with msgs after its
// OrchestratorStarted.
func (s *sim) turn(msgs ...history.Event) *executor.TurnResult {
	s.t.Helper()
	s.now = s.now.Add(time.Second)
	newEvents := []history.Event{{Type: history.OrchestratorStarted, Time: s.now}}
	for _, m := range msgs {
		if m.Time.IsZero() {
			m.Time = s.now
		}
		newEvents = append(newEvents, m)
		if m.IsCompletion() {
			delete(s.open, m.TaskID)
		}
	}
	res := s.x.Execute(s.id, slices.Clone(s.hist), newEvents)
	require.NotNil(s.t, res)
	s.hist = append(s.hist, newEvents...)
	s.hist = append(s.hist, res.Events...)
	for _, e := range res.Events {
		require.Equal(s.t, s.now, e.Time, "new events carry the turn time: %s", e.Describe())
		if e.IsScheduling() {
			s.open[e.ID] = e
		}
	}
	require.Equal(s.t, len(res.Events) > 0 && res.Events[len(res.Events)-1].Type == history.ExecutionCompleted, res.Done)
	s.last = res
	s.checkReplay(res)
	return res
}

// checkReplay replays the whole history in one go and requires the same
// outcome as the turn-by-turn run.
func (s *sim) checkReplay(res *executor.TurnResult) {
	s.t.Helper()
	n := len(s.hist)
	var again *executor.TurnResult
	if res.Done {
		again = s.full.Execute(s.id, s.hist[:n-1], nil)
		require.Equal(s.t, s.hist[n-1:], again.Events, "replaying the history must end it the same way")
		require.Equal(s.t, res.CarryOver, again.CarryOver)
		require.True(s.t, s.full.Execute(s.id, s.hist, nil).Done)
	} else {
		again = s.full.Execute(s.id, s.hist, nil)
		require.Empty(s.t, again.Events, "replaying the history must ask for nothing new")
	}
	require.Equal(s.t, string(res.CustomStatus), string(again.CustomStatus))
}

// completions runs the open activities with the registry and the open
// sub-orchestrations as simulated child instances, and returns their
// completion events in ID order. Timers stay open.
func (s *sim) completions() []history.Event {
	s.t.Helper()
	var out []history.Event
	for _, id := range s.openIDs() {
		e := s.open[id]
		switch e.Type {
		case history.TaskScheduled:
			result, failure := s.reg.runActivity(context.Background(), e.Name, s.id, e.ID, e.Input)
			if failure != nil {
				out = append(out, history.Event{Type: history.TaskFailed, TaskID: e.ID, Failure: failure})
			} else {
				out = append(out, history.Event{Type: history.TaskCompleted, TaskID: e.ID, Result: result})
			}
		case history.SubOrchestrationCreated:
			child := newSim(s.t, s.reg, e.InstanceID)
			child.now = s.now
			child.turn(history.Event{
				Type: history.ExecutionStarted, Name: e.Name, Input: e.Input, ExecutionID: e.InstanceID + "#1",
				Parent: &history.Parent{InstanceID: s.id, ExecutionID: s.id + "#1", TaskID: e.ID},
			})
			end := child.run()
			if end.Status == history.StatusCompleted {
				out = append(out, history.Event{Type: history.SubOrchestrationCompleted, TaskID: e.ID, Result: end.Result})
			} else {
				out = append(out, history.Event{Type: history.SubOrchestrationFailed, TaskID: e.ID, Failure: end.Failure})
			}
		}
	}
	return out
}

func (s *sim) openIDs() []int32 {
	ids := make([]int32, 0, len(s.open))
	for id := range s.open {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// fire returns the TimerFired event of open timer id, moving the clock so
// that the next turn happens at its due time (or now, if later).
func (s *sim) fire(id int32) history.Event {
	s.t.Helper()
	e, ok := s.open[id]
	require.True(s.t, ok, "timer #%d is not open", id)
	require.Equal(s.t, history.TimerCreated, e.Type)
	if due := e.FireAt.Add(-time.Second); s.now.Before(due) {
		s.now = due
	}
	return history.Event{Type: history.TimerFired, TaskID: id, FireAt: e.FireAt}
}

// run completes activities and sub-orchestrations, and fires timers when
// nothing else is open, until the execution ends; it returns the final
// ExecutionCompleted.
func (s *sim) run() history.Event {
	s.t.Helper()
	for i := 0; !s.last.Done; i++ {
		require.Less(s.t, i, 1000, "the orchestration does not finish")
		msgs := s.completions()
		if len(msgs) == 0 {
			for _, id := range s.openIDs() {
				if s.open[id].Type == history.TimerCreated {
					msgs = append(msgs, s.fire(id))
					break
				}
			}
		}
		require.NotEmpty(s.t, msgs, "the orchestration waits for something run cannot give it")
		s.turn(msgs...)
	}
	return s.final()
}

// final returns the ExecutionCompleted that ended the history.
func (s *sim) final() history.Event {
	s.t.Helper()
	require.NotEmpty(s.t, s.hist)
	e := s.hist[len(s.hist)-1]
	require.Equal(s.t, history.ExecutionCompleted, e.Type)
	return e
}

func raised(t testing.TB, name string, data any) history.Event {
	return history.Event{Type: history.EventRaised, Name: name, Input: mustJSON(t, data)}
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// recordingHandler keeps the messages of the records it handles.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.msgs)
}
