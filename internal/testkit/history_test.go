package testkit_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// TestCheckChunks checks the history checker on histories written by
// hand: it must pass sound ones, including those that continue as new, are
// rewound or are restarted, and name what is wrong in the others (a checker
// that passes everything proves nothing).
func TestCheckChunks(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	turn := history.Event{Type: history.OrchestratorStarted, Time: at}
	later := history.Event{Type: history.OrchestratorStarted, Time: at.Add(time.Hour)}
	start := func(exec string) history.Event {
		return history.Event{Type: history.ExecutionStarted, Time: at, Name: "X", ExecutionID: exec, MsgID: exec + ":start"}
	}
	next := func(exec string) history.Event { // the start of a continue-as-new: no message
		return history.Event{Type: history.ExecutionStarted, Time: at, Name: "X", ExecutionID: exec}
	}
	task := func(id int32) history.Event {
		return history.Event{Type: history.TaskScheduled, ID: id, Name: "A", Input: json.RawMessage("1"), Time: at}
	}
	result := func(id int32, msg string) history.Event {
		return history.Event{Type: history.TaskCompleted, TaskID: id, Result: json.RawMessage("2"), MsgID: msg, Time: at}
	}
	failure := func(id int32, msg string) history.Event {
		return history.Event{Type: history.TaskFailed, TaskID: id, Failure: &history.Failure{Message: "no"}, MsgID: msg, Time: at}
	}
	raised := func(msg string) history.Event {
		return history.Event{Type: history.EventRaised, Name: "E", Input: json.RawMessage("1"), MsgID: msg, Time: at}
	}
	end := func(st history.Status) history.Event {
		return history.Event{Type: history.ExecutionCompleted, Status: st, Time: at}
	}
	rewound := func(exec, msg string) history.Event {
		return history.Event{Type: history.ExecutionRewound, ExecutionID: exec, MsgID: msg, Time: at}
	}
	timer := history.Event{Type: history.TimerCreated, ID: 0, FireAt: at.Add(time.Minute), Time: at}
	fired := history.Event{Type: history.TimerFired, TaskID: 0, FireAt: timer.FireAt, MsgID: "e1:timer:0", Time: timer.FireAt}
	chunks := func(cs ...[]history.Event) []storage.Chunk {
		var out []storage.Chunk
		for i, c := range cs {
			out = append(out, storage.Chunk{Number: uint32(i + 1), Events: c})
		}
		return out
	}
	type events = []history.Event
	for _, tc := range []struct {
		name      string
		chunks    []storage.Chunk
		withError string
	}{
		{"running", chunks(events{turn, start("e1"), task(0), task(1)}, events{turn, result(1, "e1:result:1")}), ""},
		{"completed with a task left pending", chunks(
			events{turn, start("e1"), task(0), task(1)},
			events{turn, result(1, "e1:result:1"), end(history.StatusCompleted)},
		), ""},
		{"a timer fired on time", chunks(events{turn, start("e1"), timer}, events{later, fired, end(history.StatusCompleted)}), ""},
		{"continued as new, an event carried over", chunks(
			events{turn, start("e1"), raised("m1"), raised("m2"), end(history.StatusContinuedAsNew),
				turn, next("e2"), raised("m2"), task(0)},
			events{turn, result(0, "e2:result:0"), end(history.StatusCompleted)},
		), ""},
		{"restarted after it finished", chunks(
			events{turn, start("e1"), task(0)},
			events{turn, result(0, "e1:result:0"), end(history.StatusCompleted)},
			events{turn, start("e2"), task(0)},
		), ""},
		{"rewound", chunks(
			events{turn, start("e1"), task(0), task(1), task(2)},
			events{turn, result(0, "e1:result:0"), failure(2, "e1:result:2"), end(history.StatusFailed)},
			events{turn, rewound("e1b", "rw"), task(1), task(2)},
			events{turn, result(2, "e1b:result:2"), result(1, "e1b:result:1"), end(history.StatusCompleted)},
		), ""},

		{"no chunks", nil, "no history"},
		{"a gap in the chunks", []storage.Chunk{
			{Number: 1, Events: events{turn, start("e1"), task(0)}},
			{Number: 3, Events: events{turn, result(0, "e1:result:0")}},
		}, "chunk numbers"},
		{"an empty chunk", chunks(events{turn, start("e1")}, nil), "chunk 2 is empty"},
		{"no start", chunks(events{turn, task(0)}), "chunk 1, event 1 (TaskScheduled #0 \"A\"): comes before ExecutionStarted"},
		{"a start while running", chunks(events{turn, start("e1")}, events{turn, start("e2")}), "while execution 1 runs"},
		{"an execution id twice", chunks(events{turn, start("e1"), end(history.StatusCompleted), turn, next("e1")}), `execution id "e1"`},
		{"a message applied twice", chunks(
			events{turn, start("e1"), task(0), task(1)},
			events{turn, result(0, "e1:result:0")},
			events{turn, raised("e1:result:0")},
		), `execution 1, chunk 3, event 7 (EventRaised "E"): message id "e1:result:0" applied twice`},
		{"an event in two executions", chunks(
			events{turn, start("e1"), raised("m1"), end(history.StatusContinuedAsNew),
				turn, next("e2"), task(0), raised("m1")},
		), "applied twice"},
		{"an event carried over into a restart", chunks(
			events{turn, start("e1"), raised("m1"), end(history.StatusCompleted), turn, start("e2"), raised("m1")},
		), "applied twice"},
		{"a scheduling id twice", chunks(events{turn, start("e1"), task(0), task(0)}), "scheduling id 0 used twice"},
		{"a result never scheduled", chunks(events{turn, start("e1")}, events{turn, result(3, "m")}), "for task 3, never scheduled"},
		{"a result of the wrong kind", chunks(events{turn, start("e1"), timer}, events{later, result(0, "m")}), "completes TimerCreated #0"},
		{"two results", chunks(
			events{turn, start("e1"), task(0)},
			events{turn, result(0, "a"), result(0, "b")},
		), `TaskScheduled #0 "A" has 2 results`},
		{"a result of an execution before", chunks(
			events{turn, start("e1"), task(0), end(history.StatusContinuedAsNew), turn, next("e2")},
			events{turn, result(0, "e1:result:0")},
		), "never scheduled"},
		{"a timer fired early", chunks(events{turn, start("e1"), timer}, events{turn, fired}), "before its time"},
		{"two completions", chunks(
			events{turn, start("e1"), end(history.StatusCompleted)},
			events{turn, end(history.StatusFailed)},
		), "after ExecutionCompleted (Completed)"},
		{"an event after the end", chunks(events{turn, start("e1"), end(history.StatusCompleted), raised("m")}), "after ExecutionCompleted"},
		{"continued as new into nothing", chunks(events{turn, start("e1"), end(history.StatusContinuedAsNew)}), "no execution follows"},
		{"a rewind of a completed execution", chunks(
			events{turn, start("e1"), end(history.StatusCompleted)},
			events{turn, rewound("e1b", "rw")},
		), "not Failed"},
		{"a rewind of a running execution", chunks(events{turn, start("e1")}, events{turn, rewound("e1b", "rw")}), "rewinds an execution that runs"},
		{"a completed task sent again after a rewind", chunks(
			events{turn, start("e1"), task(0), task(1)},
			events{turn, result(0, "e1:result:0"), failure(1, "e1:result:1"), end(history.StatusFailed)},
			events{turn, rewound("e1b", "rw"), task(0)},
		), "scheduling id 0 used twice"},
		{"a result twice after a rewind", chunks(
			events{turn, start("e1"), task(0)},
			events{turn, failure(0, "e1:result:0"), end(history.StatusFailed)},
			events{turn, rewound("e1b", "rw"), task(0)},
			events{turn, result(0, "e1b:result:0"), result(0, "e1b:result:0b")},
		), "has 2 results"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := testkit.CheckChunks(tc.chunks)
			if tc.withError == "" {
				require.NoError(t, err)
				n := 0
				for _, c := range tc.chunks {
					n += len(c.Events)
				}
				require.Len(t, events, n)
				return
			}
			require.ErrorContains(t, err, tc.withError)
			require.Nil(t, events)
		})
	}
}

