package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// rpcError maps an engine error to a gRPC status.
func rpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, jetflow.ErrInstanceNotFound):
		code = codes.NotFound
	case errors.Is(err, jetflow.ErrInstanceExists):
		code = codes.AlreadyExists
	case errors.Is(err, jetflow.ErrInstanceFinished), errors.Is(err, jetflow.ErrInstanceNotFinished), errors.Is(err, jetflow.ErrInstanceNotFailed):
		code = codes.FailedPrecondition
	case errors.Is(err, jetflow.ErrInvalidInstanceID), errors.Is(err, jetflow.ErrInvalidName), errors.Is(err, jetflow.ErrInvalidInput),
		errors.Is(err, jetflow.ErrInvalidArgument), errors.Is(err, jetflow.ErrInvalidOption), errors.Is(err, jetflow.ErrUnknownOrchestrator):
		code = codes.InvalidArgument
	case errors.Is(err, jetflow.ErrPayloadTooLarge):
		code = codes.ResourceExhausted
	case errors.Is(err, jetflow.ErrUnavailable), errors.Is(err, jetflow.ErrOutcomeUnknown), errors.Is(err, jetflow.ErrTimeout):
		code = codes.Unavailable
	}
	return status.Error(code, err.Error())
}

// reason reads a termination, suspension or rewind reason: JSON as it is,
// other text as a JSON string, nothing as null.
func reason(v *wrapperspb.StringValue) json.RawMessage {
	if v == nil || v.Value == "" {
		return nil
	}
	if b := json.RawMessage(v.Value); json.Valid(b) {
		return b
	}
	b, _ := json.Marshal(v.Value)
	return b
}

// StartInstance starts an orchestration, at once or at its scheduled
// start time (client.WithStartTime: a time less than a second ahead, or
// past, starts at once).
func (s *Server) StartInstance(ctx context.Context, req *pb.CreateInstanceRequest) (*pb.CreateInstanceResponse, error) {
	if err := s.unavailable(); err != nil {
		return nil, err
	}
	if err := jetflow.ValidateName(req.GetName()); err != nil {
		return nil, rpcError(err)
	}
	in, err := jsonOf("the input", req.GetInput())
	if err != nil {
		return nil, rpcError(err)
	}
	s.learn(ctx, orchestration, req.GetName())
	opts := []client.StartOption{client.WithRawInput(in)}
	if v := req.GetVersion().GetValue(); v != "" {
		opts = append(opts, client.WithVersion(v))
	}
	if len(req.GetTags()) > 0 {
		opts = append(opts, client.WithTags(req.GetTags()))
	}
	if at := req.GetScheduledStartTimestamp(); at != nil {
		if err := at.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "the scheduled start time: %v", err)
		}
		opts = append(opts, client.WithStartTime(at.AsTime()))
	}
	if id := req.GetInstanceId(); id != "" {
		opts = append(opts, client.WithInstanceID(id))
	}
	id, err := s.client.StartOrchestration(ctx, req.GetName(), opts...)
	if err != nil {
		return nil, rpcError(err)
	}
	return &pb.CreateInstanceResponse{InstanceId: id}, nil
}

// GetInstance returns an instance's state; exists is false for an
// unknown id.
func (s *Server) GetInstance(ctx context.Context, req *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	st, err := s.client.GetStatus(ctx, req.GetInstanceId())
	if errors.Is(err, jetflow.ErrInstanceNotFound) {
		return &pb.GetInstanceResponse{}, nil
	}
	if err != nil {
		return nil, rpcError(err)
	}
	return s.instanceResponse(ctx, st, req.GetGetInputsAndOutputs())
}

// WaitForInstanceStart waits, as long as the call's deadline allows, until
// the instance is no longer Pending. exists is false for an unknown id.
func (s *Server) WaitForInstanceStart(ctx context.Context, req *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	return s.waitFor(ctx, req, func(st *jetflow.Status) bool { return st.RuntimeStatus != jetflow.StatusPending })
}

// WaitForInstanceCompletion waits, pushed by the status watch and as long
// as the call's deadline allows, until the instance finishes (Completed,
// Failed, Terminated) or continues as new.
func (s *Server) WaitForInstanceCompletion(ctx context.Context, req *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	return s.waitFor(ctx, req, func(st *jetflow.Status) bool {
		return st.Finished() || st.RuntimeStatus == jetflow.StatusContinuedAsNew
	})
}

