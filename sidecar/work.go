package sidecar

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/jetflow/jetflow"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// errShutdown hands work back because the sidecar stops.
var errShutdown = errors.New("the sidecar is shutting down")

// kind is a kind of work item.
type kind int

const (
	orchestration kind = iota
	activity
)

// String names the kind in messages.
func (k kind) String() string {
	if k == orchestration {
		return "orchestration"
	}
	return "activity"
}

// stream is one GetWorkItems call: an SDK worker taking work.
type stream struct {
	id int64
	// all: the SDK sent no work-item filters, so it takes every name the
	// sidecar serves.
	all   bool
	names [2]map[string]bool
	// max bounds the items of each kind out to the stream at once.
	max      [2]int
	inflight [2]int
	out      chan *pb.WorkItem // capacity max[0]+max[1]: a send never blocks
	items    map[string]*item
}

// serves reports whether the stream takes work of kind k for name.
func (st *stream) serves(k kind, name string) bool { return st.all || st.names[k][name] }

// item is a work item out to a stream.
type item struct {
	token string
	kind  kind
	key   string // instance (and task) for SDKs that send no token
	st    *stream
	done  chan answer // capacity 1
}

// answer is what became of an item: the SDK's response, or an error that
// hands the work back.
type answer struct {
	orch *pb.OrchestratorResponse
	act  *pb.ActivityResponse
	err  error
}

// orchKey and actKey identify an item for SDKs that send no completion
// token.
func orchKey(instanceID string) string { return "o\x00" + instanceID }
func actKey(instanceID string, taskID int32) string {
	return "a\x00" + instanceID + "\x00" + strconv.Itoa(int(taskID))
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// changed wakes the dispatchers waiting for a stream or a free slot.
// Called with s.mu held.
func (s *Server) changed() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// covered reports whether a connected stream takes work of kind k for
// name. Called with s.mu held.
func (s *Server) covered(k kind, name string) bool {
	for st := range s.streams {
		if st.serves(k, name) {
			return true
		}
	}
	return false
}

// pick returns the stream with the most free room for an item of kind k
// for name, or nil. Called with s.mu held.
func (s *Server) pick(k kind, name string) *stream {
	var best *stream
	for st := range s.streams {
		if !st.serves(k, name) || st.inflight[k] >= st.max[k] {
			continue
		}
		if best == nil || st.max[k]-st.inflight[k] > best.max[k]-best.inflight[k] {
			best = st
		}
	}
	return best
}

// dispatch hands a work item to a stream serving name, waiting for one
// with room, and waits for its answer. The item is handed back (an
// error) when its stream ends, the SDK abandons it, it is out longer than
// timeout (0: no limit), ctx ends or the sidecar stops. The messages
// behind it keep their leases meanwhile (the worker keeps them alive).
func (s *Server) dispatch(ctx context.Context, k kind, name, key string, timeout time.Duration, build func(token string) *pb.WorkItem) (answer, error) {
	var it *item
	for it == nil {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return answer{}, errShutdown
		}
		if !s.covered(k, name) {
			// No stream takes the name (its last one just ended): back to
			// the stream, for a sidecar with an SDK that takes it; this
			// one stops consuming it (closeStream).
			s.mu.Unlock()
			return answer{}, fmt.Errorf("no SDK worker connected to this sidecar serves %s %q; handing the work back", k, name)
		}
		if st := s.pick(k, name); st != nil {
			it = &item{token: newToken(), kind: k, key: key, st: st, done: make(chan answer, 1)}
			st.inflight[k]++
			st.items[it.token] = it
			s.items[it.token] = it
			s.byKey[key] = it
			st.out <- build(it.token)
			s.mu.Unlock()
			break
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return answer{}, ctx.Err()
		}
	}
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case a := <-it.done:
		return a, a.err
	case <-ctx.Done():
		s.drop(it, ctx.Err())
		return answer{}, ctx.Err()
	case <-expire:
		err := fmt.Errorf("the SDK did not complete %s work item %s within %s; handing it back", k, key, timeout)
		s.drop(it, err)
		return answer{}, err
	}
}

// take removes an item from the books (it is answered or handed back).
// Called with s.mu held.
func (s *Server) take(it *item) {
	delete(s.items, it.token)
	if s.byKey[it.key] == it {
		delete(s.byKey, it.key)
	}
	if _, ok := it.st.items[it.token]; ok {
		delete(it.st.items, it.token)
		it.st.inflight[it.kind]--
	}
	s.changed()
}

// drop hands an item back: a completion that comes for it later is
// refused.
func (s *Server) drop(it *item, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[it.token]; !ok {
		return
	}
	s.take(it)
	it.done <- answer{err: err}
}

