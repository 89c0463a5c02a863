package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf16"

	"github.com/jetflow/jetflow"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// FailureUnsupported is the failure type of an execution whose SDK asked
// for something jetflow does not do (entity operations, terminating
// another instance from an orchestrator, a rewind action).
const FailureUnsupported = "NotSupported"

// noEventID is the event id of history events that are not scheduling
// events, as the Durable Task backends send them.
const noEventID = -1

// str wraps JSON (or any text) as a StringValue; nil for none.
func str(b json.RawMessage) *wrapperspb.StringValue {
	if len(b) == 0 {
		return nil
	}
	return wrapperspb.String(string(b))
}

// ts converts a time; nil for the zero time.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// failureDetails converts a failure, with its inner failures.
func failureDetails(f *history.Failure) *pb.TaskFailureDetails {
	if f == nil {
		return nil
	}
	d := &pb.TaskFailureDetails{ErrorType: f.Type, ErrorMessage: f.Message, InnerFailure: failureDetails(f.Inner), IsNonRetriable: f.NonRetriable}
	if f.Stack != "" {
		d.StackTrace = wrapperspb.String(f.Stack)
	}
	return d
}

// failureOf converts an SDK's failure details; fallback is the type when
// the SDK gave none. Inner failures are kept to a depth of 10.
func failureOf(d *pb.TaskFailureDetails, fallback string) *history.Failure {
	return failureDepth(d, fallback, 10)
}

func failureDepth(d *pb.TaskFailureDetails, fallback string, depth int) *history.Failure {
	if d == nil || depth == 0 {
		return nil
	}
	f := &history.Failure{Type: d.GetErrorType(), Message: d.GetErrorMessage(), Stack: d.GetStackTrace().GetValue(),
		NonRetriable: d.GetIsNonRetriable(), Inner: failureDepth(d.GetInnerFailure(), "", depth-1)}
	if f.Type == "" {
		f.Type = fallback
	}
	return f
}

var statuses = map[jetflow.RuntimeStatus]pb.OrchestrationStatus{
	jetflow.StatusPending:        pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING,
	jetflow.StatusRunning:        pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING,
	jetflow.StatusCompleted:      pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED,
	jetflow.StatusContinuedAsNew: pb.OrchestrationStatus_ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
	jetflow.StatusFailed:         pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED,
	jetflow.StatusCanceled:       pb.OrchestrationStatus_ORCHESTRATION_STATUS_CANCELED,
	jetflow.StatusTerminated:     pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED,
	jetflow.StatusSuspended:      pb.OrchestrationStatus_ORCHESTRATION_STATUS_SUSPENDED,
}

// runtimeStatus is the jetflow runtime status of a protocol status.
func runtimeStatus(s pb.OrchestrationStatus) (jetflow.RuntimeStatus, bool) {
	for k, v := range statuses {
		if v == s {
			return k, true
		}
	}
	return "", false
}

var executionStatuses = map[history.Status]pb.OrchestrationStatus{
	history.StatusCompleted:      pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED,
	history.StatusFailed:         pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED,
	history.StatusTerminated:     pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED,
	history.StatusContinuedAsNew: pb.OrchestrationStatus_ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
}

