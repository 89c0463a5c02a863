// Package executor is the seam between the worker and the code it runs:
// orchestrator turns (history in, the turn's events out) and activity
// tasks (an input in, a result or a failure out). The worker knows
// nothing else of user code, so that another executor (an SDK in another
// language, say) can take the place of the in-process Go one without
// touching the commit protocol.
//
// The Go executor is package jetflow's replay engine, which needs the
// internals of its registry and orchestration context; jetflow provides
// it here (SetGo) rather than exporting it.
package executor

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/jetflow/jetflow/internal/history"
)

// Executor runs orchestrators and activities. Implementations are safe
// for concurrent use.
//
// An error from either method means that the executor could not run the
// work at all (a remote SDK dropped its stream, abandoned the item, or
// ctx ended): the worker then commits nothing and hands the messages back
// for a later try, as it does for a turn past its timeout. What the user
// code itself got wrong is never an error: it fails the execution or the
// activity in the result.
type Executor interface {
	// Execute replays past (the current execution's events, starting with
	// ExecutionStarted) and then applies newEvents (this turn's events:
	// first an OrchestratorStarted, then message events such as
	// TaskCompleted, EventRaised, TimerFired, ExecutionTerminated, or an
	// ExecutionStarted when past is empty, or an ExecutionRewound), and
	// returns the turn. It has no side effects: what goes wrong in the
	// orchestrator fails the execution in the result. If past already
	// holds an ExecutionCompleted, the result is Done with no events. ctx
	// bounds the turn (the worker's turn timeout, its shutdown); the Go
	// executor never fails.
	Execute(ctx context.Context, instanceID string, past, newEvents []history.Event) (*TurnResult, error)
	// RunActivity runs one attempt of an activity task. On success result
	// is its output JSON and failure is nil; otherwise failure says what
	// went wrong (its Type one of jetflow's Failure… names, or the error
	// type a remote SDK reported). progress receives the activity's
	// progress reports (JSON values). An error hands the task back
	// unanswered, to run again; the Go executor never fails.
	RunActivity(ctx context.Context, task Task, progress func(json.RawMessage) error) (result json.RawMessage, failure *history.Failure, err error)
}

// Releaser is implemented by an executor that keeps state between turns
// (the Go executor keeps long executions' replays, their orchestrator
// goroutines blocked, so that the next turn need not replay): the worker
// calls Release once it has stopped and runs no more turns, and the
// executor lets that state go.
type Releaser interface {
	Release()
}

// Task is one activity call to run.
type Task struct {
	// Name is the activity's name.
	Name string
	// InstanceID is the calling orchestration's instance.
	InstanceID string
	// ExecutionID is the calling execution's id.
	ExecutionID string
	// TaskID numbers the call within its execution.
	TaskID int32
	// Input is the call's input JSON, or empty.
	Input json.RawMessage
	// Version and Tags are those the call gave, or empty.
	Version string
	Tags    map[string]string
}

// TurnResult is the outcome of one Execute.
type TurnResult struct {
	// Events are the events this turn adds after newEvents: scheduling
	// events (TaskScheduled, TimerCreated, SubOrchestrationCreated) with
	// their IDs, in the order asked for, each with Time = turn time; and,
	// when the execution ended, a final ExecutionCompleted (Status
	// Completed with Result = output JSON; Failed with Failure; Terminated
	// with Result = reason JSON; ContinuedAsNew with Result = next input
	// JSON). Scheduling events are kept only when the execution is still
	// running or Completed: after a failure, termination or continue-as-new
	// nobody would read their results.
	Events []history.Event
	// CustomStatus is the JSON last set by SetCustomStatus during this
	// replay (nil if never set).
	CustomStatus json.RawMessage
	// Done reports whether Events ends with ExecutionCompleted (or past
	// already did).
	Done bool
	// Resumed reports that the executor did not replay past from its
	// start: it continued the replay it kept from an earlier turn of the
	// instance, through the events of past it had not seen (the Go
	// executor's replay sessions).
	Resumed bool
	// CarryOver, when the execution continued as new, holds the EventRaised
	// events that arrived but were not consumed by a WaitForExternalEvent,
	// oldest first; the worker delivers them to the next execution.
	CarryOver []history.Event
}

// newGo makes the Go executor of a registry; set by package jetflow.
var newGo func(registry any, logger *slog.Logger) Executor

// SetGo installs the constructor of the Go executor. Package jetflow
// calls it once, at init.
func SetGo(f func(registry any, logger *slog.Logger) Executor) { newGo = f }

// Go returns the executor of the Go orchestrators and activities
// registered in registry (a *jetflow.Registry). logger receives engine
// messages (such as ignored events) and is the base of orchestrators'
// loggers; nil discards.
func Go(registry any, logger *slog.Logger) Executor { return newGo(registry, logger) }
