package jetflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/jetflow/jetflow/internal/history"
)

// Orchestrator is the code of an orchestration. It is replayed from history
// each time the instance makes progress, so it must follow the determinism
// rules in the package documentation. Its result is encoded with
// json.Marshal and becomes the instance's output; a returned error or a
// panic fails the instance.
type Orchestrator func(ctx *OrchestrationContext) (any, error)

// OrchestrationContext is what an [Orchestrator] gets: its input, a
// deterministic clock, and the calls that schedule durable work. Use it only
// from the orchestrator's goroutine, and only while the orchestrator runs.
type OrchestrationContext struct {
	instanceID  string
	executionID string
	name        string
	version     string
	tags        map[string]string
	input       json.RawMessage
	logger      *slog.Logger
	xlog        *slog.Logger // the executor's logger, for engine messages

	now       time.Time // time of the latest OrchestratorStarted
	replaying bool

	// actions are the scheduling events the orchestrator asked for, indexed
	// by their ID; the first recorded of them were matched against history.
	actions  []history.Event
	recorded int32
	// tasks are the scheduled tasks not completed yet, by ID.
	tasks map[int32]*task

	// waiters are the pending WaitForExternalEvent tasks, oldest first, and
	// buffered the events that no wait asked for yet, both by upper-cased
	// event name. rules (from ExecutionStarted) say which wait an event
	// goes to.
	rules    history.Rules
	waiters  map[string][]*task
	buffered map[string][]bufferedEvent
	arrivals int

	customStatus  json.RawMessage
	continueAsNew bool
	nextInput     json.RawMessage
	nextInputErr  error

	// The coroutine: the orchestrator goroutine and the executor hand
	// control to each other over resume and yield, so only one runs.
	resume   chan bool // executor -> orchestrator; true asks it to abort
	yield    chan struct{}
	inOrch   atomic.Bool // control is with the orchestrator goroutine (Await is allowed)
	closed   atomic.Bool // the turn is over
	awaiting *task       // the task the blocked orchestrator waits for
	started  bool
	returned bool // the orchestrator function has returned (or panicked)
	exited   bool // the orchestrator goroutine is done
	aborting bool
	output   any
	err      error
	panicked *panicValue
}

type bufferedEvent struct {
	arrival int
	event   history.Event
}

// InstanceID returns the orchestration instance's id.
func (c *OrchestrationContext) InstanceID() string { return c.instanceID }

// Name returns the orchestrator's registered name.
func (c *OrchestrationContext) Name() string { return c.name }

// Version returns the version the execution was started with
// (client.WithVersion, or a continue-as-new that gave a new one), or
// empty. The engine never compares versions: an orchestrator can branch
// on it to keep old runs on their old code path.
func (c *OrchestrationContext) Version() string { return c.version }

// Tags returns the execution's tags (client.WithTags; a sub-orchestration
// inherits its parent's), or nil. The map is shared: do not modify it.
func (c *OrchestrationContext) Tags() map[string]string { return c.tags }

// GetInput decodes the instance's JSON input into v, which should be a
// pointer. A null or missing input leaves v as it is. The error wraps
// [ErrInvalidInput].
func (c *OrchestrationContext) GetInput(v any) error {
	return decodeJSON(c.input, v, fmt.Sprintf("input of orchestrator %q", c.name))
}

// Now returns the orchestrator's current time (UTC): the time the current
// turn started, as recorded in history. It is the same on every replay; use
// it instead of time.Now.
func (c *OrchestrationContext) Now() time.Time { return c.now }

// IsReplaying reports whether the orchestrator is re-running code that ran
// in an earlier turn (rebuilding its state from history), as opposed to
// running it for the first time.
func (c *OrchestrationContext) IsReplaying() bool { return c.replaying }

// Logger returns a logger that drops records while the orchestrator is
// replaying, so each record is written once. Its records carry the instance
// id and orchestrator name.
func (c *OrchestrationContext) Logger() *slog.Logger { return c.logger }

// SetCustomStatus sets the instance's custom status to the JSON of v (nil
// gives null). The JSON text may be at most [MaxCustomStatusLength] UTF-16
// code units long; over that, the status is unchanged and the error wraps
// [ErrCustomStatusTooLarge]. If v cannot be encoded the error wraps
// [ErrInvalidInput].
func (c *OrchestrationContext) SetCustomStatus(v any) error {
	if c.aborting {
		return nil
	}
	b, err := encodeJSON(v)
	if err != nil {
		return fmt.Errorf("setting custom status: %w", err)
	}
	if n := utf16Len(b); n > MaxCustomStatusLength {
		return fmt.Errorf("%w: custom status is %d UTF-16 code units, over the limit of %d",
			ErrCustomStatusTooLarge, n, MaxCustomStatusLength)
	}
	c.customStatus = b
	return nil
}

