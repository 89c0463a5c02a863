// Package sidecar serves the Durable Task sidecar protocol (the gRPC
// service TaskHubSidecarService that Microsoft's Durable Task SDKs for
// JavaScript, Python, Java and .NET talk to), so that orchestrators and
// activities written with those SDKs run on jetflow unchanged: their
// instances live in the same hub as Go orchestrations, with the same
// status bucket, HTTP API, watches, CLI and metrics.
//
// # How work reaches an SDK
//
// A Server embeds a jetflow worker whose executor is the SDK workers
// connected to it (internal/executor's seam): the worker consumes the
// inbox and task streams of the names the sidecar serves, and runs every
// turn and activity through its commit protocol (the history fence,
// exactly-once application of messages, status ordering, leases,
// redelivery, poison messages), exactly as for Go code. Only the running
// of user code moves to the SDK: a turn becomes an OrchestratorRequest
// work item on a GetWorkItems stream (the execution's full history, past
// and new events) and the SDK's CompleteOrchestratorTask answer becomes
// the turn's events; an activity task becomes an ActivityRequest and
// CompleteActivityTask its result.
//
// An SDK worker announces its names with the work-item filters of newer
// SDKs; a stream without filters takes every name the sidecar serves
// (Config.Orchestrators and Config.Activities, the names other streams
// announced, and names nobody in the hub serves that this sidecar's
// clients start or its orchestrators call). The sidecar consumes a name's
// messages only while a connected stream takes it: when the last one goes,
// it stops, and what waited for a stream is handed back, so that with
// several sidecars the work goes to those with SDK workers. Activities are
// routed by name across languages: a Go orchestrator calls an activity
// served by an SDK like any other, and an SDK orchestrator calls Go
// activities.
//
// # Work items
//
// Every work item carries a completion token; an SDK that sends none is
// matched by instance id (and task id for activities). Each stream holds
// at most Config.MaxItemsPerStream items of each kind at once (or what
// the SDK asked for, if fewer): the JavaScript SDK runs everything it is
// given. While an item is out the worker keeps the leases of the messages
// behind it alive, so nothing is redelivered because an SDK is slow. When
// a stream ends, breaks or the SDK abandons an item, what it held is handed
// back at once and runs on another stream (of this sidecar or another); a
// completion that comes later is refused with NotFound, and a repeated
// completion of an item already answered succeeds without effect. An
// orchestration item unanswered after Config.TurnTimeout is handed back
// too. Idle streams get a health ping every Config.PingInterval (newer
// SDKs drop streams silent for 120 s); on shutdown streams end with
// UNAVAILABLE, so SDKs reconnect elsewhere.
//
// # History mapping
//
// Scheduling events keep the ids the SDK gave their actions (the
// JavaScript SDK numbers tasks and timers from 1), other events have id
// -1; an execution's id is jetflow's execution id; a rewound execution is
// given to the SDK as its rewinds left it (history.Rewound), so the SDK
// waits again for what failed. Failure details keep their type, message,
// stack trace and inner failures both ways. A custom status that is not
// JSON is stored as a JSON string; an empty input, result or event
// payload is no value. An event an orchestrator sends to another
// instance is recorded (history.EventSent, given back to the SDK as
// EventSent) and raised on that instance once the turn is committed, at
// most once. Entities and terminating other instances from an
// orchestrator are not supported:
// such an action fails the execution with a FailureUnsupported failure
// saying so, and a stream whose filters name entities is refused.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jetflow/jetflow/client"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/workerhook"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/worker"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// DefaultAddress is where the SDKs look for a sidecar by default.
const DefaultAddress = "127.0.0.1:4001"

// Config configures a Server. The zero value is usable.
type Config struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Orchestrators and Activities are names served to SDK workers that
	// send no work-item filters, while one is connected. Defaults to none:
	// names come from the filters of connected SDKs (and see the package
	// doc).
	Orchestrators []string
	Activities    []string
	// MaxItemsPerStream bounds the work items of each kind (orchestration,
	// activity) out to one stream at once; an SDK that asks for fewer gets
	// fewer. Defaults to 16.
	MaxItemsPerStream int
	// TurnTimeout is how long an orchestration work item may be out
	// before it is handed back (the SDK is stuck). Defaults to 1 minute;
	// -1 disables. Activities have no such limit: they run as long as
	// their SDK takes (their leases are kept alive).
	TurnTimeout time.Duration
	// PingInterval is how often an idle stream gets a health ping.
	// Defaults to 15 seconds; at most 30 seconds.
	PingInterval time.Duration
	// MaxRecvMsgSize is the largest message the server accepts from an
	// SDK. Defaults to 4 times the NATS server's max_payload (a turn's
	// answer becomes one history chunk, which must fit in a message).
	// Messages to SDKs have no limit beyond the protocol's (a work item
	// carries the whole history of an execution).
	MaxRecvMsgSize int
	// Key, when set, is required on every call, in its metadata as
	// "authorization: Bearer KEY" (or "x-functions-key: KEY"); calls
	// without it get Unauthenticated. Defaults to none: whoever reaches the
	// listener may do everything. (The SDKs send metadata with their
	// metadataGenerator option.)
	Key string
	// Announced, when set, is called with the names a connecting SDK
	// worker announces (its work-item filters), before the sidecar serves
	// them: jetflow dev uses it to stop its Go samples of the same names.
	Announced func(orchestrators, activities []string)
	// Worker configures the embedded worker (concurrency, ack wait,
	// deliveries, metrics). Its Logger defaults to Logger; its Name to
	// "sidecar-<hostname>-<pid>"; its Orchestrators and Activities are
	// set by the sidecar (the names connected streams take), and its
	// TurnTimeout is -1 (TurnTimeout above bounds the time a turn is out
	// to an SDK).
	Worker worker.Config
}