func TestCheckHistory(t *testing.T) {
	t.Parallel()
	require.ErrorContains(t, testkit.CheckHistory(nil), "no history")
	require.ErrorContains(t, testkit.CheckHistory([]history.Event{{Type: history.OrchestratorStarted}}), "no ExecutionStarted")
	require.NoError(t, testkit.CheckHistory([]history.Event{{Type: history.OrchestratorStarted}, {Type: history.ExecutionStarted, ExecutionID: "e"}}))
	require.ErrorContains(t, testkit.CheckHistory([]history.Event{{Type: history.ExecutionStarted, ExecutionID: "e"}, {Type: 99}}),
		"execution 1, event 1 (Type(99)): unknown event type")
}

// TestCheckChunksTrimmed: a history whose executions that continued as
// new were trimmed starts at a later chunk, with the end of a trimmed
// execution before its first ExecutionStarted; one with a gap, or whose
// first chunk begins nothing, is not sound.
func TestCheckChunksTrimmed(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	turn := history.Event{Type: history.OrchestratorStarted, Time: at}
	raised := func(msg string) history.Event {
		return history.Event{Type: history.EventRaised, Name: "E", Input: json.RawMessage("1"), MsgID: msg, Time: at}
	}
	next := func(exec string) history.Event {
		return history.Event{Type: history.ExecutionStarted, Time: at, Name: "X", ExecutionID: exec}
	}
	continued := history.Event{Type: history.ExecutionCompleted, Status: history.StatusContinuedAsNew, Time: at}
	trimmed := []storage.Chunk{
		{Number: 7, Events: []history.Event{turn, raised("m6"), continued, turn, next("e7")}},
		{Number: 8, Events: []history.Event{turn, raised("m7"), continued, turn, next("e8")}},
	}
	events, err := testkit.CheckChunks(trimmed)
	require.NoError(t, err)
	require.Len(t, events, 6, "the events from the first ExecutionStarted on")
	require.Equal(t, history.ExecutionStarted, events[0].Type)

	_, err = testkit.CheckChunks([]storage.Chunk{trimmed[0], {Number: 9, Events: trimmed[1].Events}})
	require.ErrorContains(t, err, "chunk numbers are not 7..8")
	_, err = testkit.CheckChunks([]storage.Chunk{{Number: 7, Events: []history.Event{turn, raised("m6")}}})
	require.ErrorContains(t, err, "begins no execution")
}
