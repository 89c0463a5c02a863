// Package client starts and follows orchestration instances from Go: start,
// read status, raise events, terminate, wait for completion and watch
// status changes. Waiting and watching are pushed by a KV watch on the
// status bucket, never polled.
package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nuid"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/dispatcher"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/jetstream"
)

// MaxPayload is the largest input or event payload accepted, in bytes of
// JSON.
const MaxPayload = jetflow.MaxPayload

// Client talks to one hub. It is safe for concurrent use. Close it when
// done with it if it listed instances.
type Client struct {
	store *storage.Store
	disp  *dispatcher.Dispatcher
	list  lister // the instance index of ListInstances, started by the first list
}

// New returns a client of the hub behind store.
func New(store *jetstream.Store) *Client {
	s := storage.Of(store)
	return &Client{store: s, disp: dispatcher.New(s)}
}

// Close stops what the client runs in the background: the instance index
// of ListInstances (a watch of the status bucket). It does not close the
// NATS connection. After Close, ListInstances fails with ErrClientClosed;
// the other methods work as before. Close may be called more than once.
func (c *Client) Close() { c.list.close() }

type startOptions struct {
	id        string
	input     json.RawMessage
	requestID string
	at        time.Time
	version   string
	tags      map[string]string
	err       error
}

// StartOption configures StartOrchestration.
type StartOption func(*startOptions)

// WithInstanceID sets the new instance's id (default: 32 random hex digits).
func WithInstanceID(id string) StartOption { return func(o *startOptions) { o.id = id } }

// WithInput sets the input, encoded as JSON.
func WithInput(v any) StartOption {
	return func(o *startOptions) { o.input, o.err = marshal(v) }
}

// WithRawInput sets the input JSON as it is; it must be valid JSON.
func WithRawInput(b json.RawMessage) StartOption {
	return func(o *startOptions) { o.input, o.err = b, nil }
}

// WithStartTime schedules the start for t, as durabletask-go's
// api.WithStartTime and Temporal's StartDelay do: the instance is Pending
// until then (its status's ScheduledStartTime says when) and its
// orchestrator runs no earlier than t, rounded up to the second. The
// schedule is held by the NATS server, so it survives restarts of workers
// and servers, and a start whose time passed while nothing ran happens
// as soon as a worker runs. Until then the instance can be terminated (it
// then never runs) and sent events (applied once it runs). A zero t, or
// one not more than a second ahead, starts at once.
func WithStartTime(t time.Time) StartOption {
	return func(o *startOptions) {
		o.at = t
		if t.Year() > 9999 {
			o.err = fmt.Errorf("%w: a start time must be before the year 10000, not %s", jetflow.ErrInvalidOption, t)
		}
	}
}

// WithVersion sets the run's version, a label of the user's (Durable
// Task's "1.0.0"): the orchestrator reads it with
// OrchestrationContext.Version, the status shows it, and an execution
// that continues as new keeps it. At most jetflow.MaxVersionLength
// characters; the engine never compares versions.
func WithVersion(v string) StartOption {
	return func(o *startOptions) {
		o.version = v
		if err := jetflow.ValidateVersion(v); err != nil {
			o.err = err
		}
	}
}

// WithTags sets the run's tags, labels of the user's: the orchestrator
// reads them with OrchestrationContext.Tags, the status shows them, its
// sub-orchestrations inherit them, and an execution that continues as new
// keeps them. Within jetflow.MaxTags, MaxTagKeyLength and
// MaxTagValueLength; the map is copied.
func WithTags(tags map[string]string) StartOption {
	return func(o *startOptions) {
		o.tags = maps.Clone(tags)
		if len(o.tags) == 0 {
			o.tags = nil
		}
		if err := jetflow.ValidateTags(tags); err != nil {
			o.err = err
		}
	}
}

// MaxRequestIDLength is the longest request id WithRequestID takes, in bytes.
const MaxRequestIDLength = 128

// WithRequestID names the start request with key, an idempotency key: a
// StartOrchestration with the same instance id, orchestrator and key as an
// earlier one that was stored returns the run that one made, in whatever
// state it is (even finished), instead of starting another. Give one when
// a start that failed with jetflow.ErrOutcomeUnknown is retried by a later
// call (the key of a start that gave up is in its error). Without one,
// each call is its own request.
func WithRequestID(key string) StartOption {
	return func(o *startOptions) {
		o.requestID = key
		if key == "" || len(key) > MaxRequestIDLength || !utf8.ValidString(key) {
			o.err = fmt.Errorf("%w: a request id must be 1 to %d bytes of UTF-8", jetflow.ErrInvalidOption, MaxRequestIDLength)
		}
	}
}

// startRetryFor is how long StartOrchestration goes on retrying a start
// whose outcome is unknown, at most (less when its context ends first).
const startRetryFor = 30 * time.Second

func marshal(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", jetflow.ErrInvalidInput, err)
	}
	return b, nil
}

