package jetflow

import (
	"encoding/json"
	"fmt"
)

// ActivityProgress is the activityProgress field of a status: what a
// running activity last reported with SetProgress.
type ActivityProgress struct {
	// Name is the activity's name.
	Name string `json:"name"`
	// TaskID numbers the call within its orchestration.
	TaskID int32 `json:"taskId"`
	// Progress is the JSON value the activity reported.
	Progress json.RawMessage `json:"progress"`
}

// progressReporter receives an activity's progress reports; the Go
// executor installs one in the activity's context.
type progressReporter func(progress json.RawMessage) error

type progressKey struct{}

// SetProgress publishes v (any JSON value, e.g. {"done":42,"of":100}) as
// the instance status's activityProgress while the activity runs, for
// clients to show. It touches neither the orchestrator's custom status nor
// its history, so it has no effect on replay. Reports may be coalesced
// (the last one wins); without a reporter (outside a worker) it does
// nothing. The value is limited like a custom status.
func (a *ActivityContext) SetProgress(v any) error {
	b, err := encodeJSON(v)
	if err != nil {
		return fmt.Errorf("activity progress: %w", err)
	}
	if n := utf16Len(b); n > MaxCustomStatusLength {
		return fmt.Errorf("%w: activity progress is %d UTF-16 code units, over the limit of %d", ErrCustomStatusTooLarge, n, MaxCustomStatusLength)
	}
	report, _ := a.ctx.Value(progressKey{}).(progressReporter)
	if report == nil {
		return nil
	}
	return report(b)
}
