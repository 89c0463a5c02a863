package jetflow

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jetflow/jetflow/internal/history"
)

// Registry maps names to orchestrators and activities. Fill it before
// starting workers; after that it is safe for concurrent use.
type Registry struct {
	mu            sync.RWMutex
	orchestrators map[string]Orchestrator
	activities    map[string]Activity
	timeouts      map[string]time.Duration
}

// ActivityOption configures an activity at registration.
type ActivityOption func(*activityOptions)

type activityOptions struct{ timeout time.Duration }

// WithActivityTimeout gives the activity a start-to-close timeout: an attempt
// still running d after it started is abandoned by its worker and fails
// with a [*TaskFailedError] of Type "Timeout" (see
// [WithStartToCloseTimeout], which overrides it per call). Without one an
// activity may run as long as it likes; its worker keeps its lease alive.
func WithActivityTimeout(d time.Duration) ActivityOption {
	return func(o *activityOptions) { o.timeout = d }
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		orchestrators: make(map[string]Orchestrator),
		activities:    make(map[string]Activity),
		timeouts:      make(map[string]time.Duration),
	}
}

// AddOrchestrator registers o under name. The error wraps [ErrInvalidName]
// when the name breaks the rules of [ValidateName], and [ErrDuplicateName]
// when an orchestrator of that name is already registered.
func (r *Registry) AddOrchestrator(name string, o Orchestrator) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("adding orchestrator %q: %w", name, err)
	}
	if o == nil {
		return fmt.Errorf("adding orchestrator %q: function is nil", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.orchestrators[name]; ok {
		return fmt.Errorf("adding orchestrator %q: %w", name, ErrDuplicateName)
	}
	r.orchestrators[name] = o
	return nil
}

// AddActivity registers a under name. The error wraps [ErrInvalidName] when
// the name breaks the rules of [ValidateName], and [ErrDuplicateName] when an
// activity of that name is already registered.
func (r *Registry) AddActivity(name string, a Activity, opts ...ActivityOption) error {
	var o activityOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("adding activity %q: %w", name, err)
	}
	if a == nil {
		return fmt.Errorf("adding activity %q: function is nil", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.activities[name]; ok {
		return fmt.Errorf("adding activity %q: %w", name, ErrDuplicateName)
	}
	r.activities[name] = a
	if o.timeout > 0 {
		r.timeouts[name] = o.timeout
	}
	return nil
}

// ActivityTimeout returns the start-to-close timeout the activity was
// registered with (see [WithActivityTimeout]); 0 for none.
func (r *Registry) ActivityTimeout(name string) time.Duration {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.timeouts[name]
}

// Orchestrator returns the orchestrator registered under name.
func (r *Registry) Orchestrator(name string) (Orchestrator, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	o, ok := r.orchestrators[name]
	return o, ok
}

// Activity returns the activity registered under name.
func (r *Registry) Activity(name string) (Activity, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.activities[name]
	return a, ok
}

// OrchestratorNames returns the registered orchestrator names, sorted.
func (r *Registry) OrchestratorNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return sortedKeys(r.orchestrators)
}

// ActivityNames returns the registered activity names, sorted.
func (r *Registry) ActivityNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return sortedKeys(r.activities)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// runActivity runs the activity registered under name once with the given
// JSON input, recovering panics. On success result is the JSON of the
// returned value (json.Marshal; a nil value gives null) and failure is nil.
// Otherwise result is nil and failure says what went wrong, with Type
// FailureActivityError (the activity returned an error), FailurePanic (the
// message includes the panic value), FailureActivityNotRegistered or
// FailureInvalidOutput (the result cannot be encoded as JSON, or is over
// MaxPayload).
func (r *Registry) runActivity(ctx context.Context, name, instanceID string, taskID int32, input json.RawMessage) (result json.RawMessage, failure *history.Failure) {
	a, ok := r.Activity(name)
	if !ok {
		return nil, &history.Failure{
			Type:    FailureActivityNotRegistered,
			Message: fmt.Sprintf("activity %q is not registered", name),
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	actx := &ActivityContext{ctx: ctx, name: name, instanceID: instanceID, taskID: taskID, input: input}
	v, panicked, err := callActivity(a, actx)
	if panicked != nil {
		return nil, &history.Failure{
			Type:    FailurePanic,
			Message: fmt.Sprintf("activity %q panicked: %v", name, panicked.value),
		}
	}
	if err != nil {
		return nil, &history.Failure{Type: FailureActivityError, Message: err.Error()}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &history.Failure{
			Type:    FailureInvalidOutput,
			Message: fmt.Sprintf("encoding the result of activity %q: %v", name, err),
		}
	}
	if err := checkPayload(fmt.Sprintf("the result of activity %q", name), b); err != nil {
		return nil, &history.Failure{Type: FailureInvalidOutput, Message: err.Error()}
	}
	return b, nil
}

// panicValue holds a recovered panic value, and where it came from.
type panicValue struct {
	value any
	stack []byte
}

func callActivity(a Activity, actx *ActivityContext) (v any, panicked *panicValue, err error) {
	defer func() {
		if r := recover(); r != nil { // panic(nil) arrives as *runtime.PanicNilError
			v, panicked, err = nil, &panicValue{value: r}, nil
		}
	}()
	v, err = a(actx)
	return v, nil, err
}
