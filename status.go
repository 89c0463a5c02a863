package jetflow

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// RuntimeStatus is an instance's lifecycle state, with the Durable
// Functions names.
type RuntimeStatus string

// The runtime statuses.
const (
	StatusPending        RuntimeStatus = "Pending"
	StatusRunning        RuntimeStatus = "Running"
	StatusCompleted      RuntimeStatus = "Completed"
	StatusContinuedAsNew RuntimeStatus = "ContinuedAsNew"
	StatusFailed         RuntimeStatus = "Failed"
	StatusCanceled       RuntimeStatus = "Canceled"
	StatusTerminated     RuntimeStatus = "Terminated"
	StatusSuspended      RuntimeStatus = "Suspended"
)

// IsTerminal reports whether an instance in this state will not run again
// (Completed, Failed, Canceled or Terminated).
func (s RuntimeStatus) IsTerminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusCanceled, StatusTerminated:
		return true
	}
	return false
}

// Valid reports whether s is one of the defined runtime statuses.
func (s RuntimeStatus) Valid() bool { return slices.Contains(RuntimeStatuses, s) }

// RuntimeStatuses lists the runtime statuses, in the order of the Durable
// Functions documentation.
var RuntimeStatuses = []RuntimeStatus{
	StatusPending, StatusRunning, StatusCompleted, StatusContinuedAsNew,
	StatusFailed, StatusCanceled, StatusTerminated, StatusSuspended,
}

// ParseRuntimeStatuses reads runtime status names separated by commas, in
// any case ("running,Completed"); empty names are skipped. An unknown name
// is an ErrInvalidOption error naming it.
func ParseRuntimeStatuses(list string) ([]RuntimeStatus, error) {
	var out []RuntimeStatus
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		i := slices.IndexFunc(RuntimeStatuses, func(s RuntimeStatus) bool { return strings.EqualFold(name, string(s)) })
		if i < 0 {
			names := make([]string, len(RuntimeStatuses))
			for i, s := range RuntimeStatuses {
				names[i] = string(s)
			}
			return nil, fmt.Errorf("%w: %q is not a runtime status; want one or more of %s, separated by commas",
				ErrInvalidOption, name, strings.Join(names, ", "))
		}
		out = append(out, RuntimeStatuses[i])
	}
	return out, nil
}

// TimeFormat is the layout of times in status JSON: yyyy-MM-ddTHH:mm:ssZ,
// as the Durable Functions HTTP API writes them.
const TimeFormat = "2006-01-02T15:04:05Z"

// Time is a UTC time that encodes to JSON in [TimeFormat].
type Time struct{ time.Time }

// MarshalJSON writes the time in [TimeFormat], or null for the zero time.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(TimeFormat) + `"`), nil
}

// UnmarshalJSON reads [TimeFormat] or any RFC 3339 time, or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time %q: want yyyy-MM-ddTHH:mm:ssZ: %w", s, err)
	}
	t.Time = v.UTC()
	return nil
}

// Status is the state of one orchestration instance: the JSON of the HTTP
// API's GET /instances/{id}, and the value stored under the instance's key
// in the status KV bucket, so that `nats kv watch` shows the same document.
// Every key is always present; empty values are null.
type Status struct {
	// Name is the orchestrator's name.
	Name string `json:"name"`
	// InstanceID is the instance id as the user gave it (not encoded).
	InstanceID string `json:"instanceId"`
	// RuntimeStatus is the lifecycle state.
	RuntimeStatus RuntimeStatus `json:"runtimeStatus"`
	// Input is the instance's input JSON, or null.
	Input json.RawMessage `json:"input"`
	// CustomStatus is the JSON the orchestrator last set with
	// SetCustomStatus, or null.
	CustomStatus json.RawMessage `json:"customStatus"`
	// Output is the orchestrator's output JSON once Completed; for Failed,
	// the error message; for Terminated, the reason. Null otherwise.
	Output json.RawMessage `json:"output"`
	// CreatedTime is when the instance was started.
	CreatedTime Time `json:"createdTime"`
	// LastUpdatedTime is when this status was written.
	LastUpdatedTime Time `json:"lastUpdatedTime"`
	// ActivityProgress is what a running activity last reported with
	// SetProgress, or null. It is not part of history: the next status the
	// orchestrator writes clears it, and the activity's next report sets it
	// again.
	ActivityProgress *ActivityProgress `json:"activityProgress"`
	// RequestID is the key of the start request that created this run
	// (client.WithRequestID), or empty: a start repeated with the same
	// key finds the run it made instead of making another.
	RequestID string `json:"requestId"`
	// ScheduledStartTime is, for a run started for a later time
	// (client.WithStartTime), the time it was to start (whole seconds,
	// never before the time asked for); the run is Pending until then.
	// Unlike the other keys it is left out when not set, so the Durable
	// Functions shape is unchanged for every other instance.
	ScheduledStartTime Time `json:"scheduledStartTime,omitzero"`
	// Version is the version the run was started with (client.WithVersion,
	// a Durable Task SDK's version), left out when not set.
	Version string `json:"version,omitempty"`
	// Tags are the labels the run was started with (client.WithTags, a
	// Durable Task SDK's tags), left out when not set.
	Tags map[string]string `json:"tags,omitempty"`
}

// Finished reports whether the instance has reached a terminal state.
func (s *Status) Finished() bool { return s.RuntimeStatus.IsTerminal() }

// MarshalJSON writes the status with null for empty JSON values. The JSON
// values (input, customStatus, output) are written as they are: they come
// from the engine, which stores only valid JSON. Written by hand because
// encoding/json re-validates every json.RawMessage, and a status is encoded
// on every commit.
func (s Status) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 180+len(s.Name)+len(s.RequestID)+len(s.InstanceID)+len(s.Input)+len(s.CustomStatus)+len(s.Output))
	b = append(b, `{"name":`...)
	b = appendString(b, s.Name)
	b = append(b, `,"instanceId":`...)
	b = appendString(b, s.InstanceID)
	b = append(b, `,"runtimeStatus":`...)
	b = appendString(b, string(s.RuntimeStatus))
	b = append(b, `,"input":`...)
	b = append(b, orNull(s.Input)...)
	b = append(b, `,"customStatus":`...)
	b = append(b, orNull(s.CustomStatus)...)
	b = append(b, `,"output":`...)
	b = append(b, orNull(s.Output)...)
	b = append(b, `,"createdTime":`...)
	b = appendTime(b, s.CreatedTime)
	b = append(b, `,"lastUpdatedTime":`...)
	b = appendTime(b, s.LastUpdatedTime)
	b = append(b, `,"activityProgress":`...)
	if s.ActivityProgress == nil {
		b = append(b, "null"...)
	} else {
		p, err := json.Marshal(s.ActivityProgress)
		if err != nil {
			return nil, err
		}
		b = append(b, p...)
	}
	b = append(b, `,"requestId":`...)
	if s.RequestID == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, s.RequestID)
	}
	if !s.ScheduledStartTime.IsZero() {
		b = append(b, `,"scheduledStartTime":`...)
		b = appendTime(b, s.ScheduledStartTime)
	}
	if s.Version != "" {
		b = append(b, `,"version":`...)
		b = appendString(b, s.Version)
	}
	if len(s.Tags) > 0 {
		t, err := json.Marshal(s.Tags)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"tags":`...)
		b = append(b, t...)
	}
	return append(b, '}'), nil
}

func appendTime(b []byte, t Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeFormat)
	return append(b, '"')
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s) // rare: let encoding/json escape it
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func orNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