// CheckPayload reports whether b is acceptable as an input or event
// payload: empty, or valid JSON of at most MaxPayload bytes.
func CheckPayload(what string, b json.RawMessage) error {
	if len(b) == 0 {
		return nil
	}
	if len(b) > MaxPayload {
		return fmt.Errorf("%w: %s is %d bytes, over the limit of %d", jetflow.ErrPayloadTooLarge, what, len(b), MaxPayload)
	}
	if !json.Valid(b) {
		return fmt.Errorf("%w: %s is not valid JSON", jetflow.ErrInvalidInput, what)
	}
	return nil
}

// NewInstanceID returns a random instance id: 32 hex digits.
func NewInstanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// StartOrchestration starts an instance of the named orchestrator and
// returns its id. It fails with jetflow.ErrUnknownOrchestrator,
// jetflow.ErrInvalidInstanceID, jetflow.ErrInvalidInput,
// jetflow.ErrPayloadTooLarge, or jetflow.ErrInstanceExists when an instance
// with that id is Pending or Running; nothing is changed then.
//
// A write whose answer is lost (a server failing over) is retried under
// the request's id (WithRequestID, or one made for the call), so that
// the start takes effect once; after 30 s of that, or when ctx ends
// first, the error wraps jetflow.ErrOutcomeUnknown and names the request
// id to call again with. A start that ctx cut off goes on in the
// background to its end (30 s at most), so that it never leaves an
// instance half started.
func (c *Client) StartOrchestration(ctx context.Context, name string, opts ...StartOption) (string, error) {
	var o startOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return "", o.err
	}
	if o.id == "" {
		o.id = NewInstanceID()
	}
	if err := jetflow.ValidateInstanceID(o.id); err != nil {
		return "", err
	}
	if err := jetflow.ValidateName(name); err != nil {
		return "", fmt.Errorf("orchestrator name: %w", err)
	}
	if err := CheckPayload("input", o.input); err != nil {
		return "", err
	}
	key := o.requestID
	if key == "" {
		key = nuid.Next()
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	// The start runs to its end even when ctx ends first: one cut off
	// between its status and its start message would leave the instance
	// Pending with nothing to run it.
	done := make(chan error, 1)
	req := dispatcher.Start{ID: o.id, Name: name, Input: o.input, RequestID: key, At: o.at, Version: o.version, Tags: o.tags}
	go func() { done <- c.start(context.WithoutCancel(ctx), req) }()
	select {
	case err := <-done:
		if err != nil {
			return "", err
		}
		return o.id, nil
	case <-ctx.Done():
		return "", fmt.Errorf("starting %q: %w (%w: it goes on in the background); to retry, start it again with client.WithRequestID(%q)",
			o.id, jetflow.ErrOutcomeUnknown, ctx.Err(), key)
	}
}

// start makes the start request req, retrying it for up to startRetryFor
// while its outcome is unknown. ctx has no deadline: each storage request
// is bounded by the store's timeout.
func (c *Client) start(ctx context.Context, req dispatcher.Start) error {
	key := req.RequestID
	deadline := time.Now().Add(startRetryFor)
	var unknown error // the first attempt whose outcome is unknown
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		_, err := c.disp.StartInstance(ctx, req)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetflow.ErrOutcomeUnknown):
			if unknown == nil {
				unknown = err
			}
		case unknown == nil || definite(err):
			// Nothing was stored, or the hub has answered for good.
			return err
		}
		// An attempt may have been stored: retry until the hub answers.
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%w (last try: %v); to retry, start it again with client.WithRequestID(%q)", unknown, err, key)
		}
		time.Sleep(wait)
	}
}