// historyEvent converts one history event for an SDK; nil for events the
// protocol has no place for (OrchestratorYielded, which replay ignores).
// Scheduling events keep the id the SDK gave their action; the other
// events have id -1.
func historyEvent(instanceID string, e *history.Event) *pb.HistoryEvent {
	h := &pb.HistoryEvent{EventId: noEventID, Timestamp: ts(e.Time)}
	switch e.Type {
	case history.ExecutionStarted:
		es := &pb.ExecutionStartedEvent{Name: e.Name, Input: str(e.Input), Version: orEmpty(e.Version), Tags: e.Tags,
			OrchestrationInstance: &pb.OrchestrationInstance{InstanceId: instanceID, ExecutionId: wrapperspb.String(e.ExecutionID)}}
		if !e.ScheduledStart.IsZero() {
			es.ScheduledStartTimestamp = ts(e.ScheduledStart)
		}
		if p := e.Parent; p != nil {
			es.ParentInstance = &pb.ParentInstanceInfo{TaskScheduledId: p.TaskID, Name: wrapperspb.String(p.Name),
				OrchestrationInstance: &pb.OrchestrationInstance{InstanceId: p.InstanceID, ExecutionId: wrapperspb.String(p.ExecutionID)}}
		}
		h.EventType = &pb.HistoryEvent_ExecutionStarted{ExecutionStarted: es}
	case history.OrchestratorStarted:
		h.EventType = &pb.HistoryEvent_OrchestratorStarted{OrchestratorStarted: &pb.OrchestratorStartedEvent{}}
	case history.TaskScheduled:
		h.EventId = e.ID
		h.EventType = &pb.HistoryEvent_TaskScheduled{TaskScheduled: &pb.TaskScheduledEvent{Name: e.Name, Input: str(e.Input),
			Version: orEmpty(e.Version), Tags: e.Tags}}
	case history.TaskCompleted:
		h.EventType = &pb.HistoryEvent_TaskCompleted{TaskCompleted: &pb.TaskCompletedEvent{TaskScheduledId: e.TaskID, Result: str(e.Result)}}
	case history.TaskFailed:
		h.EventType = &pb.HistoryEvent_TaskFailed{TaskFailed: &pb.TaskFailedEvent{TaskScheduledId: e.TaskID, FailureDetails: failureDetails(e.Failure)}}
	case history.TimerCreated:
		h.EventId = e.ID
		h.EventType = &pb.HistoryEvent_TimerCreated{TimerCreated: &pb.TimerCreatedEvent{FireAt: ts(e.FireAt)}}
	case history.TimerFired:
		h.EventType = &pb.HistoryEvent_TimerFired{TimerFired: &pb.TimerFiredEvent{FireAt: ts(e.FireAt), TimerId: e.TaskID}}
	case history.EventRaised:
		h.EventType = &pb.HistoryEvent_EventRaised{EventRaised: &pb.EventRaisedEvent{Name: e.Name, Input: str(e.Input)}}
	case history.EventSent:
		h.EventId = e.ID
		h.EventType = &pb.HistoryEvent_EventSent{EventSent: &pb.EventSentEvent{InstanceId: e.InstanceID, Name: e.Name, Input: str(e.Input)}}
	case history.SubOrchestrationCreated:
		h.EventId = e.ID
		h.EventType = &pb.HistoryEvent_SubOrchestrationInstanceCreated{SubOrchestrationInstanceCreated: &pb.SubOrchestrationInstanceCreatedEvent{
			InstanceId: e.InstanceID, Name: e.Name, Input: str(e.Input), Version: orEmpty(e.Version), Tags: e.Tags}}
	case history.SubOrchestrationCompleted:
		h.EventType = &pb.HistoryEvent_SubOrchestrationInstanceCompleted{SubOrchestrationInstanceCompleted: &pb.SubOrchestrationInstanceCompletedEvent{
			TaskScheduledId: e.TaskID, Result: str(e.Result)}}
	case history.SubOrchestrationFailed:
		h.EventType = &pb.HistoryEvent_SubOrchestrationInstanceFailed{SubOrchestrationInstanceFailed: &pb.SubOrchestrationInstanceFailedEvent{
			TaskScheduledId: e.TaskID, FailureDetails: failureDetails(e.Failure)}}
	case history.ExecutionTerminated:
		h.EventType = &pb.HistoryEvent_ExecutionTerminated{ExecutionTerminated: &pb.ExecutionTerminatedEvent{Input: str(e.Input)}}
	case history.ExecutionCompleted:
		h.EventType = &pb.HistoryEvent_ExecutionCompleted{ExecutionCompleted: &pb.ExecutionCompletedEvent{
			OrchestrationStatus: executionStatuses[e.Status], Result: str(e.Result), FailureDetails: failureDetails(e.Failure)}}
	case history.ExecutionSuspended:
		h.EventType = &pb.HistoryEvent_ExecutionSuspended{ExecutionSuspended: &pb.ExecutionSuspendedEvent{Input: str(e.Input)}}
	case history.ExecutionResumed:
		h.EventType = &pb.HistoryEvent_ExecutionResumed{ExecutionResumed: &pb.ExecutionResumedEvent{Input: str(e.Input)}}
	default:
		return nil
	}
	return h
}

// historyEvents converts events for an SDK.
func historyEvents(instanceID string, events []history.Event) []*pb.HistoryEvent {
	out := make([]*pb.HistoryEvent, 0, len(events))
	for i := range events {
		if h := historyEvent(instanceID, &events[i]); h != nil {
			out = append(out, h)
		}
	}
	return out
}

