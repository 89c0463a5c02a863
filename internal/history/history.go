// Package history defines the events that make up an orchestration
// instance's history, and their encodings.
//
// A history is an ordered list of [Event]s. The worker appends one chunk of
// events per commit (see package jetstream for where chunks are stored); the
// replay executor in package jetflow turns a history into the orchestrator's
// next actions. Events are encoded with msgpack in storage and as JSON in
// golden test files and in the HTTP API's historyEvents.
//
// This package is internal: its types may change between releases.
package history

import (
	"encoding/json"
	"fmt"
	"time"
)

// Type is the kind of a history event.
type Type uint8

// The event types. The numeric values are stored: never renumber them.
const (
	// ExecutionStarted begins an execution: Name, Input, ExecutionID,
	// Parent, Rules.
	ExecutionStarted Type = 1
	// OrchestratorStarted begins a turn: Time is the orchestrator's
	// deterministic current time for the rest of the turn.
	OrchestratorStarted Type = 2
	// TaskScheduled records a call to an activity: ID, Name, Input.
	TaskScheduled Type = 3
	// TaskCompleted is an activity's result: TaskID, Result.
	TaskCompleted Type = 4
	// TaskFailed is an activity's error: TaskID, Failure.
	TaskFailed Type = 5
	// TimerCreated records a durable timer: ID, FireAt.
	TimerCreated Type = 6
	// TimerFired is a timer that came due: TaskID, FireAt.
	TimerFired Type = 7
	// EventRaised is an external event: Name, Input.
	EventRaised Type = 8
	// SubOrchestrationCreated records a call to a sub-orchestration: ID,
	// Name, InstanceID, Input.
	SubOrchestrationCreated Type = 9
	// SubOrchestrationCompleted is a sub-orchestration's output: TaskID, Result.
	SubOrchestrationCompleted Type = 10
	// SubOrchestrationFailed is a sub-orchestration's failure: TaskID, Failure.
	SubOrchestrationFailed Type = 11
	// ExecutionTerminated asks the execution to stop: Input holds the
	// reason as JSON.
	ExecutionTerminated Type = 12
	// ExecutionCompleted ends an execution: Status is Completed, Failed,
	// Terminated or ContinuedAsNew; Result is the output (for
	// ContinuedAsNew, the next execution's input), Failure the error.
	ExecutionCompleted Type = 13
	// ExecutionSuspended pauses the execution: Input holds the reason.
	ExecutionSuspended Type = 14
	// ExecutionResumed resumes a suspended execution: Input holds the reason.
	ExecutionResumed Type = 15
	// ExecutionRewound brings a failed execution back to life (see
	// [Rewound]): Input holds the reason, ExecutionID the execution's new
	// id. The scheduling events it sends again follow it in its chunk.
	ExecutionRewound Type = 16
	// OrchestratorYielded ends a turn that began an execution without
	// running it (an orchestrator continued as new many times in one
	// turn): the dispatcher sends the instance a message (an
	// OrchestratorStarted with MsgID "<execution>:yield") whose turn runs
	// the execution. Replay ignores it.
	OrchestratorYielded Type = 17
	// InstanceExpired is a message, never stored in history: the hub's
	// retention has passed since the execution named by the message
	// finished, and the instance is to be removed (see
	// storage.Config.Retention).
	InstanceExpired Type = 18
	// EventSent records an event the orchestrator sent to another
	// instance: ID, InstanceID, Name, Input. Its action raises the event
	// on that instance, or nothing if the instance does not exist or has
	// finished. SDK orchestrators (package sidecar) send events; the Go
	// replayer never records one.
	EventSent Type = 19
)

var typeNames = map[Type]string{
	ExecutionStarted:          "ExecutionStarted",
	OrchestratorStarted:       "OrchestratorStarted",
	TaskScheduled:             "TaskScheduled",
	TaskCompleted:             "TaskCompleted",
	TaskFailed:                "TaskFailed",
	TimerCreated:              "TimerCreated",
	TimerFired:                "TimerFired",
	EventRaised:               "EventRaised",
	SubOrchestrationCreated:   "SubOrchestrationInstanceCreated",
	SubOrchestrationCompleted: "SubOrchestrationInstanceCompleted",
	SubOrchestrationFailed:    "SubOrchestrationInstanceFailed",
	ExecutionTerminated:       "ExecutionTerminated",
	ExecutionCompleted:        "ExecutionCompleted",
	ExecutionSuspended:        "ExecutionSuspended",
	ExecutionResumed:          "ExecutionResumed",
	ExecutionRewound:          "ExecutionRewound",
	OrchestratorYielded:       "OrchestratorYielded",
	InstanceExpired:           "InstanceExpired",
	EventSent:                 "EventSent",
}