// complete delivers an SDK's answer to the item it names: by completion
// token, or by key for SDKs that send none. An answer for an item already
// answered is a duplicate and succeeds without effect; one for an item
// handed back (its stream ended, it was abandoned or timed out) or never
// given out is refused.
func (s *Server) complete(k kind, token, key string, a answer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[token]
	if token == "" {
		it = s.byKey[key]
	}
	if it == nil || it.kind != k {
		if _, dup := s.answered[token]; dup && token != "" {
			return nil
		}
		return status.Errorf(codes.NotFound, "no %s work item %s is held by this sidecar (it was handed back after its stream ended, "+
			"it was abandoned, or it timed out; it runs again elsewhere)", k, orKey(token, key))
	}
	s.take(it)
	s.remember(it.token)
	it.done <- a
	return nil
}

func orKey(token, key string) string {
	if token != "" {
		return strconv.Quote(token)
	}
	return strconv.Quote(key)
}

// answeredTTL is how long the tokens of answered items are remembered,
// to tell duplicate completions from late ones.
const answeredTTL = 10 * time.Minute

// remember records an answered token. Called with s.mu held.
func (s *Server) remember(token string) {
	now := time.Now()
	s.answered[token] = now
	if len(s.answered)%1024 == 0 {
		for t, at := range s.answered {
			if now.Sub(at) > answeredTTL {
				delete(s.answered, t)
			}
		}
	}
}

// abandon hands an item back at the SDK's request.
func (s *Server) abandon(k kind, token string) error {
	s.mu.Lock()
	it := s.items[token]
	s.mu.Unlock()
	if it == nil || it.kind != k {
		return status.Errorf(codes.NotFound, "no %s work item %q is held by this sidecar", k, token)
	}
	s.drop(it, fmt.Errorf("the SDK abandoned %s work item %s", k, it.key))
	return nil
}

// open registers a stream.
func (s *Server) open(req *pb.GetWorkItemsRequest) (*stream, error) {
	st := &stream{items: map[string]*item{}}
	st.max[orchestration] = bound(req.GetMaxConcurrentOrchestrationWorkItems(), s.cfg.MaxItemsPerStream)
	st.max[activity] = bound(req.GetMaxConcurrentActivityWorkItems(), s.cfg.MaxItemsPerStream)
	st.out = make(chan *pb.WorkItem, st.max[orchestration]+st.max[activity])
	f := req.GetWorkItemFilters()
	if len(f.GetEntities()) > 0 {
		return nil, status.Error(codes.InvalidArgument, "the work-item filters name entities: entities are not supported by jetflow")
	}
	st.all = f == nil || len(f.GetOrchestrations())+len(f.GetActivities()) == 0
	st.names = [2]map[string]bool{{}, {}}
	var orchs, acts []string
	if st.all {
		s.mu.Lock()
		orchs, acts = mapsKeys(s.known[orchestration]), mapsKeys(s.known[activity])
		s.mu.Unlock()
	}
	for _, o := range f.GetOrchestrations() {
		if err := jetflow.ValidateName(o.GetName()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "orchestration filter: %v", err)
		}
		st.names[orchestration][o.GetName()] = true
		orchs = append(orchs, o.GetName())
	}
	for _, a := range f.GetActivities() {
		if err := jetflow.ValidateName(a.GetName()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "activity filter: %v", err)
		}
		st.names[activity][a.GetName()] = true
		acts = append(acts, a.GetName())
	}
	if s.cfg.Announced != nil && !st.all && len(orchs)+len(acts) > 0 {
		s.cfg.Announced(orchs, acts)
	}
	// The stream is registered before its names are served, so that the
	// messages the new consumers deliver find it.
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, status.Error(codes.Unavailable, errShutdown.Error())
	}
	s.nextStream++
	st.id = s.nextStream
	s.streams[st] = struct{}{}
	s.changed()
	s.mu.Unlock()
	if err := s.serve(orchs, acts); err != nil {
		s.closeStream(st, err)
		return nil, err
	}
	return st, nil
}

// bound is the in-flight bound of a stream: what the SDK asked for, at
// most the configured one.
func bound(asked int32, limit int) int {
	if asked > 0 && int(asked) < limit {
		return int(asked)
	}
	return limit
}

// closeStream unregisters a stream and hands back at once what it held;
// the worker stops consuming the names no stream takes any more.
func (s *Server) closeStream(st *stream, why error) {
	s.serving.Lock()
	defer s.serving.Unlock()
	s.mu.Lock()
	delete(s.streams, st)
	for _, it := range st.items {
		s.take(it)
		it.done <- answer{err: why}
	}
	s.changed()
	var gone [2][]string
	for k := range s.served {
		for n := range s.served[k] {
			if !s.covered(kind(k), n) {
				gone[k] = append(gone[k], n)
				delete(s.served[k], n)
			}
		}
	}
	s.mu.Unlock()
	if len(gone[orchestration])+len(gone[activity]) > 0 {
		s.worker.Unserve(gone[orchestration], gone[activity])
	}
}

