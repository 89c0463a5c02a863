//go:build chaos

package chaos_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/stretchr/testify/require"
)

// TestChaosChecker checks the randomized test's history checker on
// histories written by hand: it must pass sound ones and name what is
// wrong in the others (a checker that passes everything proves nothing).
func TestChaosChecker(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	turn := history.Event{Type: history.OrchestratorStarted, Time: at}
	start := func(exec string) history.Event {
		return history.Event{Type: history.ExecutionStarted, Time: at, Name: "X", ExecutionID: exec, MsgID: exec + ":start"}
	}
	task := func(id int32, in string) history.Event {
		return history.Event{Type: history.TaskScheduled, ID: id, Name: "Square", Input: json.RawMessage(in), Time: at}
	}
	result := func(id int32, out, msg string) history.Event {
		return history.Event{Type: history.TaskCompleted, TaskID: id, Result: json.RawMessage(out), MsgID: msg, Time: at}
	}
	raised := func(data, msg string) history.Event {
		return history.Event{Type: history.EventRaised, Name: "Add", Input: json.RawMessage(data), MsgID: msg, Time: at}
	}
	end := func(st history.Status) history.Event {
		return history.Event{Type: history.ExecutionCompleted, Status: st, Time: at}
	}
	timer := history.Event{Type: history.TimerCreated, ID: 1, FireAt: at.Add(time.Minute), Time: at}
	chunks := func(cs ...[]history.Event) []storage.Chunk {
		var out []storage.Chunk
		for i, c := range cs {
			out = append(out, storage.Chunk{Number: uint32(i + 1), Events: c})
		}
		return out
	}
	oneTask := histWant{final: "Completed", acts: 1}
	twoEvents := histWant{final: "Completed", executions: 2, events: map[string]int{eventKey("Add", 1): 1, eventKey("Add", 2): 1},
		required: []string{eventKey("Add", 1), eventKey("Add", 2)}}
	for _, tc := range []struct {
		name      string
		chunks    []storage.Chunk
		want      histWant
		withError string
	}{
		{"sound", chunks(
			[]history.Event{turn, start("e1"), task(0, "3")},
			[]history.Event{turn, result(0, "9", "e1:result:0"), end(history.StatusCompleted)},
		), oneTask, ""},
		{"result applied twice", chunks(
			[]history.Event{turn, start("e1"), task(0, "3")},
			[]history.Event{turn, result(0, "9", "e1:result:0")},
			[]history.Event{turn, result(0, "9", "e1:result:0"), end(history.StatusCompleted)},
		), oneTask, "applied twice"},
		{"two results", chunks(
			[]history.Event{turn, start("e1"), task(0, "3")},
			[]history.Event{turn, result(0, "9", "a"), result(0, "9", "b"), end(history.StatusCompleted)},
		), oneTask, "has 2 results"},
		{"wrong square", chunks(
			[]history.Event{turn, start("e1"), task(0, "3")},
			[]history.Event{turn, result(0, "10", "e1:result:0"), end(history.StatusCompleted)},
		), oneTask, "Square of 3 is 10"},
		{"a gap in the chunks", []storage.Chunk{
			{Number: 1, Events: []history.Event{turn, start("e1"), task(0, "3")}},
			{Number: 3, Events: []history.Event{turn, result(0, "9", "e1:result:0"), end(history.StatusCompleted)}},
		}, oneTask, "chunk numbers"},
		{"unfinished task in a completed execution", chunks(
			[]history.Event{turn, start("e1"), task(0, "3"), end(history.StatusCompleted)},
		), oneTask, "unfinished"},
		{"timer fired early", chunks(
			[]history.Event{turn, start("e1"), timer},
			[]history.Event{turn, {Type: history.TimerFired, TaskID: 1, FireAt: timer.FireAt, MsgID: "e1:timer:1"}, end(history.StatusCompleted)},
		), histWant{final: "Completed", timers: 1}, "before its time"},
		{"event carried over to the next execution", chunks(
			[]history.Event{turn, start("e1"), raised("1", "m1"), raised("2", "m2"), end(history.StatusContinuedAsNew),
				turn, start("e2"), raised("2", "m2"), end(history.StatusCompleted)},
		), twoEvents, ""},
		{"event applied in two executions", chunks(
			[]history.Event{turn, start("e1"), raised("1", "m1"), end(history.StatusContinuedAsNew),
				turn, start("e2"), task(0, "3"), raised("1", "m1"), end(history.StatusCompleted)},
		), twoEvents, "applied twice"},
		{"one event applied under two message ids", chunks(
			[]history.Event{turn, start("e1"), raised("1", "m1"), end(history.StatusContinuedAsNew),
				turn, start("e2"), raised("1", "m3"), end(history.StatusCompleted)},
		), twoEvents, "applied 2 times"},
		{"an event never raised", chunks(
			[]history.Event{turn, start("e1"), raised("5", "m1"), end(history.StatusCompleted)},
		), twoEvents, "did not raise"},
		{"terminated without a terminate", chunks(
			[]history.Event{turn, start("e1"), {Type: history.ExecutionTerminated, MsgID: "t"}, end(history.StatusTerminated)},
		), histWant{final: "Terminated"}, "did not terminate"},
		{"status and history disagree", chunks(
			[]history.Event{turn, start("e1"), task(0, "3")},
			[]history.Event{turn, result(0, "9", "e1:result:0"), end(history.StatusCompleted)},
		), histWant{final: "Terminated", terminated: true}, "status says Terminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := checkExecutions("i", tc.chunks, tc.want)
			if tc.withError == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.withError)
		})
	}
}