// sdkView returns the turn as an SDK replays it: a rewound execution as
// its rewinds left it (history.Rewound: the failures gone, the copies of
// what runs again left out), so that the SDK, which knows nothing of
// rewinds, waits again for what failed.
func sdkView(past, newEvents []history.Event) (p, n []history.Event) {
	for i, e := range newEvents {
		if e.Type == history.ExecutionRewound {
			// The rewind's turn: its marker goes into the replayed history,
			// which drops it and the copies after it.
			rewound := append(append([]history.Event(nil), past...), newEvents[i])
			rest := append([]history.Event(nil), newEvents[:i]...)
			return history.Rewound(rewound), rest
		}
	}
	return history.Rewound(past), newEvents
}

// orchestratorRequest is the work item of a turn.
func orchestratorRequest(instanceID string, past, newEvents []history.Event) *pb.OrchestratorRequest {
	p, n := sdkView(past, newEvents)
	r := &pb.OrchestratorRequest{InstanceId: instanceID, PastEvents: historyEvents(instanceID, p), NewEvents: historyEvents(instanceID, n)}
	if start := executionStart(p, n); start != nil {
		r.ExecutionId = wrapperspb.String(start.ExecutionID)
	}
	return r
}

// executionStart returns the execution's ExecutionStarted (the view's).
func executionStart(past, newEvents []history.Event) *history.Event {
	for _, evs := range [][]history.Event{newEvents, past} {
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Type == history.ExecutionStarted {
				return &evs[i]
			}
		}
	}
	return nil
}

// turnTime is the turn's deterministic time: its OrchestratorStarted's.
func turnTime(newEvents []history.Event) time.Time {
	for i := len(newEvents) - 1; i >= 0; i-- {
		if newEvents[i].Type == history.OrchestratorStarted {
			return newEvents[i].Time
		}
	}
	return time.Now().UTC()
}

// jsonOf reads a payload an SDK sent: "" (or none) is no value; anything
// else must be JSON no larger than jetflow.MaxPayload.
func jsonOf(what string, v *wrapperspb.StringValue) (json.RawMessage, error) {
	if v == nil || v.Value == "" {
		return nil, nil
	}
	b := json.RawMessage(v.Value)
	if !json.Valid(b) {
		return nil, fmt.Errorf("%w: %s is not JSON", jetflow.ErrInvalidInput, what)
	}
	if len(b) > jetflow.MaxPayload {
		return nil, fmt.Errorf("%w: %s is %d bytes of JSON, over the limit of %d", jetflow.ErrPayloadTooLarge, what, len(b), jetflow.MaxPayload)
	}
	return b, nil
}

// customStatusOf reads a custom status: JSON as it is, any other text as a
// JSON string; nil when the SDK sent none.
func customStatusOf(v *wrapperspb.StringValue) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b := json.RawMessage(v.Value)
	if !json.Valid(b) {
		b, _ = json.Marshal(v.Value)
	}
	if n := utf16Len(b); n > jetflow.MaxCustomStatusLength {
		return nil, fmt.Errorf("%w: the custom status is %d UTF-16 code units of JSON, over the limit of %d",
			jetflow.ErrCustomStatusTooLarge, n, jetflow.MaxCustomStatusLength)
	}
	return b, nil
}

func utf16Len(b []byte) int {
	n := 0
	for _, r := range string(b) {
		n += utf16.RuneLen(r)
	}
	return n
}