// utf16Len returns the length of UTF-8 text b in UTF-16 code units.
func utf16Len(b []byte) int {
	n := 0
	for _, r := range string(b) {
		if l := utf16.RuneLen(r); l > 0 {
			n += l
		} else {
			n++ // invalid UTF-8 decodes as U+FFFD: one unit
		}
	}
	return n
}

// CallActivity schedules the activity registered under name with the JSON
// of input, and returns its task. Awaiting it gives the activity's result,
// or a [*TaskFailedError]. If the name is invalid or input cannot be
// encoded, nothing is scheduled and the task fails at once with an error
// wrapping [ErrInvalidName] or [ErrInvalidInput].
func (c *OrchestrationContext) CallActivity(name string, input any, opts ...CallOption) Task {
	var o callOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.retry != nil {
		return c.callWithRetry(name, input, *o.retry, o.timeout)
	}
	t := c.newTask(kindActivity, name)
	if c.aborting {
		return t
	}
	if err := ValidateName(name); err != nil {
		t.fail(fmt.Errorf("calling activity %q: %w", name, err))
		return t
	}
	in, err := encodeJSON(input)
	if err != nil {
		t.fail(fmt.Errorf("calling activity %q: %w", name, err))
		return t
	}
	ev := history.Event{Type: history.TaskScheduled, Name: name, Input: in, Timeout: o.timeout}
	if o.attempt > 1 {
		ev.Attempt = int32(o.attempt)
	}
	c.schedule(t, ev)
	return t
}

// CreateTimer schedules a durable timer that fires at Now()+d and returns
// its task; Await(nil) returns nil once it has fired.
func (c *OrchestrationContext) CreateTimer(d time.Duration) Task {
	t := c.newTask(kindTimer, "")
	if c.aborting {
		return t
	}
	c.schedule(t, history.Event{Type: history.TimerCreated, FireAt: c.now.Add(d)})
	return t
}

// WaitOption configures [OrchestrationContext.WaitForExternalEvent].
type WaitOption func(*waitOptions)

type waitOptions struct {
	timeout    time.Duration
	hasTimeout bool
}

// WithTimeout makes WaitForExternalEvent give up after d: it starts a
// durable timer, and if the timer fires before the event arrives, Await
// returns an error wrapping [ErrTimeout] that names the event and the
// timeout. With d <= 0 the wait fails at once unless the event has already
// arrived.
func WithTimeout(d time.Duration) WaitOption {
	return func(o *waitOptions) { o.timeout, o.hasTimeout = d, true }
}

// WaitForExternalEvent returns a task that is done when an external event
// of that name (compared case-insensitively) is raised for the instance;
// Await decodes the event's JSON data. Each event is delivered to one wait:
// the newest one pending, as in Durable Functions, so that a wait that lost
// a WhenAny (to a reminder timer, say) and was left behind does not take
// the event meant for the wait made after it. Events that arrive before
// anyone waits are kept, and go to the next waits in the order they
// arrived. (Executions started before jetflow recorded replay rules keep
// the old order: the oldest pending wait first.)
func (c *OrchestrationContext) WaitForExternalEvent(name string, opts ...WaitOption) Task {
	t := c.newTask(kindEvent, name)
	if c.aborting {
		return t
	}
	var o waitOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := ValidateName(name); err != nil {
		t.fail(fmt.Errorf("waiting for external event %q: %w", name, err))
		return t
	}
	key := eventKey(name)
	if buf := c.buffered[key]; len(buf) > 0 {
		c.buffered[key] = buf[1:]
		if len(buf) == 1 {
			delete(c.buffered, key)
		}
		t.complete(orNull(buf[0].event.Input))
		return t
	}
	if o.hasTimeout && o.timeout <= 0 {
		t.fail(timeoutError(name, o.timeout))
		return t
	}
	c.waiters[key] = append(c.waiters[key], t)
	if o.hasTimeout {
		timer := c.newTask(kindTimer, "")
		c.schedule(timer, history.Event{Type: history.TimerCreated, FireAt: c.now.Add(o.timeout)})
		timer.onDone = append(timer.onDone, func() {
			if !t.done {
				c.removeWaiter(key, t)
				t.fail(timeoutError(name, o.timeout))
			}
		})
	}
	return t
}

func timeoutError(event string, d time.Duration) error {
	return fmt.Errorf("waiting for external event %q: %w after %s", event, ErrTimeout, d)
}

// eventKey is the key external event names are matched by.
func eventKey(name string) string { return strings.ToUpper(name) }