// String returns the Durable Task name of the event type, as shown in the
// HTTP API's historyEvents ("TaskScheduled", "EventRaised", ...).
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// MarshalText encodes the type by name, so JSON histories are readable.
func (t Type) MarshalText() ([]byte, error) {
	if _, ok := typeNames[t]; !ok {
		return nil, fmt.Errorf("unknown history event type %d", uint8(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText decodes a type from its name.
func (t *Type) UnmarshalText(b []byte) error {
	for k, v := range typeNames {
		if v == string(b) {
			*t = k
			return nil
		}
	}
	return fmt.Errorf("unknown history event type %q", b)
}

// Status is the final state of an execution, recorded by ExecutionCompleted.
type Status uint8

// Execution statuses recorded in history.
const (
	StatusCompleted      Status = 1
	StatusFailed         Status = 2
	StatusTerminated     Status = 3
	StatusContinuedAsNew Status = 4
)

var statusNames = map[Status]string{
	StatusCompleted:      "Completed",
	StatusFailed:         "Failed",
	StatusTerminated:     "Terminated",
	StatusContinuedAsNew: "ContinuedAsNew",
}

// String returns the status's name.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// MarshalText encodes the status by name, so JSON histories are readable.
func (s Status) MarshalText() ([]byte, error) {
	if _, ok := statusNames[s]; !ok {
		return nil, fmt.Errorf("unknown execution status %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a status from its name.
func (s *Status) UnmarshalText(b []byte) error {
	for k, v := range statusNames {
		if v == string(b) {
			*s = k
			return nil
		}
	}
	return fmt.Errorf("unknown execution status %q", b)
}

// Failure describes an error carried in history: an activity's or
// sub-orchestration's error, or the reason an execution failed.
type Failure struct {
	// Message is the error text.
	Message string `msgpack:"m" json:"message"`
	// Type is a short classification, e.g. "ActivityError", "Panic",
	// "NonDeterminism", "ActivityNotRegistered", or the error type an SDK
	// reported ("TypeError").
	Type string `msgpack:"t,omitempty" json:"type,omitempty"`
	// Stack is the stack trace an SDK reported with the error, or empty.
	Stack string `msgpack:"s,omitempty" json:"stack,omitempty"`
	// Inner is the error that caused this one, as an SDK reported it, or
	// nil.
	Inner *Failure `msgpack:"c,omitempty" json:"inner,omitempty"`
	// NonRetriable is set when an SDK marked the error as one that a
	// retry cannot cure.
	NonRetriable bool `msgpack:"nr,omitempty" json:"nonRetriable,omitempty"`
}

// Rules is the version of the replay rules an execution runs under. It is
// recorded on the execution's ExecutionStarted, so that a change to how
// history replays applies to executions started after it and an execution
// replays, for the whole of its life, under the rules it began with.
type Rules uint8

// The replay rules. The numeric values are stored: never renumber them.
const (
	// RulesOldestWaiter is the zero value, the rules of executions started
	// before rules were recorded: an external event goes to the oldest
	// pending WaitForExternalEvent of its name.
	RulesOldestWaiter Rules = 0
	// RulesNewestWaiter delivers an external event to the newest pending
	// WaitForExternalEvent of its name, as Durable Functions does, so that
	// a wait abandoned by a WhenAny that another task won does not swallow
	// an event meant for a later wait.
	RulesNewestWaiter Rules = 1

	// CurrentRules are the rules a new execution starts with: set
	// Event.Rules to it on every ExecutionStarted that begins an execution
	// (a start, a sub-orchestration, a continue-as-new).
	CurrentRules = RulesNewestWaiter
)

// Parent identifies the orchestration that started a sub-orchestration, so
// its result can be sent back.
type Parent struct {
	InstanceID  string `msgpack:"i" json:"instanceId"`
	ExecutionID string `msgpack:"e" json:"executionId"`
	// TaskID is the ID of the parent's SubOrchestrationCreated event.
	TaskID int32 `msgpack:"t" json:"taskId"`
	// Name is the parent's orchestrator, where the result is routed.
	Name string `msgpack:"n,omitempty" json:"name,omitempty"`
}

// Event is one history event. Which fields are set depends on Type (see
// the Type constants); the others are zero.
type Event struct {
	Type Type `msgpack:"k" json:"type"`
	// ID numbers scheduling events (TaskScheduled, TimerCreated,
	// SubOrchestrationCreated) within an execution, from 0 in the order the
	// orchestrator asked for them. Other events leave it 0.
	ID int32 `msgpack:"id,omitempty" json:"id,omitempty"`
	// TaskID is, on a completion event, the ID of the scheduling event it
	// completes.
	TaskID int32 `msgpack:"tid,omitempty" json:"taskId,omitempty"`
	// Time is when the event was recorded (UTC).
	Time time.Time `msgpack:"ts" json:"timestamp"`
	// Name is an orchestrator, activity or external event name.
	Name string `msgpack:"n,omitempty" json:"name,omitempty"`
	// Input is JSON: an execution's or task's input, an event's data, a
	// termination or suspension reason.
	Input json.RawMessage `msgpack:"in,omitempty" json:"input,omitempty"`
	// Result is JSON: a task's or execution's output.
	Result json.RawMessage `msgpack:"out,omitempty" json:"result,omitempty"`
	// Failure is set on TaskFailed, SubOrchestrationFailed and a failed
	// ExecutionCompleted.
	Failure *Failure `msgpack:"f,omitempty" json:"failure,omitempty"`
	// FireAt is a timer's due time.
	FireAt time.Time `msgpack:"at,omitempty" json:"fireAt,omitzero"`
	// InstanceID is a sub-orchestration's instance id.
	InstanceID string `msgpack:"iid,omitempty" json:"instanceId,omitempty"`
	// ExecutionID is set on ExecutionStarted: a unique id of this execution.
	ExecutionID string `msgpack:"eid,omitempty" json:"executionId,omitempty"`
	// Parent is set on ExecutionStarted of a sub-orchestration.
	Parent *Parent `msgpack:"p,omitempty" json:"parent,omitempty"`
	// StatusRevision is set on the ExecutionStarted of a run started from
	// a Pending status: that status's revision. Such a run's status exists
	// from before its start until the instance is purged, so a worker that
	// finds its history without a status knows that the instance was purged
	// (see worker's load). Zero for sub-orchestrations and continue-as-new.
	StatusRevision uint64 `msgpack:"sr,omitempty" json:"-"`
	// Rules is set on ExecutionStarted: the replay rules of the execution
	// (zero, RulesOldestWaiter, for executions started before rules were
	// recorded; CurrentRules for new ones).
	Rules Rules `msgpack:"r,omitempty" json:"rules,omitempty"`
	// RequestID is set on ExecutionStarted: the key of the start request
	// that created the instance, carried to the executions it continues
	// as; empty for none.
	RequestID string `msgpack:"rq,omitempty" json:"requestId,omitempty"`
	// ScheduledStart is set on the ExecutionStarted of a run that was
	// started for a later time (client.WithStartTime): that time.
	ScheduledStart time.Time `msgpack:"sst,omitempty" json:"scheduledStart,omitzero"`
	// Version is the user's version label, or empty: on ExecutionStarted,
	// the execution's (client.WithVersion); on TaskScheduled and
	// SubOrchestrationCreated, the one the orchestrator asked for; on the
	// ExecutionCompleted of a continue-as-new, the next execution's (empty:
	// it keeps this one's). Replay does not compare it.
	Version string `msgpack:"ver,omitempty" json:"version,omitempty"`
	// Tags are the user's labels, or nil: on ExecutionStarted, the
	// execution's; on TaskScheduled and SubOrchestrationCreated, those the
	// orchestrator gave the call. Replay does not compare them.
	Tags map[string]string `msgpack:"tg,omitempty" json:"tags,omitempty"`
	// Recursive is set on an ExecutionTerminated that terminates the
	// execution's sub-orchestrations still running too, and theirs.
	Recursive bool `msgpack:"rec,omitempty" json:"recursive,omitempty"`
	// Status is set on ExecutionCompleted.
	Status Status `msgpack:"st,omitempty" json:"status,omitempty"`
	// Timeout is, on TaskScheduled, the call's start-to-close timeout (0:
	// the activity's registered one). Replay does not compare it.
	Timeout time.Duration `msgpack:"to,omitempty" json:"timeout,omitempty"`
	// Attempt is, on TaskScheduled, the attempt of a call with a retry
	// policy: 2 for its first retry, and so on (0: a call's only or first
	// attempt). Replay does not compare it.
	Attempt int32 `msgpack:"att,omitempty" json:"attempt,omitempty"`
	// MsgID is the id of the message that delivered this event, for
	// exactly-once application; empty for events the orchestrator made.
	MsgID string `msgpack:"mid,omitempty" json:"msgId,omitempty"`
}

// IsScheduling reports whether the event records an action the
// orchestrator asked for (and so must match on replay).
func (e *Event) IsScheduling() bool {
	switch e.Type {
	case TaskScheduled, TimerCreated, SubOrchestrationCreated:
		return true
	}
	return false
}

// IsCompletion reports whether the event completes a scheduled task
// identified by TaskID.
func (e *Event) IsCompletion() bool {
	switch e.Type {
	case TaskCompleted, TaskFailed, TimerFired, SubOrchestrationCompleted, SubOrchestrationFailed:
		return true
	}
	return false
}

// Describe returns a short human-readable form of the event for error
// messages, e.g. `TaskScheduled #2 "E1_SayHello"`.
func (e *Event) Describe() string {
	switch e.Type {
	case TaskScheduled, SubOrchestrationCreated:
		return fmt.Sprintf("%s #%d %q", e.Type, e.ID, e.Name)
	case TimerCreated:
		return fmt.Sprintf("%s #%d at %s", e.Type, e.ID, e.FireAt.UTC().Format(time.RFC3339))
	case EventRaised:
		return fmt.Sprintf("%s %q", e.Type, e.Name)
	case EventSent:
		return fmt.Sprintf("%s #%d %q to %q", e.Type, e.ID, e.Name, e.InstanceID)
	}
	return e.Type.String()
}
