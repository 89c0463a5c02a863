package jetflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
)

// replayer replays orchestrators from history: the Go executor's turns.
// It is pure (no I/O, no wall clock) and safe for concurrent use. It keeps
// the replays of long executions between their turns (sessions, see
// session.go); nil sessions replay every turn from the start.
type replayer struct {
	registry *Registry
	logger   *slog.Logger
	sessions *sessions
}

// newReplayer returns a replayer of the orchestrators registered in r.
// logger receives engine messages (such as ignored events), and is the
// base of each orchestrator's [OrchestrationContext.Logger]; nil discards.
func newReplayer(r *Registry, logger *slog.Logger) *replayer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if r == nil {
		r = NewRegistry()
	}
	return &replayer{registry: r, logger: logger, sessions: newSessions(sessionMinEvents, sessionMaxCount, sessionMaxEvents)}
}

// Execute replays past (the current execution's events, starting with
// ExecutionStarted) and then applies newEvents (this turn's events: first an
// OrchestratorStarted, then message events such as TaskCompleted,
// EventRaised, TimerFired, ExecutionTerminated, or an ExecutionStarted when
// past is empty, or an ExecutionRewound) and returns the turn. It never panics and has no side
// effects. If past already holds an ExecutionCompleted, the result is Done
// with no events. The replay of past is skipped as far as the instance's
// session has seen it: a turn then costs only newEvents and the events
// other workers added since the session's last turn.
func (x *replayer) Execute(instanceID string, past, newEvents []history.Event) (res *executor.TurnResult) {
	// A session continues only on the history it expects, which holds no
	// rewind and no end (a session is not kept past either).
	s := x.sessions.take(instanceID)
	rewound := rewinds(newEvents)
	continued := s != nil && !rewound && s.follows(past) && !rewinds(past[s.events():])
	var r *replay
	if continued {
		x.sessions.resumed.Add(1)
		r = s.r
		r.c.recorded = s.recorded // the last turn's actions are in past now
		r.c.closed.Store(false)
		past = past[s.events():] // what it has not seen: other workers' turns
		if slices.ContainsFunc(past, func(e history.Event) bool { return e.Type == history.ExecutionCompleted }) {
			r.stop()
			return &executor.TurnResult{Done: true, Resumed: true}
		}
	} else {
		if s != nil {
			s.r.stop()
		}
		// A rewind takes failures out of the history: replay what is
		// left, and the orchestrator waits again for what failed. Rewound
		// views are always replayed from the start.
		switch {
		case rewound:
			past, newEvents = history.Rewound(append(slices.Clip(past), newEvents...)), nil
		case rewinds(past):
			past, rewound = history.Rewound(past), true
		}
		for i := range past {
			if past[i].Type == history.ExecutionCompleted {
				return &executor.TurnResult{Done: true}
			}
		}
		r = x.newReplay(instanceID)
	}
	defer func() {
		if p := recover(); p != nil { // a bug in the executor: fail, don't crash the worker
			r.c.xlog.Error("jetflow: executor panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			r.stop()
			res = &executor.TurnResult{Done: true, Events: []history.Event{{
				Type:    history.ExecutionCompleted,
				Time:    turnTime(past, newEvents),
				Status:  history.StatusFailed,
				Failure: &history.Failure{Type: FailureExecutorError, Message: fmt.Sprintf("executor panicked: %v", p)},
			}}}
		}
	}()
	r.c.replaying = true
	for i := range past {
		if r.process(&past[i]); r.final != nil {
			break
		}
	}
	r.c.replaying = false
	if r.final == nil {
		for i := range newEvents {
			if r.process(&newEvents[i]); r.final != nil {
				break
			}
		}
	}
	res = r.result()
	res.Resumed = continued
	t := turnTime(past, newEvents)
	if t.IsZero() && continued {
		t = r.c.now // a turn without an OrchestratorStarted: the one before's
	}
	for i := range res.Events {
		res.Events[i].Time = t
	}
	if res.Done || rewound || r.final != nil {
		r.stop()
		return res
	}
	r.c.closed.Store(true) // until the next turn continues it
	seen := len(past)
	if continued {
		seen += s.events()
	}
	x.sessions.keep(instanceID, r.c.executionID, r, seen, newEvents, res.Events)
	return res
}

// newReplay begins the replay of an instance.
func (x *replayer) newReplay(instanceID string) *replay {
	return &replay{
		x: x,
		c: &OrchestrationContext{
			instanceID: instanceID,
			xlog:       x.logger.With(slog.String("instance_id", instanceID)),
			tasks:      make(map[int32]*task),
			waiters:    make(map[string][]*task),
			buffered:   make(map[string][]bufferedEvent),
			resume:     make(chan bool),
			yield:      make(chan struct{}),
		},
	}
}

// turnTime is the time of the latest OrchestratorStarted (or, lacking one,
// ExecutionStarted): the time of the events a turn adds.
func turnTime(past, newEvents []history.Event) time.Time {
	var started time.Time
	for _, evs := range [][]history.Event{newEvents, past} {
		for i := len(evs) - 1; i >= 0; i-- {
			switch evs[i].Type {
			case history.OrchestratorStarted:
				return evs[i].Time.UTC()
			case history.ExecutionStarted:
				if started.IsZero() {
					started = evs[i].Time.UTC()
				}
			}
		}
	}
	return started
}

// replay is the executor's side of one Execute.
type replay struct {
	x *replayer
	c *OrchestrationContext
	// final, once set, is the ExecutionCompleted that ends the execution
	// regardless of the orchestrator (failure to start, non-determinism,
	// termination); no more events are processed.
	final *history.Event
}

func (r *replay) process(e *history.Event) {
	c := r.c
	switch e.Type {
	case history.ExecutionStarted:
		r.start(e)
	case history.OrchestratorStarted:
		c.now = e.Time.UTC()
	case history.TaskScheduled, history.TimerCreated, history.SubOrchestrationCreated:
		r.match(e)
	case history.TaskCompleted, history.TaskFailed, history.TimerFired,
		history.SubOrchestrationCompleted, history.SubOrchestrationFailed:
		r.completeTask(e)
	case history.EventRaised:
		r.raise(e)
	case history.ExecutionTerminated:
		if !c.returned {
			r.end(history.Event{Status: history.StatusTerminated, Result: orNull(e.Input)})
		}
	case history.ExecutionSuspended, history.ExecutionResumed:
		// The worker holds messages back while suspended.
	case history.OrchestratorYielded:
		// The turn ended early; the next one runs the execution.
	default:
		r.ignored("jetflow: ignoring unexpected history event", slog.String("event", e.Describe()))
	}
	r.drive()
}

// ignored logs an event the executor skips, once: not again on replay.
func (r *replay) ignored(msg string, attrs ...any) {
	if !r.c.replaying {
		r.c.xlog.Warn(msg, attrs...)
	}
}

// start runs the orchestrator named by ExecutionStarted until it blocks.
func (r *replay) start(e *history.Event) {
	c := r.c
	if c.started || r.final != nil {
		r.ignored("jetflow: ignoring a second ExecutionStarted")
		return
	}
	c.name, c.input, c.executionID, c.version, c.tags = e.Name, e.Input, e.ExecutionID, e.Version, e.Tags
	if c.now.IsZero() {
		c.now = e.Time.UTC()
	}
	if e.Rules > history.CurrentRules {
		// Recorded by a newer jetflow: replaying it under rules this one
		// does not know could silently diverge.
		r.end(history.Event{Status: history.StatusFailed, Failure: &history.Failure{
			Type: FailureInvalidHistory,
			Message: fmt.Sprintf("execution started under replay rules %d; this jetflow knows rules up to %d: upgrade the workers",
				e.Rules, history.CurrentRules),
		}})
		return
	}
	c.rules = e.Rules
	o, ok := r.x.registry.Orchestrator(e.Name)
	if !ok {
		r.end(history.Event{Status: history.StatusFailed, Failure: &history.Failure{
			Type:    FailureOrchestratorNotRegistered,
			Message: fmt.Sprintf("orchestrator %q is not registered", e.Name),
		}})
		return
	}
	c.xlog = c.xlog.With(slog.String("orchestrator", c.name))
	c.logger = slog.New(replayHandler{h: r.x.logger.Handler(), c: c}).With(
		slog.String("instance_id", c.instanceID), slog.String("orchestrator", c.name))
	c.started = true
	c.inOrch.Store(true)
	go r.run(o)
	<-c.yield
}

// run is the orchestrator goroutine.
func (r *replay) run(o Orchestrator) {
	c := r.c
	defer func() {
		if p := recover(); p != nil && !c.aborting {
			c.panicked = &panicValue{value: p, stack: debug.Stack()}
		}
		c.returned = !c.aborting
		c.exited = true
		c.inOrch.Store(false)
		c.yield <- struct{}{}
	}()
	c.output, c.err = o(c)
}

// drive resumes the orchestrator while the task it waits for is done.
func (r *replay) drive() {
	c := r.c
	for r.final == nil && c.started && !c.returned && c.awaiting != nil && c.awaiting.done {
		c.awaiting = nil
		c.inOrch.Store(true)
		c.resume <- false
		<-c.yield
	}
}

// stop unwinds the orchestrator goroutine if it is still blocked, and closes
// the turn.
func (r *replay) stop() {
	c := r.c
	if c.started && !c.exited {
		// A kept session is closed between turns; the unwinding
		// orchestrator must see it open, so that an Await in its deferred
		// code ends its goroutine (checkAwait).
		c.closed.Store(false)
		c.inOrch.Store(true)
		c.resume <- true
		<-c.yield
	}
	c.closed.Store(true)
}

// end ends the execution with e (an ExecutionCompleted with Status and
// Result or Failure set).
func (r *replay) end(e history.Event) {
	e.Type = history.ExecutionCompleted
	e.Time = r.c.now
	r.final = &e
}

// match checks a scheduling event from history against the action the
// orchestrator asked for at that step.
func (r *replay) match(e *history.Event) {
	c := r.c
	step := c.recorded
	var got *history.Event
	if int(step) < len(c.actions) {
		got = &c.actions[step]
	}
	if got == nil || got.Type != e.Type || got.ID != e.ID || got.Name != e.Name || got.InstanceID != e.InstanceID {
		asked := "nothing"
		if got != nil {
			asked = describeAction(got)
		}
		msg := fmt.Sprintf("nondeterministic orchestrator %q: at step #%d history has %s but the orchestrator asked for %s",
			c.name, step, describeAction(e), asked)
		c.xlog.Error("jetflow: "+msg, slog.Int("step", int(step)))
		r.end(history.Event{Status: history.StatusFailed, Failure: &history.Failure{Type: FailureNonDeterminism, Message: msg}})
		return
	}
	c.recorded++
}

// describeAction is Event.Describe, plus the instance id of a
// sub-orchestration (which replay also compares).
func describeAction(e *history.Event) string {
	if e.Type == history.SubOrchestrationCreated {
		return fmt.Sprintf("%s (instance %q)", e.Describe(), e.InstanceID)
	}
	return e.Describe()
}

// completeTask applies a completion event to the task it completes.
func (r *replay) completeTask(e *history.Event) {
	c := r.c
	if c.returned {
		return
	}
	t, ok := c.tasks[e.TaskID]
	if !ok || e.TaskID >= c.recorded || !completes(e.Type, t.kind) {
		r.ignored("jetflow: ignoring a completion for no pending task",
			slog.String("event", e.Describe()), slog.Int("task_id", int(e.TaskID)))
		return
	}
	delete(c.tasks, e.TaskID)
	switch e.Type {
	case history.TaskFailed, history.SubOrchestrationFailed:
		f := e.Failure
		if f == nil {
			f = &history.Failure{Message: "unknown error"}
		}
		t.fail(&TaskFailedError{Name: t.name, Message: f.Message, Type: f.Type})
	case history.TimerFired:
		t.complete(nil)
	default:
		t.complete(orNull(e.Result))
	}
}

// completes reports whether a completion event of type typ fits a task of
// kind k.
func completes(typ history.Type, k taskKind) bool {
	switch typ {
	case history.TaskCompleted, history.TaskFailed:
		return k == kindActivity
	case history.TimerFired:
		return k == kindTimer
	}
	return k == kindSubOrchestration
}

// raise delivers an external event to a pending wait for it, or buffers
// it. The execution's rules choose the wait: the newest (a wait that lost a
// WhenAny and was abandoned stays behind the current one), or, for
// executions started under the old rule, the oldest.
func (r *replay) raise(e *history.Event) {
	c := r.c
	key := eventKey(e.Name)
	if ws := c.waiters[key]; len(ws) > 0 && !c.returned {
		w := ws[0]
		if c.rules >= history.RulesNewestWaiter {
			w = ws[len(ws)-1]
		}
		c.removeWaiter(key, w)
		w.complete(orNull(e.Input))
		return
	}
	c.buffered[key] = append(c.buffered[key], bufferedEvent{arrival: c.arrivals, event: *e})
	c.arrivals++
}

// result builds the turn's result once the orchestrator has stopped.
func (r *replay) result() *executor.TurnResult {
	c := r.c
	res := &executor.TurnResult{CustomStatus: c.customStatus}
	if r.final == nil && !c.started {
		r.end(history.Event{Status: history.StatusFailed, Failure: &history.Failure{
			Type:    FailureInvalidHistory,
			Message: "history has no ExecutionStarted event",
		}})
	}
	if r.final != nil {
		res.Events, res.Done = []history.Event{*r.final}, true
		return res
	}
	var scheduled []history.Event
	if int(c.recorded) < len(c.actions) {
		scheduled = slices.Clone(c.actions[c.recorded:])
	}
	if !c.returned {
		res.Events = scheduled
		return res
	}
	done := r.completion()
	if done.Status == history.StatusCompleted {
		res.Events = scheduled
	}
	res.Events, res.Done = append(res.Events, done), true
	if done.Status == history.StatusContinuedAsNew {
		res.CarryOver = r.carryOver()
	}
	return res
}

// completion is the ExecutionCompleted for an orchestrator that returned.
func (r *replay) completion() history.Event {
	c := r.c
	e := history.Event{Type: history.ExecutionCompleted, Time: c.now}
	failed := func(typ, msg string) history.Event {
		e.Status, e.Failure = history.StatusFailed, &history.Failure{Type: typ, Message: msg}
		return e
	}
	switch {
	case c.panicked != nil:
		c.xlog.Warn("jetflow: orchestrator panicked", slog.Any("panic", c.panicked.value), slog.String("stack", string(c.panicked.stack)))
		return failed(FailurePanic, fmt.Sprintf("orchestrator panicked: %v", c.panicked.value))
	case c.err != nil:
		msg := c.err.Error()
		if errors.Is(c.err, ErrCustomStatusTooLarge) && !strings.Contains(msg, ErrCustomStatusTooLarge.Error()) {
			msg += " (" + ErrCustomStatusTooLarge.Error() + ")"
		}
		return failed(FailureOrchestratorError, msg)
	case c.continueAsNew:
		if c.nextInputErr != nil {
			return failed(FailureInvalidInput, "continue as new: "+c.nextInputErr.Error())
		}
		e.Status, e.Result = history.StatusContinuedAsNew, c.nextInput
		return e
	}
	out, err := json.Marshal(c.output)
	if err == nil {
		err = checkPayload("the output", out)
	}
	if err != nil {
		return failed(FailureInvalidOutput, fmt.Sprintf("encoding the output of orchestrator %q: %v", c.name, err))
	}
	e.Status, e.Result = history.StatusCompleted, out
	return e
}

// carryOver returns the buffered external events, oldest first.
func (r *replay) carryOver() []history.Event {
	var all []bufferedEvent
	for _, buf := range r.c.buffered {
		all = append(all, buf...)
	}
	slices.SortFunc(all, func(a, b bufferedEvent) int { return a.arrival - b.arrival })
	out := make([]history.Event, len(all))
	for i, b := range all {
		out[i] = b.event
	}
	return out
}