func (c Config) withDefaults(maxPayload int64) Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxItemsPerStream == 0 {
		c.MaxItemsPerStream = 16
	}
	if c.TurnTimeout == 0 {
		c.TurnTimeout = time.Minute
	}
	if c.PingInterval == 0 {
		c.PingInterval = 15 * time.Second
	}
	if c.MaxRecvMsgSize == 0 {
		c.MaxRecvMsgSize = int(min(4*maxPayload, math.MaxInt32))
	}
	if c.Worker.Logger == nil {
		c.Worker.Logger = c.Logger
	}
	if c.Worker.Name == "" {
		host, _ := os.Hostname()
		c.Worker.Name = "sidecar-" + host + "-" + strconv.Itoa(os.Getpid())
	}
	c.Worker.Orchestrators, c.Worker.Activities = nil, nil
	c.Worker.NoOrchestrations, c.Worker.NoActivities = false, false
	c.Worker.TurnTimeout = -1
	return c
}

func (c Config) validate() error {
	switch {
	case c.MaxItemsPerStream < 1:
		return fmt.Errorf("MaxItemsPerStream %d: want at least 1", c.MaxItemsPerStream)
	case c.TurnTimeout < 0 && c.TurnTimeout != -1:
		return fmt.Errorf("TurnTimeout %s: want -1 or a positive duration", c.TurnTimeout)
	case c.PingInterval < 0 || c.PingInterval > 30*time.Second:
		return fmt.Errorf("PingInterval %s: want at most 30s", c.PingInterval)
	case c.MaxRecvMsgSize < 1<<20:
		return fmt.Errorf("MaxRecvMsgSize %d: want at least 1 MiB", c.MaxRecvMsgSize)
	}
	return nil
}

// Server is a Durable Task sidecar on a jetflow hub.
type Server struct {
	pb.UnimplementedTaskHubSidecarServiceServer

	cfg    Config
	log    *slog.Logger
	store  *storage.Store
	client *client.Client
	worker workerhook.Worker
	grpc   *grpc.Server

	mu         sync.Mutex
	started    bool
	closing    bool
	quit       chan struct{} // closed by Stop
	streams    map[*stream]struct{}
	nextStream int64
	wake       chan struct{} // closed and replaced when a stream or a slot changes
	items      map[string]*item
	byKey      map[string]*item
	answered   map[string]time.Time
	// served are the names the worker consumes; known the names of
	// Config and those learnt, for streams without filters.
	served, known [2]map[string]bool
	// serving orders the worker's Serve and Unserve calls, so that a name
	// a stream takes is never left unserved by a stream that just ended.
	serving  sync.Mutex
	stopOnce sync.Once
}

// New returns a sidecar of the hub behind store. Call Start, then Serve.
func New(store *jetstream.Store, cfg Config) (*Server, error) {
	st := storage.Of(store)
	cfg = cfg.withDefaults(st.Conn().MaxPayload())
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("sidecar config: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		store:    st,
		client:   client.New(store),
		quit:     make(chan struct{}),
		streams:  map[*stream]struct{}{},
		wake:     make(chan struct{}),
		items:    map[string]*item{},
		byKey:    map[string]*item{},
		answered: map[string]time.Time{},
		served:   [2]map[string]bool{{}, {}},
		known:    [2]map[string]bool{{}, {}},
	}
	for _, n := range cfg.Orchestrators {
		s.known[orchestration][n] = true
	}
	for _, n := range cfg.Activities {
		s.known[activity][n] = true
	}
	w, err := workerhook.New(store, remoteExecutor{s}, cfg.Worker)
	if err != nil {
		return nil, err
	}
	s.worker = w
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.MaxSendMsgSize(math.MaxInt32),
		// The SDKs' channels ping every 10 s or more when they ping at all
		// (the .NET SDK: 30 s); the default policy (5 min) would answer
		// them with GOAWAY "too_many_pings".
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}),
		grpc.UnaryInterceptor(s.unaryAuth),
		grpc.StreamInterceptor(s.streamAuth),
	)
	pb.RegisterTaskHubSidecarServiceServer(s.grpc, s)
	return s, nil
}

