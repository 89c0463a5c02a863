package jetflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
)

// Task is durable work an orchestrator started: an activity call, a timer,
// an external event wait, a sub-orchestration, or a WhenAll / WhenAny of
// other tasks. Use it only from the orchestrator's goroutine.
type Task interface {
	// Await suspends the orchestrator until the task is done, then decodes
	// the task's JSON result into v (v may be nil) and returns the task's
	// error. It returns an error at once when called outside the
	// orchestrator's goroutine or after the orchestrator's turn ended.
	Await(v any) error
	// IsDone reports whether the task is done, without waiting.
	IsDone() bool
}

type taskKind uint8

const (
	kindActivity taskKind = iota
	kindTimer
	kindEvent
	kindSubOrchestration
	kindAll
	kindAny
)

func (k taskKind) String() string {
	switch k {
	case kindActivity:
		return "activity"
	case kindTimer:
		return "timer"
	case kindEvent:
		return "external event"
	case kindSubOrchestration:
		return "sub-orchestrator"
	case kindAll:
		return "WhenAll"
	}
	return "WhenAny"
}

// task is the one implementation of Task. Its fields are only touched by
// whichever of the orchestrator and the executor holds control.
type task struct {
	c      *OrchestrationContext
	kind   taskKind
	id     int32 // scheduling event ID, -1 if none
	name   string
	done   bool
	result json.RawMessage
	err    error
	onDone []func()
	// For WhenAll and WhenAny: the tasks combined, and WhenAny's winner.
	children []*task
	winner   int
}

func (c *OrchestrationContext) newTask(kind taskKind, name string) *task {
	return &task{c: c, kind: kind, id: -1, name: name}
}

func (t *task) complete(result json.RawMessage) {
	if t.done {
		return
	}
	t.done, t.result = true, result
	t.fireDone()
}

func (t *task) fail(err error) {
	if t.done {
		return
	}
	t.done, t.err = true, err
	t.fireDone()
}

func (t *task) fireDone() {
	fns := t.onDone
	t.onDone = nil
	for _, fn := range fns {
		fn()
	}
}

// IsDone reports whether the task is done.
func (t *task) IsDone() bool { return t.done }

// Await waits for the task and decodes its result into v.
func (t *task) Await(v any) error {
	if err := t.c.checkAwait(); err != nil {
		return err
	}
	for !t.done {
		t.c.block(t)
	}
	if t.err != nil {
		return t.err
	}
	switch t.kind {
	case kindAll:
		return t.awaitAll(v)
	case kindAny:
		return t.awaitAny(v)
	}
	return decodeJSON(t.result, v, t.describe())
}

func (t *task) describe() string {
	if t.name == "" {
		return "result of " + t.kind.String()
	}
	return fmt.Sprintf("result of %s %q", t.kind, t.name)
}

// WhenAll returns a task that is done when all of tasks are done. Await(v)
// takes nil or a pointer to a slice, which it sets to one element per task
// holding that task's decoded result (left zero for failed tasks), and
// returns the error of the first failed task in argument order.
func (c *OrchestrationContext) WhenAll(tasks ...Task) Task {
	t := c.newTask(kindAll, "")
	children, err := c.ownTasks("WhenAll", tasks)
	if err != nil {
		t.fail(err)
		return t
	}
	t.children = children
	remaining := 0
	for _, ch := range children {
		if ch.done {
			continue
		}
		remaining++
		ch.onDone = append(ch.onDone, func() {
			if remaining--; remaining == 0 {
				t.complete(nil)
			}
		})
	}
	if remaining == 0 {
		t.complete(nil)
	}
	return t
}

// WhenAny returns a task that is done when the first of tasks is done (the
// earliest in argument order if several already are). Await(v) takes nil,
// an *int, which it sets to the winner's index, or a *Task, which it sets to
// the winner; it returns nil, so await the winner for its result or error.
// With no tasks, Await returns an error.
func (c *OrchestrationContext) WhenAny(tasks ...Task) Task {
	t := c.newTask(kindAny, "")
	children, err := c.ownTasks("WhenAny", tasks)
	if err == nil && len(children) == 0 {
		err = fmt.Errorf("%w: WhenAny needs at least one task", ErrInvalidArgument)
	}
	if err != nil {
		t.fail(err)
		return t
	}
	t.children = children
	for i, ch := range children {
		if ch.done {
			t.winner = i
			t.complete(nil)
			return t
		}
	}
	for i, ch := range children {
		ch.onDone = append(ch.onDone, func() {
			if !t.done {
				t.winner = i
				t.complete(nil)
			}
		})
	}
	return t
}

// ownTasks checks that tasks were made by c.
func (c *OrchestrationContext) ownTasks(op string, tasks []Task) ([]*task, error) {
	out := make([]*task, len(tasks))
	for i, tt := range tasks {
		t, ok := tt.(*task)
		if !ok || t == nil || t.c != c {
			return nil, fmt.Errorf("%w: %s: task %d was not made by this orchestration", ErrInvalidArgument, op, i)
		}
		out[i] = t
	}
	return out, nil
}

func (t *task) awaitAll(v any) error {
	var firstErr error
	for _, ch := range t.children {
		if ch.err != nil {
			firstErr = ch.err
			break
		}
	}
	if v == nil {
		return firstErr
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Slice {
		return errors.Join(firstErr, fmt.Errorf("%w: WhenAll: Await wants nil or a pointer to a slice, not %T", ErrInvalidArgument, v))
	}
	s := reflect.MakeSlice(rv.Elem().Type(), len(t.children), len(t.children))
	var decodeErr error
	for i, ch := range t.children {
		if ch.err != nil {
			continue
		}
		if err := decodeJSON(ch.result, s.Index(i).Addr().Interface(), ch.describe()); err != nil && decodeErr == nil {
			decodeErr = err
		}
	}
	rv.Elem().Set(s)
	if firstErr != nil {
		return firstErr
	}
	return decodeErr
}

func (t *task) awaitAny(v any) error {
	switch p := v.(type) {
	case nil:
	case *int:
		*p = t.winner
	case *Task:
		*p = t.children[t.winner]
	default:
		return fmt.Errorf("%w: WhenAny: Await wants nil, *int or *Task, not %T", ErrInvalidArgument, v)
	}
	return nil
}

var (
	errTurnEnded   = errors.New("jetflow: Await on a task whose orchestration turn has ended")
	errNotInOrchFn = errors.New("jetflow: Await called outside the orchestrator's goroutine")
)

// checkAwait makes sure Await runs on the orchestrator goroutine of a live
// turn.
func (c *OrchestrationContext) checkAwait() error {
	if c.closed.Load() {
		return errTurnEnded
	}
	if !c.inOrch.Load() {
		return errNotInOrchFn
	}
	if c.aborting {
		// The orchestrator recovered errAbort and awaits again: end the
		// goroutine in a way it cannot recover from.
		runtime.Goexit()
	}
	return nil
}

// block hands control to the executor until it resumes the orchestrator;
// the executor resumes it once t is done, or aborts it at the end of the
// turn.
func (c *OrchestrationContext) block(t *task) {
	c.awaiting = t
	c.inOrch.Store(false)
	c.yield <- struct{}{}
	if abort := <-c.resume; abort {
		c.aborting = true
		panic(errAbort)
	}
}