// turnResult turns an SDK's answer into the turn's events. Actions the
// engine cannot carry out (entities, terminating another instance), and
// payloads that are not JSON or too large, fail the execution with a
// message saying so.
func turnResult(instanceID string, past, newEvents []history.Event, resp *pb.OrchestratorResponse) *executor.TurnResult {
	now := turnTime(newEvents)
	res := &executor.TurnResult{}
	fail := func(typ, msg string) *executor.TurnResult {
		return &executor.TurnResult{CustomStatus: res.CustomStatus, Done: true, Events: []history.Event{{
			Type: history.ExecutionCompleted, Time: now, Status: history.StatusFailed, Failure: &history.Failure{Type: typ, Message: msg}}}}
	}
	custom, err := customStatusOf(resp.GetCustomStatus())
	if err != nil {
		return fail(jetflow.FailureOrchestratorError, err.Error())
	}
	res.CustomStatus = custom
	used := map[int32]bool{} // ids of the execution's scheduling events: an action repeating one would corrupt history
	for _, evs := range [][]history.Event{past, newEvents} {
		for _, e := range evs {
			if e.IsScheduling() || e.Type == history.EventSent {
				used[e.ID] = true
			}
		}
	}
	for _, a := range resp.GetActions() {
		id := a.GetId()
		if _, completes := a.GetOrchestratorActionType().(*pb.OrchestratorAction_CompleteOrchestration); !completes {
			if used[id] {
				return fail(jetflow.FailureNonDeterminism, fmt.Sprintf("action %d: the id is already used by an action of this execution "+
					"(the SDK sent an action twice, or numbered two actions alike)", id))
			}
			used[id] = true
		}
		switch act := a.GetOrchestratorActionType().(type) {
		case *pb.OrchestratorAction_ScheduleTask:
			if err := jetflow.ValidateName(act.ScheduleTask.GetName()); err != nil {
				return fail(jetflow.FailureOrchestratorError, fmt.Sprintf("action %d: activity name: %v", id, err))
			}
			in, err := jsonOf(fmt.Sprintf("the input of activity %q", act.ScheduleTask.GetName()), act.ScheduleTask.GetInput())
			if err != nil {
				return fail(jetflow.FailureOrchestratorError, err.Error())
			}
			version, tags, err := labels(fmt.Sprintf("action %d", id), act.ScheduleTask.GetVersion(), act.ScheduleTask.GetTags())
			if err != nil {
				return fail(jetflow.FailureOrchestratorError, err.Error())
			}
			res.Events = append(res.Events, history.Event{Type: history.TaskScheduled, ID: id, Time: now, Name: act.ScheduleTask.GetName(), Input: in,
				Version: version, Tags: tags})
		case *pb.OrchestratorAction_CreateTimer:
			res.Events = append(res.Events, history.Event{Type: history.TimerCreated, ID: id, Time: now,
				FireAt: act.CreateTimer.GetFireAt().AsTime().UTC()})
		case *pb.OrchestratorAction_CreateSubOrchestration:
			c := act.CreateSubOrchestration
			if err := jetflow.ValidateName(c.GetName()); err != nil {
				return fail(jetflow.FailureOrchestratorError, fmt.Sprintf("action %d: sub-orchestration name: %v", id, err))
			}
			child := c.GetInstanceId()
			if child == "" {
				child = fmt.Sprintf("%s:%04x", instanceID, id)
			}
			if err := jetflow.ValidateInstanceID(child); err != nil {
				return fail(jetflow.FailureOrchestratorError, fmt.Sprintf("action %d: sub-orchestration instance id: %v", id, err))
			}
			in, err := jsonOf(fmt.Sprintf("the input of sub-orchestration %q", c.GetName()), c.GetInput())
			if err != nil {
				return fail(jetflow.FailureOrchestratorError, err.Error())
			}
			version, tags, err := labels(fmt.Sprintf("action %d", id), c.GetVersion(), c.GetTags())
			if err != nil {
				return fail(jetflow.FailureOrchestratorError, err.Error())
			}
			res.Events = append(res.Events, history.Event{Type: history.SubOrchestrationCreated, ID: id, Time: now, Name: c.GetName(),
				InstanceID: child, Input: in, Version: version, Tags: tags})
		case *pb.OrchestratorAction_CompleteOrchestration:
			done, carry, err := completion(now, act.CompleteOrchestration)
			if err != nil {
				return fail(jetflow.FailureOrchestratorError, err.Error())
			}
			if done.Status != history.StatusCompleted {
				// Nobody reads the results of what a failed, terminated or
				// continued execution scheduled; the events it sent go.
				res.Events = slices.DeleteFunc(res.Events, func(e history.Event) bool { return e.Type != history.EventSent })
			}
			res.Events = append(res.Events, *done)
			res.Done, res.CarryOver = true, carry
			return res
		case *pb.OrchestratorAction_SendEvent:
			se := act.SendEvent
			if err := jetflow.ValidateName(se.GetName()); err != nil {
				return fail(jetflow.FailureOrchestratorError, fmt.Sprintf("action %d: event name: %v", id, err))
			}
			target := se.GetInstance().GetInstanceId()
			if err := jetflow.ValidateInstanceID(target); err != nil {
				return fail(jetflow.FailureOrchestratorError, fmt.Sprintf("action %d: the instance id of event %q: %v", id, se.GetName(), err))
			}
			data, err := jsonOf(fmt.Sprintf("the data of event %q", se.GetName()), se.GetData())
			if err != nil {
				return fail(jetflow.FailureOrchestratorError, err.Error())
			}
			res.Events = append(res.Events, history.Event{Type: history.EventSent, ID: id, Time: now, Name: se.GetName(), InstanceID: target, Input: data})
		case *pb.OrchestratorAction_TerminateOrchestration:
			return fail(FailureUnsupported, fmt.Sprintf("action %d: terminating instance %q from an orchestrator is not supported by jetflow",
				id, act.TerminateOrchestration.GetInstanceId()))
		case *pb.OrchestratorAction_SendEntityMessage:
			return fail(FailureUnsupported, fmt.Sprintf("action %d: entities are not supported by jetflow (the orchestrator sent an entity operation)", id))
		case *pb.OrchestratorAction_RewindOrchestration:
			return fail(FailureUnsupported, fmt.Sprintf("action %d: a rewind action is not supported by jetflow (rewind an instance with the client)", id))
		default:
			return fail(FailureUnsupported, fmt.Sprintf("action %d: an action of a kind jetflow does not know", id))
		}
	}
	return res
}

