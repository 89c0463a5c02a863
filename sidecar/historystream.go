package sidecar

import (
	"errors"

	"github.com/jetflow/jetflow"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/history"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// historyChunkBytes bounds the encoded events of one HistoryChunk, well
// under the SDKs' default receive limit (4 MB), so that a long history
// streams in pieces.
const historyChunkBytes = 1 << 20

// StreamInstanceHistory streams the history of an instance's execution
// (the one asked for by id, or the current one) as the SDK's client reads
// it (getOrchestrationHistory): the events as a work item would carry
// them, a rewound execution as its rewinds left it, in chunks of at most
// about a megabyte. An instance that does not exist, or an execution it
// does not hold (an earlier one, trimmed), is NotFound.
func (s *Server) StreamInstanceHistory(req *pb.StreamInstanceHistoryRequest, out grpc.ServerStreamingServer[pb.HistoryChunk]) error {
	if err := s.unavailable(); err != nil {
		return err
	}
	id := req.GetInstanceId()
	if err := jetflow.ValidateInstanceID(id); err != nil {
		return rpcError(err)
	}
	ctx := out.Context()
	chunks, err := s.store.LoadHistory(ctx, id)
	if err != nil {
		return rpcError(err)
	}
	want := req.GetExecutionId().GetValue()
	var events []history.Event
	found := false
scan:
	for _, c := range chunks {
		for _, e := range c.Events {
			if e.Type == history.ExecutionStarted {
				if found && want != "" {
					break scan // the execution asked for has ended
				}
				events = events[:0] // a new execution: its events only
				found = want == "" || e.ExecutionID == want
			}
			events = append(events, e)
		}
	}
	if !found {
		if want != "" {
			return status.Errorf(codes.NotFound, "instance %q has no execution %q", id, want)
		}
		if _, err := s.store.GetStatus(ctx, id); errors.Is(err, jetflow.ErrInstanceNotFound) {
			return status.Errorf(codes.NotFound, "no instance %q", id)
		} else if err != nil {
			return rpcError(err)
		}
		return nil // Pending: no history yet
	}
	for _, c := range historyChunks(historyEvents(id, history.Rewound(events)), historyChunkBytes) {
		if err := out.Send(c); err != nil {
			return err
		}
	}
	return nil
}

// historyChunks splits events into chunks of at most limit encoded bytes
// (an event larger than that alone in its chunk).
func historyChunks(events []*pb.HistoryEvent, limit int) []*pb.HistoryChunk {
	var out []*pb.HistoryChunk
	size := 0
	for _, h := range events {
		n := proto.Size(h)
		if len(out) == 0 || len(out[len(out)-1].Events) > 0 && size+n > limit {
			out, size = append(out, &pb.HistoryChunk{}), 0
		}
		last := out[len(out)-1]
		last.Events = append(last.Events, h)
		size += n
	}
	return out
}