func (s *Server) waitFor(ctx context.Context, req *pb.GetInstanceRequest, done func(*jetflow.Status) bool) (*pb.GetInstanceResponse, error) {
	id := req.GetInstanceId()
	if _, err := s.client.GetStatus(ctx, id); errors.Is(err, jetflow.ErrInstanceNotFound) {
		return &pb.GetInstanceResponse{}, nil
	} else if err != nil {
		return nil, rpcError(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, err := s.client.WatchStatus(wctx, id, 0)
	if err != nil {
		return nil, rpcError(err)
	}
	for u := range updates {
		if done(&u.Status) {
			st := u.Status
			return s.instanceResponse(ctx, &st, req.GetGetInputsAndOutputs())
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	// The watch ended without a match: the instance was purged meanwhile.
	return &pb.GetInstanceResponse{}, nil
}

// instanceResponse converts a status; a failed instance's failure details
// come from its history.
func (s *Server) instanceResponse(ctx context.Context, st *jetflow.Status, payloads bool) (*pb.GetInstanceResponse, error) {
	state := orchestrationState(st, payloads)
	if st.RuntimeStatus == jetflow.StatusFailed {
		f, err := s.lastFailure(ctx, st.InstanceID)
		if err != nil {
			return nil, rpcError(err)
		}
		state.FailureDetails = failureDetails(f)
	}
	return &pb.GetInstanceResponse{Exists: true, OrchestrationState: state}, nil
}

// lastFailure is the failure that ended an instance's last execution.
func (s *Server) lastFailure(ctx context.Context, id string) (*history.Failure, error) {
	chunks, err := s.store.LoadHistory(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	for i := len(chunks) - 1; i >= 0; i-- {
		evs := chunks[i].Events
		for j := len(evs) - 1; j >= 0; j-- {
			if e := evs[j]; e.Type == history.ExecutionCompleted && e.Failure != nil {
				return e.Failure, nil
			}
		}
	}
	return nil, nil
}

// orchestrationState converts a status; payloads adds the input and the
// output (the custom status is always there).
func orchestrationState(st *jetflow.Status, payloads bool) *pb.OrchestrationState {
	s := &pb.OrchestrationState{InstanceId: st.InstanceID, Name: st.Name, OrchestrationStatus: statuses[st.RuntimeStatus],
		CreatedTimestamp: ts(st.CreatedTime.Time), LastUpdatedTimestamp: ts(st.LastUpdatedTime.Time), CustomStatus: orNone(st.CustomStatus),
		Version: orEmpty(st.Version), Tags: st.Tags}
	if !st.ScheduledStartTime.IsZero() {
		s.ScheduledStartTimestamp = ts(st.ScheduledStartTime.Time)
	}
	if payloads {
		s.Input, s.Output = orNone(st.Input), orNone(st.Output)
	}
	if st.Finished() {
		s.CompletedTimestamp = ts(st.LastUpdatedTime.Time)
	}
	return s
}

// orNone is a status value for an SDK: the status's null is no value.
func orNone(b json.RawMessage) *wrapperspb.StringValue {
	if string(b) == "null" {
		return nil
	}
	return str(b)
}

// RaiseEvent sends an event to an instance.
func (s *Server) RaiseEvent(ctx context.Context, req *pb.RaiseEventRequest) (*pb.RaiseEventResponse, error) {
	if err := jetflow.ValidateName(req.GetName()); err != nil {
		return nil, rpcError(err)
	}
	data, err := jsonOf(fmt.Sprintf("the data of event %q", req.GetName()), req.GetInput())
	if err != nil {
		return nil, rpcError(err)
	}
	var v any
	if data != nil {
		v = data
	}
	if err := s.client.RaiseEvent(ctx, req.GetInstanceId(), req.GetName(), v); err != nil {
		return nil, rpcError(err)
	}
	return &pb.RaiseEventResponse{}, nil
}

// TerminateInstance terminates an instance, its output the reason, and
// with recursive its sub-orchestrations still running
// (client.WithRecursiveTerminate).
func (s *Server) TerminateInstance(ctx context.Context, req *pb.TerminateRequest) (*pb.TerminateResponse, error) {
	var opts []client.TerminateOption
	if req.GetRecursive() {
		opts = append(opts, client.WithRecursiveTerminate())
	}
	if err := s.client.Terminate(ctx, req.GetInstanceId(), nullable(reason(req.GetOutput())), opts...); err != nil {
		return nil, rpcError(err)
	}
	return &pb.TerminateResponse{}, nil
}

func nullable(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return b
}

// SuspendInstance suspends an instance.
func (s *Server) SuspendInstance(ctx context.Context, req *pb.SuspendRequest) (*pb.SuspendResponse, error) {
	if err := s.client.Suspend(ctx, req.GetInstanceId(), nullable(reason(req.GetReason()))); err != nil {
		return nil, rpcError(err)
	}
	return &pb.SuspendResponse{}, nil
}

// ResumeInstance resumes a suspended instance.
func (s *Server) ResumeInstance(ctx context.Context, req *pb.ResumeRequest) (*pb.ResumeResponse, error) {
	if err := s.client.Resume(ctx, req.GetInstanceId(), nullable(reason(req.GetReason()))); err != nil {
		return nil, rpcError(err)
	}
	return &pb.ResumeResponse{}, nil
}

// RewindInstance rewinds a failed instance.
func (s *Server) RewindInstance(ctx context.Context, req *pb.RewindInstanceRequest) (*pb.RewindInstanceResponse, error) {
	if err := s.client.Rewind(ctx, req.GetInstanceId(), nullable(reason(req.GetReason()))); err != nil {
		return nil, rpcError(err)
	}
	return &pb.RewindInstanceResponse{}, nil
}

// RestartInstance starts a finished instance again with its input, under
// its id or a new one.
func (s *Server) RestartInstance(ctx context.Context, req *pb.RestartInstanceRequest) (*pb.RestartInstanceResponse, error) {
	var opts []client.RestartOption
	if !req.GetRestartWithNewInstanceId() {
		opts = append(opts, client.KeepInstanceID())
	}
	id, err := s.client.Restart(ctx, req.GetInstanceId(), opts...)
	if err != nil {
		return nil, rpcError(err)
	}
	return &pb.RestartInstanceResponse{InstanceId: id}, nil
}

// query converts the protocol's filter.
func query(statuses []pb.OrchestrationStatus, from, to time.Time) (client.Query, error) {
	q := client.Query{CreatedTimeFrom: from, CreatedTimeTo: to}
	for _, p := range statuses {
		rs, ok := runtimeStatus(p)
		if !ok {
			return q, status.Errorf(codes.InvalidArgument, "unknown runtime status %d", p)
		}
		q.RuntimeStatus = append(q.RuntimeStatus, rs)
	}
	return q, nil
}

func timeOf(t interface{ AsTime() time.Time }, set bool) time.Time {
	if !set {
		return time.Time{}
	}
	return t.AsTime()
}

// QueryInstances lists instances a page at a time.
func (s *Server) QueryInstances(ctx context.Context, req *pb.QueryInstancesRequest) (*pb.QueryInstancesResponse, error) {
	iq := req.GetQuery()
	if len(iq.GetTaskHubNames()) > 0 {
		return nil, status.Error(codes.InvalidArgument, "task hub names are not supported: a sidecar serves one hub")
	}
	q, err := query(iq.GetRuntimeStatus(), timeOf(iq.GetCreatedTimeFrom(), iq.GetCreatedTimeFrom() != nil), timeOf(iq.GetCreatedTimeTo(), iq.GetCreatedTimeTo() != nil))
	if err != nil {
		return nil, err
	}
	q.InstanceIDPrefix = iq.GetInstanceIdPrefix().GetValue()
	q.Top = int(min(iq.GetMaxInstanceCount(), client.MaxPageSize))
	q.ContinuationToken = iq.GetContinuationToken().GetValue()
	q.OmitInput = !iq.GetFetchInputsAndOutputs()
	page, err := s.client.ListInstances(ctx, q)
	if err != nil {
		return nil, rpcError(err)
	}
	resp := &pb.QueryInstancesResponse{}
	for i := range page.Instances {
		resp.OrchestrationState = append(resp.OrchestrationState, orchestrationState(&page.Instances[i], iq.GetFetchInputsAndOutputs()))
	}
	if page.ContinuationToken != "" {
		resp.ContinuationToken = wrapperspb.String(page.ContinuationToken)
	}
	return resp, nil
}

// PurgeInstances removes finished instances: one, a batch, or those a
// filter selects; with recursive, each with its sub-orchestrations
// (client.WithRecursivePurge; the count is of the instances asked for).
func (s *Server) PurgeInstances(ctx context.Context, req *pb.PurgeInstancesRequest) (*pb.PurgeInstancesResponse, error) {
	var opts []client.PurgeOption
	if req.GetRecursive() {
		opts = append(opts, client.WithRecursivePurge())
	}
	var ids []string
	switch r := req.GetRequest().(type) {
	case *pb.PurgeInstancesRequest_InstanceId:
		ids = []string{r.InstanceId}
	case *pb.PurgeInstancesRequest_InstanceBatch:
		ids = r.InstanceBatch.GetInstanceIds()
	case *pb.PurgeInstancesRequest_PurgeInstanceFilter:
		f := r.PurgeInstanceFilter
		q, err := query(f.GetRuntimeStatus(), timeOf(f.GetCreatedTimeFrom(), f.GetCreatedTimeFrom() != nil), timeOf(f.GetCreatedTimeTo(), f.GetCreatedTimeTo() != nil))
		if err != nil {
			return nil, err
		}
		n, err := s.client.PurgeInstances(ctx, q, opts...)
		if err != nil {
			return nil, rpcError(err)
		}
		return &pb.PurgeInstancesResponse{DeletedInstanceCount: int32(n), IsComplete: wrapperspb.Bool(true)}, nil
	default:
		return nil, status.Error(codes.InvalidArgument, "a purge needs an instance id, a batch of ids or a filter")
	}
	n := 0
	for _, id := range ids {
		err := s.client.PurgeInstance(ctx, id, opts...)
		switch {
		case err == nil:
			n++
		case errors.Is(err, jetflow.ErrInstanceNotFound):
		default:
			return nil, rpcError(err)
		}
	}
	return &pb.PurgeInstancesResponse{DeletedInstanceCount: int32(n), IsComplete: wrapperspb.Bool(true)}, nil
}

func unimplemented(what string) error {
	return status.Errorf(codes.Unimplemented, "%s is not supported by jetflow", what)
}

// errEntities refuses the entity RPCs.
var errEntities = status.Error(codes.Unimplemented, "entities are not supported by jetflow")

// CompleteEntityTask is refused: entities are not supported.
func (s *Server) CompleteEntityTask(context.Context, *pb.EntityBatchResult) (*pb.CompleteTaskResponse, error) {
	return nil, errEntities
}

// AbandonTaskEntityWorkItem is refused: entities are not supported.
func (s *Server) AbandonTaskEntityWorkItem(context.Context, *pb.AbandonEntityTaskRequest) (*pb.AbandonEntityTaskResponse, error) {
	return nil, errEntities
}

// SignalEntity is refused: entities are not supported.
func (s *Server) SignalEntity(context.Context, *pb.SignalEntityRequest) (*pb.SignalEntityResponse, error) {
	return nil, errEntities
}

// GetEntity is refused: entities are not supported.
func (s *Server) GetEntity(context.Context, *pb.GetEntityRequest) (*pb.GetEntityResponse, error) {
	return nil, errEntities
}

// QueryEntities is refused: entities are not supported.
func (s *Server) QueryEntities(context.Context, *pb.QueryEntitiesRequest) (*pb.QueryEntitiesResponse, error) {
	return nil, errEntities
}

// CleanEntityStorage is refused: entities are not supported.
func (s *Server) CleanEntityStorage(context.Context, *pb.CleanEntityStorageRequest) (*pb.CleanEntityStorageResponse, error) {
	return nil, errEntities
}

// CreateTaskHub is not supported: `jetflow init` creates a hub.
func (s *Server) CreateTaskHub(context.Context, *pb.CreateTaskHubRequest) (*pb.CreateTaskHubResponse, error) {
	return nil, unimplemented("CreateTaskHub (run `jetflow init`)")
}

// DeleteTaskHub is not supported.
func (s *Server) DeleteTaskHub(context.Context, *pb.DeleteTaskHubRequest) (*pb.DeleteTaskHubResponse, error) {
	return nil, unimplemented("DeleteTaskHub")
}

// SkipGracefulOrchestrationTerminations is not supported.
func (s *Server) SkipGracefulOrchestrationTerminations(context.Context, *pb.SkipGracefulOrchestrationTerminationsRequest) (*pb.SkipGracefulOrchestrationTerminationsResponse, error) {
	return nil, unimplemented("SkipGracefulOrchestrationTerminations")
}
