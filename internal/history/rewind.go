package history

import "slices"

// Rewound returns the history of an execution as its rewinds left it, for
// replay: each ExecutionRewound removes, from the execution before it, the
// failure that ended it (a failed ExecutionCompleted) and the failed
// activities and sub-orchestrations (TaskFailed, SubOrchestrationFailed),
// so that replay finds them waiting for a result again; the execution
// goes on under the rewind's execution id, so that results of the failed
// attempts are told apart from the new ones. The scheduling events a
// rewind sends again (they repeat the ID of one already in the execution)
// and the ExecutionRewound itself are left out.
//
// Without an ExecutionRewound, events is returned as it is; otherwise a
// new slice (the events are copied; events is not changed).
func Rewound(events []Event) []Event {
	if !slices.ContainsFunc(events, func(e Event) bool { return e.Type == ExecutionRewound }) {
		return events
	}
	out := make([]Event, 0, len(events))
	start := -1                       // index in out of the execution's ExecutionStarted
	scheduled := map[int32]struct{}{} // scheduling IDs of the execution
	for _, e := range events {
		switch {
		case e.Type == ExecutionStarted:
			start = len(out)
			clear(scheduled)
		case e.Type == ExecutionRewound:
			if start < 0 {
				continue
			}
			kept := out[:start]
			for _, o := range out[start:] {
				if o.Type == TaskFailed || o.Type == SubOrchestrationFailed ||
					o.Type == ExecutionCompleted && o.Status == StatusFailed {
					continue
				}
				kept = append(kept, o)
			}
			out = kept
			out[start].ExecutionID = e.ExecutionID
			continue
		case e.IsScheduling():
			if _, again := scheduled[e.ID]; again {
				continue
			}
			scheduled[e.ID] = struct{}{}
		}
		out = append(out, e)
	}
	return out
}

// Pending returns the scheduling events of events (one execution) that
// have no completion event.
func Pending(events []Event) []Event {
	done := map[int32]struct{}{}
	for _, e := range events {
		if e.IsCompletion() {
			done[e.TaskID] = struct{}{}
		}
	}
	var out []Event
	for _, e := range events {
		if _, ok := done[e.ID]; e.IsScheduling() && !ok {
			out = append(out, e)
		}
	}
	return out
}