func (c *OrchestrationContext) removeWaiter(key string, t *task) {
	ws := c.waiters[key]
	for i, w := range ws {
		if w == t {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(c.waiters, key)
	} else {
		c.waiters[key] = ws
	}
}

// SubOrchestratorOption configures [OrchestrationContext.CallSubOrchestrator].
type SubOrchestratorOption func(*subOptions)

type subOptions struct {
	instanceID string
	version    string
	tags       map[string]string
}

// WithSubVersion sets the sub-orchestration's version (see
// client.WithVersion); by default it has none. It must follow the rules
// of [ValidateVersion].
func WithSubVersion(v string) SubOrchestratorOption {
	return func(o *subOptions) { o.version = v }
}

// WithSubTags adds tags to the sub-orchestration's, which are its
// parent's (a tag given here wins over the parent's of the same key).
// They must follow the rules of [ValidateTags].
func WithSubTags(tags map[string]string) SubOrchestratorOption {
	return func(o *subOptions) { o.tags = maps.Clone(tags) }
}

// WithSubInstanceID sets the sub-orchestration's instance id, which must
// follow the rules of [ValidateInstanceID]. By default it is
// "<parent instance id>:<event id>", which is unique and the same on every
// replay; when that would be longer than [MaxInstanceIDLength] characters,
// the parent's id is shortened to its first characters, "~" and a hash of
// the whole id, so the default id is still valid, unique and ends in
// ":<event id>".
func WithSubInstanceID(id string) SubOrchestratorOption {
	return func(o *subOptions) { o.instanceID = id }
}

// CallSubOrchestrator starts the orchestrator registered under name as a new
// instance with the JSON of input, and returns a task that is done when that
// instance finishes. Await decodes its output, or returns a
// [*TaskFailedError] if it failed. An invalid name, instance id or input
// fails the task at once without starting anything.
func (c *OrchestrationContext) CallSubOrchestrator(name string, input any, opts ...SubOrchestratorOption) Task {
	t := c.newTask(kindSubOrchestration, name)
	if c.aborting {
		return t
	}
	var o subOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := ValidateName(name); err != nil {
		t.fail(fmt.Errorf("calling sub-orchestrator %q: %w", name, err))
		return t
	}
	id := o.instanceID
	if id == "" {
		id = subInstanceID(c.instanceID, len(c.actions))
	} else if err := ValidateInstanceID(id); err != nil {
		t.fail(fmt.Errorf("calling sub-orchestrator %q: %w", name, err))
		return t
	}
	if err := errors.Join(ValidateVersion(o.version), ValidateTags(o.tags)); err != nil {
		t.fail(fmt.Errorf("calling sub-orchestrator %q: %w", name, err))
		return t
	}
	in, err := encodeJSON(input)
	if err != nil {
		t.fail(fmt.Errorf("calling sub-orchestrator %q: %w", name, err))
		return t
	}
	if len(o.tags) == 0 {
		o.tags = nil
	}
	c.schedule(t, history.Event{Type: history.SubOrchestrationCreated, Name: name, InstanceID: id, Input: in,
		Version: o.version, Tags: o.tags})
	return t
}

// subInstanceID is the default instance id of the sub-orchestration that
// the instance parent schedules as event n: "<parent>:<n>", or, when that
// is over MaxInstanceIDLength characters, the parent's first characters,
// "~", 16 hex digits of the SHA-256 of the whole parent id, and ":<n>". It
// depends on nothing else, so a replay derives the same id.
func subInstanceID(parent string, n int) string {
	suffix := ":" + strconv.Itoa(n)
	if utf8.RuneCountInString(parent)+len(suffix) <= MaxInstanceIDLength {
		return parent + suffix
	}
	sum := sha256.Sum256([]byte(parent))
	tail := "~" + hex.EncodeToString(sum[:8]) + suffix
	end := 0
	for range MaxInstanceIDLength - len(tail) {
		_, size := utf8.DecodeRuneInString(parent[end:])
		end += size
	}
	return parent[:end] + tail
}

// ContinueAsNew ends this execution and starts the instance over with the
// JSON of input as its new input and a fresh history; external events that
// arrived but were not consumed are delivered to the new execution. The
// orchestrator should return right after: its result is ignored, but a
// returned error or a panic still fails the instance.
func (c *OrchestrationContext) ContinueAsNew(input any) {
	if c.aborting {
		return
	}
	c.continueAsNew = true
	c.nextInput, c.nextInputErr = encodeJSON(input)
}

// schedule gives t the next ID and records its scheduling event.
func (c *OrchestrationContext) schedule(t *task, e history.Event) {
	t.id = int32(len(c.actions))
	e.ID = t.id
	e.Time = c.now
	c.actions = append(c.actions, e)
	c.tasks[t.id] = t
}

// replayHandler drops records while the orchestrator replays.
type replayHandler struct {
	h slog.Handler
	c *OrchestrationContext
}

func (h replayHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !h.c.replaying && h.h.Enabled(ctx, l)
}

func (h replayHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.c.replaying {
		return nil
	}
	return h.h.Handle(ctx, r)
}

func (h replayHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return replayHandler{h: h.h.WithAttrs(as), c: h.c}
}

func (h replayHandler) WithGroup(name string) slog.Handler {
	return replayHandler{h: h.h.WithGroup(name), c: h.c}
}

// errAbort is the panic that unwinds a blocked orchestrator at the end of a
// turn. It is recovered at the top of the orchestrator goroutine.
var errAbort = errors.New("jetflow: orchestration turn ended")