// definite reports whether a start's error is the hub's answer rather
// than a failure to reach it.
func definite(err error) bool {
	for _, target := range []error{jetflow.ErrInstanceExists, jetflow.ErrUnknownOrchestrator, jetflow.ErrPayloadTooLarge} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// RestartOption configures Restart.
type RestartOption func(*restartOptions)

type restartOptions struct{ sameID bool }

// KeepInstanceID makes Restart run the new run under the finished
// instance's own id instead of a new random one.
func KeepInstanceID() RestartOption { return func(o *restartOptions) { o.sameID = true } }

// Restart starts a new run of a finished instance's orchestrator with the
// same input, under a new random id (as Durable Functions does by default;
// KeepInstanceID keeps the id), and returns the new run's id. It fails
// with jetflow.ErrInstanceNotFound, or jetflow.ErrInstanceNotFinished
// while the instance is Pending, Running or Suspended.
func (c *Client) Restart(ctx context.Context, id string, opts ...RestartOption) (string, error) {
	var o restartOptions
	for _, opt := range opts {
		opt(&o)
	}
	st, err := c.GetStatus(ctx, id)
	if err != nil {
		return "", err
	}
	if !st.Finished() {
		return "", fmt.Errorf("%w: %q is %s; only a finished instance can be restarted", jetflow.ErrInstanceNotFinished, id, st.RuntimeStatus)
	}
	next := id
	if !o.sameID {
		next = NewInstanceID()
	}
	return c.StartOrchestration(ctx, st.Name, WithInstanceID(next), WithRawInput(st.Input))
}

// GetStatus returns an instance's status, or jetflow.ErrInstanceNotFound.
func (c *Client) GetStatus(ctx context.Context, id string) (*jetflow.Status, error) {
	if err := jetflow.ValidateInstanceID(id); err != nil {
		return nil, err
	}
	e, err := c.store.GetStatus(ctx, id)
	if err != nil {
		return nil, err
	}
	return &e.Status, nil
}

// RaiseEvent sends the external event name with data (any value encoded as
// JSON; a json.RawMessage is sent as it is, nil as null) to an instance.
// It fails with jetflow.ErrInstanceNotFound or jetflow.ErrInstanceFinished.
func (c *Client) RaiseEvent(ctx context.Context, id, name string, data any) error {
	if err := jetflow.ValidateInstanceID(id); err != nil {
		return err
	}
	if err := jetflow.ValidateName(name); err != nil {
		return fmt.Errorf("event name: %w", err)
	}
	b, err := marshal(data)
	if err != nil {
		return err
	}
	if err := CheckPayload("event data", b); err != nil {
		return err
	}
	return c.disp.RaiseEvent(ctx, id, name, b)
}

// Terminate stops an instance; reason (any JSON value) becomes its output.
// It fails with jetflow.ErrInstanceNotFound or jetflow.ErrInstanceFinished.
// WithRecursiveTerminate stops its sub-orchestrations too.
func (c *Client) Terminate(ctx context.Context, id string, reason any, opts ...TerminateOption) error {
	var o terminateOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.recursive {
		return c.control(ctx, id, reason, c.disp.TerminateRecursive)
	}
	return c.control(ctx, id, reason, c.disp.Terminate)
}

// TerminateOption configures Terminate.
type TerminateOption func(*terminateOptions)

type terminateOptions struct{ recursive bool }

// WithRecursiveTerminate has Terminate stop the instance's
// sub-orchestrations that are still running too, and theirs, with the
// same reason, as durabletask-go's api.WithRecursiveTerminate does. The
// commit that terminates an instance sends its children their
// terminations (an outbox message each, like every other action), so the
// whole tree stops even if the caller goes away; sub-orchestrations that
// finished before are left as they are.
func WithRecursiveTerminate() TerminateOption {
	return func(o *terminateOptions) { o.recursive = true }
}

// Suspend pauses an instance until Resume: events, activity results and
// timers that arrive meanwhile are kept and applied on resume. reason (any
// JSON value) is recorded in history. It fails with
// jetflow.ErrInstanceNotFound or jetflow.ErrInstanceFinished.
func (c *Client) Suspend(ctx context.Context, id string, reason any) error {
	return c.control(ctx, id, reason, c.disp.Suspend)
}

// Resume lets a suspended instance run again. It fails like Suspend.
func (c *Client) Resume(ctx context.Context, id string, reason any) error {
	return c.control(ctx, id, reason, c.disp.Resume)
}

// Rewind runs a failed instance again from where it failed: its failed
// activities (and sub-orchestrations, started afresh) are retried, and
// what had succeeded is kept. reason (any JSON value) is recorded in
// history. It fails with jetflow.ErrInstanceNotFound, or
// jetflow.ErrInstanceNotFailed unless the instance is Failed.
func (c *Client) Rewind(ctx context.Context, id string, reason any) error {
	return c.control(ctx, id, reason, c.disp.Rewind)
}

func (c *Client) control(ctx context.Context, id string, reason any, send func(context.Context, string, json.RawMessage) error) error {
	if err := jetflow.ValidateInstanceID(id); err != nil {
		return err
	}
	b, err := marshal(reason)
	if err != nil {
		return err
	}
	if err := CheckPayload("reason", b); err != nil {
		return err
	}
	return send(ctx, id, b)
}

// WaitForCompletion waits until the instance finishes and returns its
// final status. It fails with jetflow.ErrInstanceNotFound when the id has
// no status (never started, or purged) and when the status is removed
// (purged) while it waits, and with ctx's error when ctx ends first.
func (c *Client) WaitForCompletion(ctx context.Context, id string) (*jetflow.Status, error) {
	cur, err := c.GetStatusWithRevision(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", id, err)
	}
	if cur.Finished() {
		return &cur.Status, nil
	}
	// Watch from the revision read (never beyond the bucket's last one),
	// so every later change comes, deletions included: a watch of the
	// current value would not tell a missing status from one not yet
	// delivered. The bucket keeps a key's last value, and a terminal
	// status or a purge is that, so neither is missed.
	ch, err := c.relay(ctx, func(ctx context.Context) (<-chan storage.StatusUpdate, error) {
		return c.store.WatchStatus(ctx, id, cur.Revision)
	}, func(u *storage.StatusUpdate) (send, last bool) {
		return true, u.Deleted || u.Status.Finished()
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", id, err)
	}
	for u := range ch {
		switch {
		case u.Deleted:
			return nil, fmt.Errorf("waiting for %s: %w: %q was purged", id, jetflow.ErrInstanceNotFound, id)
		case u.Finished():
			return &u.Status, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", id, err)
	}
	return nil, fmt.Errorf("waiting for %s: the watch ended early", id)
}