// TestChaosMonotonicChecker checks the randomized test's check that
// statuses never go backwards.
func TestChaosMonotonicChecker(t *testing.T) {
	t.Parallel()
	obs := func(rev uint64, st jetflow.RuntimeStatus, custom, output string) observed {
		o := observed{rev: rev, status: st, src: "watch"}
		if custom != "" {
			o.custom = json.RawMessage(custom)
		}
		if output != "" {
			o.output = json.RawMessage(output)
		}
		return o
	}
	gone := observed{rev: 99, deleted: true, src: "watch"}
	for _, tc := range []struct {
		name      string
		seen      []observed
		purged    bool
		withError string
	}{
		{"forward, read out of order", []observed{
			obs(1, jetflow.StatusPending, "", ""), obs(3, jetflow.StatusRunning, `"Seattle"`, ""),
			obs(2, jetflow.StatusRunning, `"Tokyo"`, ""), obs(4, jetflow.StatusCompleted, `"London"`, `1`),
		}, false, ""},
		{"purged", []observed{obs(4, jetflow.StatusCompleted, "", `1`), gone}, true, ""},
		{"back to Pending", []observed{obs(2, jetflow.StatusRunning, "", ""), obs(3, jetflow.StatusPending, "", "")}, false, "went backwards"},
		{"custom status back", []observed{obs(2, jetflow.StatusRunning, `"Seattle"`, ""), obs(3, jetflow.StatusRunning, `"Tokyo"`, "")}, false, "went backwards"},
		{"running after finished", []observed{obs(2, jetflow.StatusCompleted, "", "1"), obs(3, jetflow.StatusRunning, "", "")}, false, "went backwards"},
		{"finished twice", []observed{obs(2, jetflow.StatusCompleted, "", "1"), obs(3, jetflow.StatusTerminated, "", `"x"`)}, false, "finished status changed"},
		{"one revision, two values", []observed{obs(2, jetflow.StatusRunning, "", ""), obs(2, jetflow.StatusCompleted, "", "1")}, false, "seen as"},
		{"deleted, not purged", []observed{obs(4, jetflow.StatusCompleted, "", `1`), gone}, false, "did not purge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &statusWatch{seen: map[string][]observed{"i": tc.seen}}
			ld := &randomLoad{insts: map[string]*rinst{"i": {id: "i", name: "E1_HelloSequence", purged: tc.purged}}}
			var failed []string
			w.checkMonotonic(ld, func(format string, args ...any) { failed = append(failed, fmt.Sprintf(format, args...)) })
			if tc.withError == "" {
				require.Empty(t, failed)
				return
			}
			require.Len(t, failed, 1)
			require.Contains(t, failed[0], tc.withError)
		})
	}
}
