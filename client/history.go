package client

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/history"
)

// GetHistory returns the history of an instance's current execution in
// the HTTP API's shape (historyEvents); inputs and results are left out
// unless WithOutputs is given. It fails with jetflow.ErrInstanceNotFound.
func (c *Client) GetHistory(ctx context.Context, id string, opts ...HistoryOption) ([]HistoryEvent, error) {
	var o historyOptions
	for _, opt := range opts {
		opt(&o)
	}
	outputs := o.outputs
	events, err := c.currentExecution(ctx, id)
	if err != nil {
		return nil, err
	}
	return historyView(events, outputs), nil
}

// currentExecution returns the history events of the instance's current
// execution (from its last ExecutionStarted on), or
// jetflow.ErrInstanceNotFound.
func (c *Client) currentExecution(ctx context.Context, id string) ([]history.Event, error) {
	if err := jetflow.ValidateInstanceID(id); err != nil {
		return nil, err
	}
	chunks, err := c.store.LoadHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	var events []history.Event
	for _, ch := range chunks {
		for _, e := range ch.Events {
			if e.Type == history.ExecutionStarted {
				events = events[:0] // a new execution: show only the current one
			}
			events = append(events, e)
		}
	}
	if len(events) == 0 {
		if _, err := c.store.GetStatus(ctx, id); errors.Is(err, jetflow.ErrInstanceNotFound) {
			return nil, err
		}
	}
	return events, nil
}

// HistoryOption configures GetHistory.
type HistoryOption func(*historyOptions)

type historyOptions struct{ outputs bool }

// WithOutputs makes GetHistory include inputs and results
// (showHistoryOutput=true over HTTP).
func WithOutputs() HistoryOption { return func(o *historyOptions) { o.outputs = true } }

// HistoryEvent is one entry of an instance's history as the HTTP API shows
// it (historyEvents with showHistory=true), in the shape of Durable
// Functions: a task's scheduling and completion are one entry, with the
// time it was scheduled; the orchestrator's own bookkeeping is left out.
type HistoryEvent struct {
	// EventType is the Durable Task name of the event, e.g.
	// "ExecutionStarted", "TaskCompleted", "EventRaised", "TimerFired".
	EventType string `json:"EventType"`
	// Timestamp is when the event was recorded.
	Timestamp jetflow.Time `json:"Timestamp"`
	// FunctionName is the orchestrator, activity or sub-orchestrator name.
	FunctionName string `json:"FunctionName,omitempty"`
	// Name is an external event's name.
	Name string `json:"Name,omitempty"`
	// ScheduledTime is when a completed task was scheduled.
	ScheduledTime *jetflow.Time `json:"ScheduledTime,omitempty"`
	// FireAt is a timer's due time.
	FireAt *jetflow.Time `json:"FireAt,omitempty"`
	// Input is an execution's input, an event's data or a reason; shown
	// only with outputs.
	Input json.RawMessage `json:"Input,omitempty"`
	// Result is a task's or the execution's output; shown only with
	// outputs.
	Result json.RawMessage `json:"Result,omitempty"`
	// OrchestrationStatus is how the execution ended (ExecutionCompleted).
	OrchestrationStatus string `json:"OrchestrationStatus,omitempty"`
	// Reason and Details describe a failure.
	Reason  string `json:"Reason,omitempty"`
	Details string `json:"Details,omitempty"`
}

// historyView turns the events of one execution into the HTTP API's
// historyEvents. With outputs false, inputs and results are left out
// (showHistoryOutput=false).
func historyView(events []history.Event, outputs bool) []HistoryEvent {
	scheduled := map[int32]*history.Event{}
	out := []HistoryEvent{}
	payload := func(b json.RawMessage) json.RawMessage {
		if !outputs || len(b) == 0 {
			return nil
		}
		return b
	}
	for i := range events {
		e := &events[i]
		v := HistoryEvent{EventType: e.Type.String(), Timestamp: jetflow.Time{Time: e.Time.UTC()}}
		switch e.Type {
		case history.OrchestratorStarted, history.TimerCreated:
			continue
		case history.TaskScheduled, history.SubOrchestrationCreated:
			scheduled[e.ID] = e
			continue
		case history.ExecutionStarted:
			v.FunctionName, v.Input = e.Name, payload(e.Input)
		case history.EventRaised, history.EventSent:
			v.Name, v.Input = e.Name, payload(e.Input)
		case history.TimerFired:
			v.FireAt = timePtr(e.FireAt)
		case history.TaskCompleted, history.TaskFailed, history.SubOrchestrationCompleted, history.SubOrchestrationFailed:
			if s := scheduled[e.TaskID]; s != nil {
				v.FunctionName, v.ScheduledTime = s.Name, timePtr(s.Time)
			}
			v.Result = payload(e.Result)
		case history.ExecutionTerminated, history.ExecutionSuspended, history.ExecutionResumed:
			v.Input = payload(e.Input)
		case history.ExecutionCompleted:
			v.OrchestrationStatus, v.Result = e.Status.String(), payload(e.Result)
		}
		if e.Failure != nil {
			v.Reason, v.Details = e.Failure.Type, e.Failure.Message
		}
		out = append(out, v)
	}
	return out
}

func timePtr(t time.Time) *jetflow.Time {
	if t.IsZero() {
		return nil
	}
	return &jetflow.Time{Time: t.UTC()}
}