// Start starts the embedded worker (registering Config's names).
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("sidecar already started")
	}
	s.started = true
	s.mu.Unlock()
	return s.worker.Start(ctx)
}

// Serve answers gRPC calls on lis until Stop; it returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop ends every stream with UNAVAILABLE, hands back every work item
// out to an SDK (its messages run again on another sidecar or after a
// restart), stops the worker and the gRPC server, giving calls in
// progress until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		close(s.quit)
		for _, it := range s.items {
			s.take(it)
			it.done <- answer{err: errShutdown}
		}
		s.changed()
		started := s.started
		s.mu.Unlock()
		if started {
			err = s.worker.Stop(ctx)
		}
		done := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			s.grpc.Stop()
			<-done
			if err == nil {
				err = ctx.Err()
			}
		}
		s.client.Close()
	})
	return err
}

// unavailable refuses calls once the sidecar stops.
func (s *Server) unavailable() error {
	select {
	case <-s.quit:
		return status.Error(codes.Unavailable, "the jetflow sidecar is shutting down; connect to another one")
	default:
		return nil
	}
}

// Hello answers the SDKs' first call.
func (s *Server) Hello(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	if err := s.unavailable(); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// GetWorkItems streams work items to an SDK worker until it goes away or
// the sidecar stops.
func (s *Server) GetWorkItems(req *pb.GetWorkItemsRequest, srv grpc.ServerStreamingServer[pb.WorkItem]) error {
	if err := s.unavailable(); err != nil {
		return err
	}
	st, err := s.open(req)
	if err != nil {
		return err
	}
	why := errors.New("the SDK's stream ended")
	defer func() { s.closeStream(st, why) }()
	s.log.Debug("sidecar: SDK worker connected", slog.Int64("stream", st.id), slog.Bool("all_names", st.all))
	// A first ping, before any work item, tells the SDK that the stream is
	// open and its names are registered in the hub (instances of them can
	// be started). (A timer at 0 raced the items already queued, and each
	// item sent put the ping a whole interval off.)
	health := &pb.WorkItem{Request: &pb.WorkItem_HealthPing{HealthPing: &pb.HealthPing{}}}
	if err := srv.Send(health); err != nil {
		why = fmt.Errorf("sending a health ping: %w", err)
		return err
	}
	ping := time.NewTimer(s.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case wi := <-st.out:
			if err := srv.Send(wi); err != nil {
				why = fmt.Errorf("sending a work item: %w", err)
				return err
			}
			ping.Reset(s.cfg.PingInterval)
		case <-ping.C:
			if err := srv.Send(health); err != nil {
				why = fmt.Errorf("sending a health ping: %w", err)
				return err
			}
			ping.Reset(s.cfg.PingInterval)
		case <-srv.Context().Done():
			why = fmt.Errorf("the SDK's stream ended: %w", context.Cause(srv.Context()))
			return status.FromContextError(srv.Context().Err()).Err()
		case <-s.quit:
			why = errShutdown
			return s.unavailable()
		}
	}
}

// CompleteOrchestratorTask takes an SDK's answer to an orchestration work
// item.
func (s *Server) CompleteOrchestratorTask(_ context.Context, resp *pb.OrchestratorResponse) (*pb.CompleteTaskResponse, error) {
	if resp.GetIsPartial() {
		return nil, status.Error(codes.InvalidArgument, "chunked orchestrator responses are not supported by jetflow; "+
			"the sidecar accepts messages of up to its MaxRecvMsgSize in one piece")
	}
	if err := s.complete(orchestration, resp.GetCompletionToken(), orchKey(resp.GetInstanceId()), answer{orch: resp}); err != nil {
		return nil, err
	}
	return &pb.CompleteTaskResponse{}, nil
}

// CompleteActivityTask takes an SDK's answer to an activity work item.
func (s *Server) CompleteActivityTask(_ context.Context, resp *pb.ActivityResponse) (*pb.CompleteTaskResponse, error) {
	if err := s.complete(activity, resp.GetCompletionToken(), actKey(resp.GetInstanceId(), resp.GetTaskId()), answer{act: resp}); err != nil {
		return nil, err
	}
	return &pb.CompleteTaskResponse{}, nil
}

// AbandonTaskOrchestratorWorkItem hands an orchestration work item back.
func (s *Server) AbandonTaskOrchestratorWorkItem(_ context.Context, req *pb.AbandonOrchestrationTaskRequest) (*pb.AbandonOrchestrationTaskResponse, error) {
	if err := s.abandon(orchestration, req.GetCompletionToken()); err != nil {
		return nil, err
	}
	return &pb.AbandonOrchestrationTaskResponse{}, nil
}

// AbandonTaskActivityWorkItem hands an activity work item back.
func (s *Server) AbandonTaskActivityWorkItem(_ context.Context, req *pb.AbandonActivityTaskRequest) (*pb.AbandonActivityTaskResponse, error) {
	if err := s.abandon(activity, req.GetCompletionToken()); err != nil {
		return nil, err
	}
	return &pb.AbandonActivityTaskResponse{}, nil
}
