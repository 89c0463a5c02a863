package jetflow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Activity is a unit of work called by orchestrators: it may do I/O, read
// the clock and take its time. It runs at least once per call, so make it
// idempotent. Its result is encoded with json.Marshal (nil encodes as null);
// a returned error fails the call, and the orchestrator's Await returns a
// [*TaskFailedError].
type Activity func(ctx *ActivityContext) (any, error)

// ActivityContext is what an [Activity] gets: a cancellable context, its
// input and where it was called from.
type ActivityContext struct {
	ctx        context.Context
	name       string
	instanceID string
	taskID     int32
	input      json.RawMessage
}

// Context returns the context the activity runs under; it is canceled when
// the worker shuts down.
func (a *ActivityContext) Context() context.Context { return a.ctx }

// GetInput decodes the activity's JSON input into v, which should be a
// pointer. A null or missing input leaves v as it is. The error wraps
// [ErrInvalidInput].
func (a *ActivityContext) GetInput(v any) error {
	return decodeJSON(a.input, v, fmt.Sprintf("input of activity %q", a.name))
}

// Name returns the activity's registered name.
func (a *ActivityContext) Name() string { return a.name }

// InstanceID returns the id of the orchestration instance that called the
// activity.
func (a *ActivityContext) InstanceID() string { return a.instanceID }

// TaskID returns the ID of the TaskScheduled event of this call in the
// calling execution's history.
func (a *ActivityContext) TaskID() int32 { return a.taskID }

// decodeJSON unmarshals data into v. Empty data or JSON null leaves v
// unchanged. what names the value in the error, which wraps ErrInvalidInput.
func decodeJSON(data json.RawMessage, v any, what string) error {
	if v == nil {
		return nil
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || string(t) == "null" {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: decoding %s: %v", ErrInvalidInput, what, err)
	}
	return nil
}

// encodeJSON encodes v for history: json.RawMessage passes through (it must
// be valid JSON; empty means null), anything else goes through json.Marshal.
// The error wraps ErrInvalidInput, or ErrPayloadTooLarge over MaxPayload.
func encodeJSON(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if len(raw) == 0 {
			return json.RawMessage("null"), nil
		}
		if !json.Valid(raw) {
			return nil, fmt.Errorf("%w: json.RawMessage %.40q is not valid JSON", ErrInvalidInput, raw)
		}
		return bytes.Clone(raw), checkPayload("the value", raw)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	if err := checkPayload("the value", b); err != nil {
		return nil, err
	}
	return b, nil
}
