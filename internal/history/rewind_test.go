package history_test

import (
	"testing"

	"github.com/jetflow/jetflow/internal/history"
	"github.com/stretchr/testify/require"
)

func TestRewound(t *testing.T) {
	failure := &history.Failure{Message: "boom"}
	failed := []history.Event{
		{Type: history.OrchestratorStarted},
		{Type: history.ExecutionStarted, Name: "o", ExecutionID: "e1"},
		{Type: history.TaskScheduled, ID: 0, Name: "a"},
		{Type: history.TaskScheduled, ID: 1, Name: "slow"},
		{Type: history.TimerCreated, ID: 2},
		{Type: history.OrchestratorStarted},
		{Type: history.TaskCompleted, TaskID: 0, MsgID: "m0"},
		{Type: history.TaskScheduled, ID: 3, Name: "b"},
		{Type: history.OrchestratorStarted},
		{Type: history.TaskFailed, TaskID: 3, Failure: failure, MsgID: "m3"},
		{Type: history.ExecutionCompleted, Status: history.StatusFailed, Failure: failure},
	}
	require.Equal(t, failed, history.Rewound(failed), "no rewind: unchanged")

	// What is waiting for a result once the failures are out: the task
	// that failed, the one still running, the timer not fired.
	pending := history.Pending(failed[:9])
	require.Equal(t, []int32{1, 2, 3}, ids(pending))

	rewind := append([]history.Event{{Type: history.OrchestratorStarted},
		{Type: history.ExecutionRewound, ExecutionID: "e2", MsgID: "r"}}, pending...)
	got := history.Rewound(append(append([]history.Event(nil), failed...), rewind...))
	want := append([]history.Event(nil), failed[:9]...)
	want[1].ExecutionID = "e2"
	want = append(want, history.Event{Type: history.OrchestratorStarted})
	require.Equal(t, want, got)
	require.Equal(t, "e1", failed[1].ExecutionID, "the input is not changed")

	// After the rewind the execution goes on; a second rewind removes the
	// failures of the rewound run.
	more := append(got, history.Event{Type: history.TaskFailed, TaskID: 1, Failure: failure},
		history.Event{Type: history.ExecutionCompleted, Status: history.StatusFailed},
		history.Event{Type: history.ExecutionRewound, ExecutionID: "e3"},
		history.Event{Type: history.TaskScheduled, ID: 1, Name: "slow"})
	again := history.Rewound(more)
	require.Equal(t, "e3", again[1].ExecutionID)
	require.Equal(t, got[2:], again[2:])

	// A rewind in an earlier execution (before a continue-as-new) leaves
	// the next one alone.
	next := append(append([]history.Event(nil), more...), history.Event{Type: history.ExecutionStarted, ExecutionID: "n1"},
		history.Event{Type: history.TaskScheduled, ID: 0}, history.Event{Type: history.TaskFailed, TaskID: 0})
	out := history.Rewound(next)
	require.Equal(t, next[len(next)-3:], out[len(out)-3:])
}

func ids(events []history.Event) []int32 {
	var out []int32
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}