// serve makes the worker consume the names (registering them in the
// hub) if it does not yet.
func (s *Server) serve(orchs, acts []string) error {
	if len(orchs)+len(acts) == 0 {
		return nil
	}
	s.serving.Lock()
	defer s.serving.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.worker.Serve(ctx, orchs, acts); err != nil {
		return status.Errorf(codes.Unavailable, "serving %v and %v: %v", orchs, acts, err)
	}
	s.mu.Lock()
	for _, n := range orchs {
		s.served[orchestration][n] = true
	}
	for _, n := range acts {
		s.served[activity][n] = true
	}
	s.mu.Unlock()
	return nil
}

// learn serves a name nobody in the hub serves when a stream without
// filters (which takes every name) is connected: an SDK that does not
// announce its names still gets the instances started through this
// sidecar and the activities its orchestrators call.
func (s *Server) learn(ctx context.Context, k kind, name string) {
	s.mu.Lock()
	known := s.served[k][name]
	open := slices.ContainsFunc(mapsKeys(s.streams), func(st *stream) bool { return st.all })
	s.mu.Unlock()
	if known || !open {
		return
	}
	kindName := storage.KindOrchestrator
	if k == activity {
		kindName = storage.KindActivity
	}
	if ok, err := s.store.IsRegistered(ctx, kindName, name); err != nil || ok {
		return
	}
	s.mu.Lock()
	s.known[k][name] = true
	s.mu.Unlock()
	var err error
	if k == orchestration {
		err = s.serve([]string{name}, nil)
	} else {
		err = s.serve(nil, []string{name})
	}
	if err != nil {
		s.log.Warn("serving a name an SDK asked for", slog.String(k.String(), name), slog.Any("error", err))
	}
}

func mapsKeys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// remoteExecutor runs turns and activities on the SDK workers connected
// to the sidecar (the worker's executor seam).
type remoteExecutor struct{ s *Server }

// Execute sends the turn to an SDK worker serving the orchestrator and
// turns its answer into the turn's events.
func (x remoteExecutor) Execute(ctx context.Context, instanceID string, past, newEvents []history.Event) (*executor.TurnResult, error) {
	if slices.ContainsFunc(past, func(e history.Event) bool { return e.Type == history.ExecutionCompleted }) {
		return &executor.TurnResult{Done: true}, nil
	}
	start := executionStart(past, newEvents)
	if start == nil {
		return nil, fmt.Errorf("instance %s: a turn without an ExecutionStarted", instanceID)
	}
	req := orchestratorRequest(instanceID, past, newEvents)
	s := x.s
	a, err := s.dispatch(ctx, orchestration, start.Name, orchKey(instanceID), s.cfg.TurnTimeout, func(token string) *pb.WorkItem {
		return &pb.WorkItem{CompletionToken: token, Request: &pb.WorkItem_OrchestratorRequest{OrchestratorRequest: req}}
	})
	if err != nil {
		return nil, err
	}
	res := turnResult(instanceID, past, newEvents, a.orch)
	// What the orchestrator calls that nobody serves goes to the SDKs
	// without filters (see learn), before the worker dispatches it.
	for _, e := range res.Events {
		switch e.Type {
		case history.TaskScheduled:
			s.learn(ctx, activity, e.Name)
		case history.SubOrchestrationCreated:
			s.learn(ctx, orchestration, e.Name)
		}
	}
	return res, nil
}

// RunActivity sends the task to an SDK worker serving the activity.
func (x remoteExecutor) RunActivity(ctx context.Context, t executor.Task, _ func(json.RawMessage) error) (json.RawMessage, *history.Failure, error) {
	req := &pb.ActivityRequest{Name: t.Name, Input: str(t.Input), TaskId: t.TaskID, Version: orEmpty(t.Version), Tags: t.Tags,
		OrchestrationInstance: &pb.OrchestrationInstance{InstanceId: t.InstanceID, ExecutionId: wrapperspb.String(t.ExecutionID)}}
	a, err := x.s.dispatch(ctx, activity, t.Name, actKey(t.InstanceID, t.TaskID), 0, func(token string) *pb.WorkItem {
		return &pb.WorkItem{CompletionToken: token, Request: &pb.WorkItem_ActivityRequest{ActivityRequest: req}}
	})
	if err != nil {
		return nil, nil, err
	}
	if f := a.act.GetFailureDetails(); f != nil {
		return nil, failureOf(f, jetflow.FailureActivityError), nil
	}
	out, err := jsonOf(fmt.Sprintf("the result of activity %q", t.Name), a.act.GetResult())
	if err != nil {
		return nil, &history.Failure{Type: jetflow.FailureInvalidOutput, Message: err.Error()}, nil
	}
	return out, nil, nil
}
