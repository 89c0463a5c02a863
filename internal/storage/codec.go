package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jetflow/jetflow/internal/history"
	"github.com/vmihailenco/msgpack/v5"
)

// InboxMessage is a message in an instance's inbox: one event to apply.
type InboxMessage struct {
	// InstanceID is the target instance (not encoded).
	InstanceID string `msgpack:"i"`
	// ExecutionID, when set, is the execution the message is for; a message
	// for another execution is dropped. Empty for messages to whatever
	// execution is current (external events, terminate).
	ExecutionID string `msgpack:"e,omitempty"`
	// Event is the event to add to history. Event.MsgID is the message id.
	Event history.Event `msgpack:"ev"`
	// Orchestrator is the name of the instance's orchestrator, which routes
	// the message.
	Orchestrator string `msgpack:"o,omitempty"`
	// StatusRevision, on a start message, is the revision of the Pending
	// status the starter wrote (0 if none), so the first turn can update it
	// without reading it.
	StatusRevision uint64 `msgpack:"sr,omitempty"`
	// Start, on a recursive termination that a parent sends its
	// sub-orchestration, is the child's start event: a child that has
	// applied no start begins and ends its run with it (see
	// dispatcher.ChildTerminations).
	Start *history.Event `msgpack:"st,omitempty"`
}

// ActivityTask is a request to run one activity.
type ActivityTask struct {
	InstanceID  string `msgpack:"i"`
	ExecutionID string `msgpack:"e"`
	// Orchestrator is the calling instance's orchestrator, where the result
	// is routed.
	Orchestrator string          `msgpack:"o"`
	TaskID       int32           `msgpack:"t"`
	Name         string          `msgpack:"n"`
	Input        json.RawMessage `msgpack:"in,omitempty"`
	// Timeout is the call's start-to-close timeout; 0: the activity's
	// registered one, if any.
	Timeout time.Duration `msgpack:"to,omitempty"`
	// Version and Tags are those the call gave (history.Event's), or empty.
	Version string            `msgpack:"ver,omitempty"`
	Tags    map[string]string `msgpack:"tg,omitempty"`
}

// Chunk is one commit of an instance's history.
type Chunk struct {
	// Number is the chunk's number, from 1; not encoded (it is in the key).
	Number uint32 `msgpack:"-"`
	// Revision is the KV revision (stream sequence) of the chunk; not encoded.
	Revision uint64 `msgpack:"-"`
	// Events are the events the commit added.
	Events []history.Event `msgpack:"ev"`
	// CustomStatus, when set, is the custom status the commit's turn left
	// (null when it cleared it); unset when the turn did not change it.
	// It lets a worker write the status of a commit whose writer died
	// without running the orchestrator again.
	CustomStatus json.RawMessage `msgpack:"cs,omitempty"`
}

// RegistryEntry is the value of a registry key.
type RegistryEntry struct {
	Worker string `msgpack:"w,omitempty"`
}

func encode(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	return b, nil
}

func decode(b []byte, v any) error {
	if _, ok := v.(*Chunk); ok {
		if err := checkEventCount(b); err != nil {
			return fmt.Errorf("decoding %T: %w", v, err)
		}
	}
	if err := msgpack.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %T: %w", v, err)
	}
	return nil
}

// checkEventCount refuses a chunk whose events array declares more
// elements than it has bytes: msgpack v5.4.1 allocates a slice's declared
// length up front (vmihailenco/msgpack#401), so nine bytes could ask for
// hundreds of gigabytes and kill the process.
func checkEventCount(b []byte) error {
	r := bytes.NewReader(b)
	d := msgpack.NewDecoder(r)
	n, err := d.DecodeMapLen()
	if err != nil {
		return nil // not a map: Unmarshal says what is wrong
	}
	for range n {
		key, err := d.DecodeString()
		if err != nil {
			return nil
		}
		if key != "ev" {
			if err := d.Skip(); err != nil {
				return nil
			}
			continue
		}
		count, err := d.DecodeArrayLen()
		if err == nil && count > r.Len() {
			return fmt.Errorf("the events array declares %d elements in %d bytes", count, r.Len())
		}
		return nil
	}
	return nil
}