// labels checks the version and tags an action gave; what names the
// action in the error.
func labels(what string, version *wrapperspb.StringValue, tags map[string]string) (string, map[string]string, error) {
	v := version.GetValue()
	if err := errors.Join(jetflow.ValidateVersion(v), jetflow.ValidateTags(tags)); err != nil {
		return "", nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(tags) == 0 {
		tags = nil
	}
	return v, tags, nil
}

// orEmpty is a version for an SDK: none when empty.
func orEmpty(v string) *wrapperspb.StringValue {
	if v == "" {
		return nil
	}
	return wrapperspb.String(v)
}

// completion is the ExecutionCompleted of a complete action, and the
// events carried over to the next execution when it continues as new.
func completion(now time.Time, c *pb.CompleteOrchestrationAction) (*history.Event, []history.Event, error) {
	done := &history.Event{Type: history.ExecutionCompleted, Time: now}
	switch c.GetOrchestrationStatus() {
	case pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED:
		out, err := jsonOf("the output", c.GetResult())
		if err != nil {
			return nil, nil, err
		}
		done.Status, done.Result = history.StatusCompleted, out
	case pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED:
		done.Status = history.StatusFailed
		done.Failure = failureOf(c.GetFailureDetails(), jetflow.FailureOrchestratorError)
		if done.Failure == nil {
			done.Failure = &history.Failure{Type: jetflow.FailureOrchestratorError, Message: c.GetDetails().GetValue()}
		}
	case pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED:
		reason, err := jsonOf("the termination reason", c.GetResult())
		if err != nil {
			return nil, nil, err
		}
		if reason == nil {
			reason = json.RawMessage("null")
		}
		done.Status, done.Result = history.StatusTerminated, reason
	case pb.OrchestrationStatus_ORCHESTRATION_STATUS_CONTINUED_AS_NEW:
		in, err := jsonOf("the input of the next execution", c.GetResult())
		if err != nil {
			return nil, nil, err
		}
		done.Status, done.Result = history.StatusContinuedAsNew, in
		if v := c.GetNewVersion().GetValue(); v != "" {
			if err := jetflow.ValidateVersion(v); err != nil {
				return nil, nil, fmt.Errorf("the next execution's version: %w", err)
			}
			done.Version = v
		}
		var carry []history.Event
		for _, h := range c.GetCarryoverEvents() {
			r := h.GetEventRaised()
			if r == nil {
				continue
			}
			data, err := jsonOf(fmt.Sprintf("the data of carried-over event %q", r.GetName()), r.GetInput())
			if err != nil {
				return nil, nil, err
			}
			carry = append(carry, history.Event{Type: history.EventRaised, Time: now, Name: r.GetName(), Input: data})
		}
		return done, carry, nil
	default:
		return nil, nil, fmt.Errorf("the orchestrator completed with status %s, which an execution cannot end in", c.GetOrchestrationStatus())
	}
	return done, nil, nil
}
