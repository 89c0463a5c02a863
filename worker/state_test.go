package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow/internal/history"
)

// TestAddChunkIncremental: what addChunk keeps of the current execution
// (its start and end, the scheduling IDs, the suspension in force), which
// it updates from each chunk alone, is what a scan of the whole view
// gives, through continue-as-new, suspend/resume, a failure and its rewind.
func TestAddChunkIncremental(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	os := func(s int) history.Event { return history.Event{Type: history.OrchestratorStarted, Time: at(s)} }
	chunks := [][]history.Event{
		{os(0), {Type: history.ExecutionStarted, ExecutionID: "e1", MsgID: "start"}, {Type: history.TaskScheduled, ID: 0}},
		{os(1), {Type: history.TaskCompleted, TaskID: 0, MsgID: "r0"}, {Type: history.TaskScheduled, ID: 1}, {Type: history.TimerCreated, ID: 2}},
		{os(2), {Type: history.ExecutionSuspended, Time: at(2), MsgID: "s"}},
		{os(3), {Type: history.ExecutionResumed, Time: at(3), MsgID: "u"}, {Type: history.TaskFailed, TaskID: 1, MsgID: "r1"},
			{Type: history.ExecutionCompleted, Status: history.StatusFailed}},
		{os(4), {Type: history.ExecutionRewound, ExecutionID: "e1b", MsgID: "rw"}, {Type: history.TaskScheduled, ID: 1}},
		{os(5), {Type: history.TaskCompleted, TaskID: 1, MsgID: "r1b"}, {Type: history.TaskScheduled, ID: 3}},
		{os(6), {Type: history.TaskCompleted, TaskID: 3, MsgID: "r3"}, {Type: history.ExecutionCompleted, Status: history.StatusContinuedAsNew},
			os(6), {Type: history.ExecutionStarted, ExecutionID: "e2"}},
		{os(7), {Type: history.ExecutionSuspended, Time: at(7), MsgID: "s2"}, {Type: history.TaskScheduled, ID: 0}},
	}
	check := func(chunks [][]history.Event) *state {
		t.Helper()
		st := newState()
		for i, c := range chunks {
			st.addChunk(uint32(i+1), uint64(i+1), c, nil)
			var started, done *history.Event
			var scheduled int32
			for k := range st.events {
				switch e := &st.events[k]; e.Type {
				case history.ExecutionStarted:
					started = e
				case history.ExecutionCompleted:
					done = e
				case history.TaskScheduled, history.TimerCreated, history.SubOrchestrationCreated:
					scheduled = max(scheduled, e.ID+1)
				}
			}
			suspended, toggled := suspension(false, time.Time{}, st.events)
			require.Same(t, started, st.started, "chunk %d: started", i+1)
			require.Same(t, done, st.done, "chunk %d: done", i+1)
			require.Equal(t, scheduled, st.scheduled, "chunk %d: scheduled", i+1)
			require.Equal(t, suspended, st.suspended, "chunk %d: suspended", i+1)
			require.Equal(t, toggled, st.toggled, "chunk %d: toggled", i+1)
		}
		return st
	}
	st := check(chunks)
	require.Equal(t, "e2", st.started.ExecutionID)
	require.Nil(t, st.done)
	require.True(t, st.suspended)
	require.True(t, st.wasScheduled(0))
	require.False(t, st.wasScheduled(1), "IDs are the current execution's")

	// The same without the failure and the rewind: continue-as-new alone
	// begins a view.
	st = check(append(append(chunks[:3:3], []history.Event{os(3), {Type: history.ExecutionResumed, Time: at(3), MsgID: "u"}}), chunks[6:]...))
	require.Equal(t, "e2", st.started.ExecutionID)
	require.Nil(t, st.done)
	require.False(t, st.wasScheduled(1))

	// After the rewind (chunk 5) the view has no failure and no end.
	st = newState()
	for i, c := range chunks[:6] {
		st.addChunk(uint32(i+1), uint64(i+1), c, nil)
	}
	require.Nil(t, st.done)
	require.Equal(t, "e1b", st.started.ExecutionID)
	require.True(t, st.wasScheduled(3))
}
