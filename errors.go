package jetflow

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is; the returned errors wrap them
// with a message naming what was wrong.
var (
	// ErrInvalidInstanceID: the id breaks the rules of ValidateInstanceID.
	ErrInvalidInstanceID = errors.New("invalid instance id")
	// ErrInvalidName: an orchestrator, activity or event name is not acceptable.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidInput: an input, event payload or output is not valid JSON,
	// or cannot be encoded as JSON.
	ErrInvalidInput = errors.New("invalid JSON")
	// ErrInvalidArgument: a call got an argument it cannot use (WhenAny of
	// no tasks or of a task another orchestration made; Await of WhenAll
	// or WhenAny into a value of the wrong type).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrPayloadTooLarge: an input or event payload is over the size limit.
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrUnknownOrchestrator: no orchestrator of that name is registered.
	ErrUnknownOrchestrator = errors.New("unknown orchestrator")
	// ErrInstanceNotFound: no instance has that id.
	ErrInstanceNotFound = errors.New("instance not found")
	// ErrInstanceExists: an instance with that id is Pending or Running.
	ErrInstanceExists = errors.New("instance already exists")
	// ErrInstanceFinished: the instance has finished (Completed, Failed,
	// Terminated or Canceled) and takes no more events or commands.
	ErrInstanceFinished = errors.New("instance finished")
	// ErrInstanceNotFinished: the command needs a finished instance (restart,
	// purge) and this one is still Pending, Running or Suspended.
	ErrInstanceNotFinished = errors.New("instance not finished")
	// ErrInstanceNotFailed: only a Failed instance can be rewound.
	ErrInstanceNotFailed = errors.New("instance not failed")
	// ErrCustomStatusTooLarge: SetCustomStatus got a value whose JSON is
	// over MaxCustomStatusLength UTF-16 code units.
	ErrCustomStatusTooLarge = errors.New("custom status too large")
	// ErrTimeout: a wait for an external event timed out.
	ErrTimeout = errors.New("timed out")
	// ErrInvalidOption: an option given to a call is not valid.
	ErrInvalidOption = errors.New("invalid option")
	// ErrDuplicateName: a name was registered twice.
	ErrDuplicateName = errors.New("name already registered")
	// ErrUnavailable: the NATS server could not be reached, or did not
	// answer in time. Worth retrying later. A write that may have been
	// stored meanwhile says ErrOutcomeUnknown as well.
	ErrUnavailable = errors.New("hub unavailable")
	// ErrOutcomeUnknown: a write was sent but its answer was lost (a
	// timeout, a broken connection), so it may or may not have taken
	// effect. Calls that return it are safe to retry with the same
	// arguments: the retry does what the first call meant to, or finds it
	// done. A start is the same request again only with the same request
	// id (client.WithRequestID; its error names the id it used): then the
	// retry answers with the run the first call made, even a finished one.
	ErrOutcomeUnknown = errors.New("outcome unknown; retrying is safe")
)

// MaxPayload is the largest JSON value an instance carries, in bytes: an
// input, an event's data, an activity's result or input, an orchestrator's
// output (512 KiB). Larger values are refused with ErrPayloadTooLarge (or
// fail the task or instance that produced them), so that every history
// chunk fits in one NATS message.
const MaxPayload = 512 * 1024

// checkPayload fails with ErrPayloadTooLarge when b is over MaxPayload.
func checkPayload(what string, b []byte) error {
	if len(b) > MaxPayload {
		return fmt.Errorf("%w: %s is %d bytes of JSON, over the limit of %d", ErrPayloadTooLarge, what, len(b), MaxPayload)
	}
	return nil
}

// MaxCustomStatusLength is the largest custom status accepted, in UTF-16
// code units of its JSON text (16 KB, as in Durable Functions).
const MaxCustomStatusLength = 16 * 1024

// TaskFailedError is what Await returns when an activity or a
// sub-orchestration failed. Use errors.As to read it.
type TaskFailedError struct {
	// Name is the activity's or sub-orchestrator's name.
	Name string
	// Message is the error text the task ended with.
	Message string
	// Type classifies the failure, e.g. "ActivityError", "Panic",
	// "ActivityNotRegistered".
	Type string
	// Attempts is how many times the activity ran, when it was called with
	// a retry policy (WithRetry); 0 otherwise.
	Attempts int
}

// Error describes the failure, naming the task.
func (e *TaskFailedError) Error() string {
	if e.Attempts > 1 {
		return fmt.Sprintf("task %q failed after %d attempts: %s", e.Name, e.Attempts, e.Message)
	}
	return fmt.Sprintf("task %q failed: %s", e.Name, e.Message)
}
