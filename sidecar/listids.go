package sidecar

import (
	"context"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ListInstanceIds lists instance ids a page at a time (the SDK clients'
// listInstanceIds), by runtime status and completed time: a completed
// time range keeps the finished instances that finished within it (their
// last update, to the second). The page size is at most
// client.MaxPageSize; a page filtered by completed time may hold fewer
// ids than that and still have a next page (lastInstanceKey).
func (s *Server) ListInstanceIds(ctx context.Context, req *pb.ListInstanceIdsRequest) (*pb.ListInstanceIdsResponse, error) {
	if err := s.unavailable(); err != nil {
		return nil, err
	}
	if req.GetPageSize() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "page size %d: want 0 (the default, %d) or more", req.GetPageSize(), client.DefaultPageSize)
	}
	q, err := query(req.GetRuntimeStatus(), time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	from := timeOf(req.GetCompletedTimeFrom(), req.GetCompletedTimeFrom() != nil)
	to := timeOf(req.GetCompletedTimeTo(), req.GetCompletedTimeTo() != nil)
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return nil, status.Errorf(codes.InvalidArgument, "completed time range: %s is before %s",
			to.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339))
	}
	q.Top = int(min(req.GetPageSize(), client.MaxPageSize))
	q.ContinuationToken = req.GetLastInstanceKey().GetValue()
	q.OmitInput = true
	page, err := s.client.ListInstances(ctx, q)
	if err != nil {
		return nil, rpcError(err)
	}
	resp := &pb.ListInstanceIdsResponse{InstanceIds: []string{}}
	for i := range page.Instances {
		if st := &page.Instances[i]; completedWithin(st, from, to) {
			resp.InstanceIds = append(resp.InstanceIds, st.InstanceID)
		}
	}
	if page.ContinuationToken != "" {
		resp.LastInstanceKey = wrapperspb.String(page.ContinuationToken)
	}
	return resp, nil
}

// completedWithin reports whether st is kept by a completed time range
// (zero bounds: none): an instance that has not finished is kept only
// when there is no range.
func completedWithin(st *jetflow.Status, from, to time.Time) bool {
	if from.IsZero() && to.IsZero() {
		return true
	}
	if !st.Finished() {
		return false
	}
	at := st.LastUpdatedTime.Time
	// Status times are whole seconds: compare at that resolution.
	return (from.IsZero() || !at.Before(from.Truncate(time.Second))) && (to.IsZero() || !at.After(to))
}
