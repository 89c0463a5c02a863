package client

import (
	"context"
	"time"

	"github.com/jetflow/jetflow/internal/history"
)

// The kinds of a Task.
const (
	TaskActivity         = "activity"
	TaskTimer            = "timer"
	TaskSubOrchestration = "subOrchestration"
	TaskEvent            = "event"
)

// The states of a Task.
const (
	TaskPending   = "pending"
	TaskCompleted = "completed"
	TaskFailed    = "failed"
	// TaskAbandoned is a task still pending when its execution ended (a
	// timer of a wait that the event won, say).
	TaskAbandoned = "abandoned"
)

// Tasks is the work of an instance's current execution, one entry per
// piece, as GetTasks returns it: what the history of the HTTP API
// (historyEvents) leaves out, because it shows a task only once it has
// finished and without its attempt or its sub-orchestration's id.
type Tasks struct {
	// Parent is the orchestration that started this one as a
	// sub-orchestration; nil for a top-level instance.
	Parent *TaskParent `json:"parent"`
	// Tasks are the execution's activity calls (one per attempt), timers,
	// sub-orchestrations and external events received, in the order they
	// were scheduled or arrived.
	Tasks []Task `json:"tasks"`
}

// TaskParent names the parent of a sub-orchestration.
type TaskParent struct {
	// InstanceID is the parent's instance id.
	InstanceID string `json:"instanceId"`
	// Name is the parent's orchestrator name.
	Name string `json:"name,omitempty"`
}

// Task is one piece of work of an execution. Its times are RFC 3339 with
// milliseconds (finer than a status's whole seconds, for timelines).
type Task struct {
	// Kind is TaskActivity, TaskTimer, TaskSubOrchestration or TaskEvent
	// (an external event that arrived).
	Kind string `json:"kind"`
	// ID is the scheduling event's id within the execution (the taskId
	// of a status's activityProgress); -1 for an event.
	ID int32 `json:"id"`
	// Name is the activity's, sub-orchestrator's or event's name; empty
	// for a timer.
	Name string `json:"name,omitempty"`
	// Attempt is, for an activity, which attempt of its call this is: 1,
	// then 2 for the first retry of a call with a retry policy, and so on;
	// 0 for other kinds.
	Attempt int32 `json:"attempt,omitempty"`
	// ScheduledTime is when the orchestrator scheduled the task. For an
	// event, it is when the orchestrator ran the turn before the one the
	// event arrived in: history does not record when a wait began, and it
	// began at that turn or earlier.
	ScheduledTime time.Time `json:"scheduledTime"`
	// EndTime is when the task's result (or the event) was recorded; nil
	// while it is pending.
	EndTime *time.Time `json:"endTime"`
	// State is TaskPending, TaskCompleted, TaskFailed or TaskAbandoned.
	State string `json:"state"`
	// FireAt is a timer's due time.
	FireAt *time.Time `json:"fireAt,omitempty"`
	// InstanceID is a sub-orchestration's instance id.
	InstanceID string `json:"instanceId,omitempty"`
	// Failure is the error of a failed task.
	Failure string `json:"failure,omitempty"`
	// Rewound is true for a task a rewind scheduled again after it failed.
	Rewound bool `json:"rewound,omitempty"`
}

// GetTasks returns the work of the instance's current execution: every
// activity attempt, timer and sub-orchestration with its state and times,
// and the external events received. It fails with
// jetflow.ErrInstanceNotFound.
func (c *Client) GetTasks(ctx context.Context, id string) (*Tasks, error) {
	events, err := c.currentExecution(ctx, id)
	if err != nil {
		return nil, err
	}
	return tasksView(events), nil
}

// milli returns t in UTC, to the millisecond.
func milli(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// tasksView turns the events of one execution into its Tasks.
func tasksView(events []history.Event) *Tasks {
	out := &Tasks{Tasks: []Task{}}
	latest := map[int32]int{} // scheduling id -> index in out.Tasks of its latest entry
	var turn, prevTurn time.Time
	for i := range events {
		e := &events[i]
		at := milli(e.Time)
		switch e.Type {
		case history.ExecutionStarted:
			if p := e.Parent; p != nil {
				out.Parent = &TaskParent{InstanceID: p.InstanceID, Name: p.Name}
			}
			turn, prevTurn = at, at
		case history.OrchestratorStarted:
			prevTurn, turn = turn, at
		case history.TaskScheduled, history.TimerCreated, history.SubOrchestrationCreated:
			t := Task{ID: e.ID, Name: e.Name, ScheduledTime: at, State: TaskPending}
			switch e.Type {
			case history.TaskScheduled:
				t.Kind, t.Attempt = TaskActivity, max(e.Attempt, 1)
			case history.TimerCreated:
				t.Kind = TaskTimer
				if !e.FireAt.IsZero() {
					due := milli(e.FireAt)
					t.FireAt = &due
				}
			default:
				t.Kind, t.InstanceID = TaskSubOrchestration, e.InstanceID
			}
			if _, again := latest[e.ID]; again {
				t.Rewound = true // a rewind sends a failed task again under its id
			}
			latest[e.ID] = len(out.Tasks)
			out.Tasks = append(out.Tasks, t)
		case history.TaskCompleted, history.TimerFired, history.SubOrchestrationCompleted,
			history.TaskFailed, history.SubOrchestrationFailed:
			j, ok := latest[e.TaskID]
			if !ok {
				continue
			}
			t := &out.Tasks[j]
			t.EndTime, t.State = &at, TaskCompleted
			if e.Type == history.TaskFailed || e.Type == history.SubOrchestrationFailed {
				t.State = TaskFailed
				if e.Failure != nil {
					t.Failure = e.Failure.Message
				}
			}
		case history.EventRaised:
			since := prevTurn
			if since.IsZero() || since.After(at) {
				since = at
			}
			out.Tasks = append(out.Tasks, Task{Kind: TaskEvent, ID: -1, Name: e.Name,
				ScheduledTime: since, EndTime: &at, State: TaskCompleted})
		case history.ExecutionCompleted:
			for j := range out.Tasks {
				if out.Tasks[j].State == TaskPending {
					out.Tasks[j].State = TaskAbandoned
				}
			}
		}
	}
	return out
}
