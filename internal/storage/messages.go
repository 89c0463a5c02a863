package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Outgoing is one prepared write, sent with Publish.
type Outgoing struct {
	subject   string
	data      []byte
	msgID     string
	expectRev *uint64
	schedule  time.Time
	target    string
	what      string
}

// Subject returns the subject the write goes to.
func (o Outgoing) Subject() string { return o.subject }

// Result is the outcome of one write of a Publish.
type Result struct {
	// Seq is the stream sequence (KV revision) of the stored message.
	Seq uint64
	// Duplicate is set when the stream dropped the message as a duplicate
	// of one with the same message id.
	Duplicate bool
	// Err is the write's error; ErrConflict for a lost compare-and-set.
	Err error
}

// Publish sends the writes together and waits for all their
// acknowledgements, so their fsyncs overlap. Results are in the order of
// outs.
func (s *Store) Publish(ctx context.Context, outs ...Outgoing) (res []Result) {
	defer func(began time.Time) { s.observe(OpPublish, began, FirstError(res)) }(time.Now())
	return s.publish(ctx, outs...)
}

// publish is Publish unobserved, for the operations made of one.
func (s *Store) publish(ctx context.Context, outs ...Outgoing) []Result {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	res := make([]Result, len(outs))
	if len(outs) == 1 { // one round trip; no async bookkeeping
		res[0] = s.publishOne(ctx, outs[0])
		return res
	}
	futures := make([]natsjs.PubAckFuture, len(outs))
	for i, o := range outs {
		f, err := s.js.PublishMsgAsync(o.msg(), append(o.opts(), natsjs.WithStallWait(s.cfg.Timeout))...)
		if err != nil {
			res[i] = result(o, nil, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			res[i] = result(outs[i], ack, nil)
		case err := <-f.Err():
			if inProcess(err) {
				res[i] = s.publishOne(ctx, outs[i]) // refused, not stored: again, on its own
				continue
			}
			res[i] = result(outs[i], nil, err)
		case <-ctx.Done():
			res[i] = result(outs[i], nil, ctx.Err())
		}
	}
	return res
}

// publishOne sends one write and waits for its acknowledgement, trying
// again while the server cannot check its expectation yet (inProcess).
func (s *Store) publishOne(ctx context.Context, o Outgoing) Result {
	var ack *natsjs.PubAck
	err := retryInProcess(ctx, func() (err error) {
		ack, err = s.js.PublishMsg(ctx, o.msg(), o.opts()...)
		return err
	})
	return result(o, ack, err)
}

// inProcessRetries bounds how many times retryInProcess tries a write
// again, waiting 1 ms, then twice as long each time up to 50 ms.
const inProcessRetries = 20

// inProcess reports whether err is a replicated stream's refusal of a
// write whose expectation (a last sequence for its subject) it cannot
// check yet, because another write with an expectation on that subject
// is still being applied: "wrong last sequence" without a sequence
// (error 10164). Nothing was stored. The writer's own previous write can
// be that other one, acknowledged a moment before the leader forgot it.
func inProcess(err error) bool {
	var apiErr *natsjs.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequenceConstant
}

// retryInProcess runs write until the server does not refuse it as
// inProcess, up to inProcessRetries times more, and returns its last
// error. A refusal that lasts is a conflict (isConflict).
func retryInProcess(ctx context.Context, write func() error) error {
	wait := time.Millisecond
	for i := 0; ; i++ {
		err := write()
		if !inProcess(err) || i == inProcessRetries {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

func result(o Outgoing, ack *natsjs.PubAck, err error) Result {
	if err != nil {
		return Result{Err: mapErr(o.what, err)}
	}
	return Result{Seq: ack.Sequence, Duplicate: ack.Duplicate}
}

// FirstError returns the first error among results, or nil.
func FirstError(res []Result) error {
	for _, r := range res {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

func (o Outgoing) msg() *nats.Msg {
	return &nats.Msg{Subject: o.subject, Data: o.data, Header: nats.Header{}}
}

func (o Outgoing) opts() []natsjs.PublishOpt {
	var opts []natsjs.PublishOpt
	if o.msgID != "" {
		opts = append(opts, natsjs.WithMsgID(o.msgID))
	}
	if o.expectRev != nil {
		opts = append(opts, natsjs.WithExpectLastSequencePerSubject(*o.expectRev))
	}
	if !o.schedule.IsZero() {
		opts = append(opts, natsjs.WithScheduleAt(o.schedule), natsjs.WithScheduleTarget(o.target))
	}
	return opts
}

// InboxWrite prepares a message to an instance's inbox; its message id
// (m.Event.MsgID) makes a repeated publish a no-op within the duplicate
// window, and the history makes it a no-op after.
func (s *Store) InboxWrite(m *InboxMessage) (Outgoing, error) {
	data, err := encode(m)
	if err != nil {
		return Outgoing{}, err
	}
	return Outgoing{
		subject: s.names.InboxSubject(m.Orchestrator, m.InstanceID),
		data:    data,
		msgID:   m.Event.MsgID,
		what:    fmt.Sprintf("sending %s to %s", m.Event.Type, m.InstanceID),
	}, nil
}

// TimerWrite prepares a durable timer: the server stores the message now
// and delivers it to the instance's inbox at time at (rounded up to the
// second, never before at), across restarts.
func (s *Store) TimerWrite(m *InboxMessage, timerID int32, at time.Time) (Outgoing, error) {
	return s.scheduleWrite(m, s.names.TimerSubject(m.InstanceID, m.ExecutionID, timerID), m.Event.MsgID, at,
		fmt.Sprintf("scheduling timer %d of %s", timerID, m.InstanceID))
}

// DeferWrite prepares inbox message m, which came before its instance's
// start, to be delivered again at at, when the start is scheduled (see
// Names.HeldSubject). Its stream message id is its own with "held:"
// before it: the stream would drop one equal to the original's, which it
// still remembers.
func (s *Store) DeferWrite(m *InboxMessage, at time.Time) (Outgoing, error) {
	if m.Event.MsgID == "" {
		return Outgoing{}, fmt.Errorf("deferring a message of %s without a message id", m.InstanceID)
	}
	return s.scheduleWrite(m, s.names.HeldSubject(m.InstanceID, m.Event.MsgID), "held:"+m.Event.MsgID, at,
		"deferring a message to the start of "+m.InstanceID)
}

// ExpiryWrite prepares the message that removes a finished instance at
// at (an InstanceExpired for the execution that finished).
func (s *Store) ExpiryWrite(m *InboxMessage, at time.Time) (Outgoing, error) {
	return s.scheduleWrite(m, s.names.ExpirySubject(m.InstanceID, m.ExecutionID), m.Event.MsgID, at,
		"scheduling the removal of "+m.InstanceID)
}

// StartWrite prepares the start message m of an instance that is to start
// at at: the server holds it until then and delivers it to the instance's
// inbox, across restarts.
func (s *Store) StartWrite(m *InboxMessage, at time.Time) (Outgoing, error) {
	return s.scheduleWrite(m, s.names.StartSubject(m.InstanceID, m.ExecutionID), m.Event.MsgID, at,
		"scheduling the start of "+m.InstanceID)
}

// scheduleWrite prepares m, held on subject until at, when the server
// publishes it to the instance's inbox; msgID is the stream message id of
// the schedule.
func (s *Store) scheduleWrite(m *InboxMessage, subject, msgID string, at time.Time, what string) (Outgoing, error) {
	data, err := encode(m)
	if err != nil {
		return Outgoing{}, err
	}
	// A schedule holds whole seconds (the fraction is dropped, and the
	// timer would fire up to a second early): round up instead.
	if sec := at.Truncate(time.Second); !sec.Equal(at) {
		at = sec.Add(time.Second)
	}
	return Outgoing{
		subject:  subject,
		data:     data,
		msgID:    msgID,
		schedule: at,
		target:   s.names.InboxSubject(m.Orchestrator, m.InstanceID),
		what:     what,
	}, nil
}

// TaskWrite prepares an activity task.
func (s *Store) TaskWrite(t *ActivityTask, msgID string) (Outgoing, error) {
	data, err := encode(t)
	if err != nil {
		return Outgoing{}, err
	}
	return Outgoing{
		subject: s.names.TaskSubject(t.Name, t.InstanceID),
		data:    data,
		msgID:   msgID,
		what:    fmt.Sprintf("sending activity %s of %s", t.Name, t.InstanceID),
	}, nil
}

// Delivery is a received message, to acknowledge once handled.
type Delivery struct{ m natsjs.Msg }

// Ack acknowledges the message (fire and forget: a lost ack only means a
// redelivery, which history deduplicates).
func (d Delivery) Ack() { _ = d.m.Ack() }

// Nak asks for redelivery after delay.
func (d Delivery) Nak(delay time.Duration) { _ = d.m.NakWithDelay(delay) }

// InProgress extends the acknowledgement deadline.
func (d Delivery) InProgress() { _ = d.m.InProgress() }

// Stored returns when the delivered message was stored in its stream
// (from the delivery's metadata; zero if it has none), for the
// schedule-to-start time of a turn or an activity.
func (d Delivery) Stored() time.Time {
	md, err := d.m.Metadata()
	if err != nil {
		return time.Time{}
	}
	return md.Timestamp
}

// NumDelivered is how many times the message was delivered, from 1.
func (d Delivery) NumDelivered() uint64 {
	md, err := d.m.Metadata()
	if err != nil {
		return 1
	}
	return md.NumDelivered
}

// ConsumeConfig tunes a consumer.
type ConsumeConfig struct {
	// MaxAckPending is how many messages may be delivered and not yet
	// acknowledged. Defaults to 20000.
	MaxAckPending int
	// AckWait is how long a delivery may go unacknowledged before it is
	// redelivered. Defaults to 30 seconds.
	AckWait time.Duration
	// Buffer is how many messages the client fetches ahead. Defaults to 1000.
	Buffer int
	// Logger receives undecodable messages. Defaults to slog.Default().
	Logger *slog.Logger
}

func (c ConsumeConfig) withDefaults() ConsumeConfig {
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 20000
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.Buffer == 0 {
		c.Buffer = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Consumer is a running consumer.
type Consumer interface {
	// Stop ends it at once; messages fetched but not yet handled are
	// redelivered after the ack wait.
	Stop()
	// Drain stops fetching and hands the messages already fetched to the
	// handler (which can hand them back at once); Closed is closed once it
	// is done.
	Drain()
	// Closed is closed when the consumer has stopped.
	Closed() <-chan struct{}
}

// ConsumeInbox delivers the inbox messages of one orchestrator's instances
// to handle until stopped. Every worker of that orchestrator shares one
// durable consumer on each partition's inbox stream.
func (s *Store) ConsumeInbox(ctx context.Context, orchestrator string, cfg ConsumeConfig, handle func(*InboxMessage, Delivery)) (Consumer, error) {
	var all consumers
	for _, st := range s.orch {
		c, err := consume(ctx, s, st, s.names.InboxConsumer(orchestrator), s.names.OrchestratorInboxFilter(orchestrator), cfg, handle)
		if err != nil {
			all.Stop()
			return nil, err
		}
		all = append(all, c)
	}
	return all.one(), nil
}

// ConsumeActivity delivers the tasks of one activity to handle until
// stopped. Every worker of that activity shares one durable consumer.
// Tasks are fetched only while slots has room (a task's handler holds
// a slot until the task ends), so a worker never takes more tasks than it
// can start: waiting ones would age toward their ack wait on a busy
// worker while others are idle.
func (s *Store) ConsumeActivity(ctx context.Context, activity string, cfg ConsumeConfig, slots chan struct{}, handle func(*ActivityTask, Delivery)) (Consumer, error) {
	cfg = cfg.withDefaults()
	var all consumers
	for _, st := range s.act {
		c, err := s.consumer(ctx, st, s.names.TaskConsumer(activity), s.names.TaskFilter(activity), cfg)
		if err != nil {
			all.Stop()
			return nil, err
		}
		f := &fetcher{stop: make(chan struct{}), closed: make(chan struct{})}
		go f.run(c, cfg, slots, func(m natsjs.Msg) { deliver(m, cfg, handle) })
		all = append(all, f)
	}
	return all.one(), nil
}

// consumers gathers the consumers of a name, one per partition.
type consumers []Consumer

// one returns the consumer of a hub of one partition as it is, and the
// others as one (a pointer, so that it can be compared, as Consumers are).
func (cs consumers) one() Consumer {
	if len(cs) == 1 {
		return cs[0]
	}
	return &partitioned{cs: cs}
}

// Stop stops every one.
func (cs consumers) Stop() {
	for _, c := range cs {
		c.Stop()
	}
}

// partitioned is one Consumer made of one per partition.
type partitioned struct {
	cs     consumers
	once   sync.Once
	closed chan struct{}
}

// Stop stops every one.
func (p *partitioned) Stop() { p.cs.Stop() }

// Drain drains every one.
func (p *partitioned) Drain() {
	for _, c := range p.cs {
		c.Drain()
	}
}

// Closed is closed once every one is.
func (p *partitioned) Closed() <-chan struct{} {
	p.once.Do(func() {
		p.closed = make(chan struct{})
		go func() {
			for _, c := range p.cs {
				<-c.Closed()
			}
			close(p.closed)
		}()
	})
	return p.closed
}

// fetchWait is how long one fetch of a fetcher waits for messages; a stop
// takes effect within it (messages it brings meanwhile go to the handler,
// which hands them back).
const fetchWait = 500 * time.Millisecond

// HandBackDelay is how long a stopping worker's hand-back (a nak) holds a
// message from redelivery: longer than the stopping consumer's last pull
// request lives, so that the message goes to another worker instead of
// straight back into that request.
const HandBackDelay = 2 * fetchWait

// fetcher is a Consumer that pulls as many messages as there are free
// slots.
type fetcher struct {
	stop, closed chan struct{}
	once         sync.Once
}

func (f *fetcher) run(c natsjs.Consumer, cfg ConsumeConfig, slots chan struct{}, handle func(natsjs.Msg)) {
	defer close(f.closed)
	for {
		select { // wait for a free slot, without taking it
		case slots <- struct{}{}:
			<-slots
		case <-f.stop:
			return
		}
		n := min(max(cap(slots)-len(slots), 1), cfg.Buffer)
		batch, err := c.Fetch(n, natsjs.FetchMaxWait(fetchWait))
		if err != nil {
			cfg.Logger.Debug("fetching", slog.String("consumer", c.CachedInfo().Name), slog.Any("error", err))
			select {
			case <-time.After(fetchWait):
			case <-f.stop:
				return
			}
			continue
		}
		for m := range batch.Messages() {
			handle(m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			cfg.Logger.Debug("fetching", slog.String("consumer", c.CachedInfo().Name), slog.Any("error", err))
		}
	}
}

// Stop stops fetching; the fetch in progress ends within fetchWait.
func (f *fetcher) Stop() { f.once.Do(func() { close(f.stop) }) }

// Drain is Stop: a fetcher holds no buffer.
func (f *fetcher) Drain() { f.Stop() }

// Closed is closed once the last fetch has ended.
func (f *fetcher) Closed() <-chan struct{} { return f.closed }

// consumer creates or updates a durable consumer.
func (s *Store) consumer(ctx context.Context, st natsjs.Stream, name, filter string, cfg ConsumeConfig) (natsjs.Consumer, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	c, err := st.CreateOrUpdateConsumer(ctx, natsjs.ConsumerConfig{
		Durable:       name,
		FilterSubject: filter,
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxAckPending: cfg.MaxAckPending,
		MaxDeliver:    -1,
	})
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s: %w", name, err)
	}
	return c, nil
}

// deliver decodes a message for handle; an undecodable one is dropped.
func deliver[T any](m natsjs.Msg, cfg ConsumeConfig, handle func(*T, Delivery)) {
	v := new(T)
	if err := decode(m.Data(), v); err != nil {
		cfg.Logger.Error("dropping undecodable message", slog.String("subject", m.Subject()), slog.Any("error", err))
		_ = m.Term()
		return
	}
	handle(v, Delivery{m})
}

func consume[T any](ctx context.Context, s *Store, st natsjs.Stream, name, filter string, cfg ConsumeConfig, handle func(*T, Delivery)) (Consumer, error) {
	cfg = cfg.withDefaults()
	c, err := s.consumer(ctx, st, name, filter, cfg)
	if err != nil {
		return nil, err
	}
	cc, err := c.Consume(func(m natsjs.Msg) { deliver(m, cfg, handle) },
		natsjs.PullMaxMessages(cfg.Buffer), natsjs.ConsumeErrHandler(func(_ natsjs.ConsumeContext, err error) {
			if !errors.Is(err, natsjs.ErrNoHeartbeat) {
				cfg.Logger.Debug("consumer", slog.String("consumer", name), slog.Any("error", err))
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("consuming %s: %w", name, err)
	}
	return cc, nil
}

// PurgeAcked removes from the inbox and task streams the messages that
// their consumers have acknowledged (limits retention keeps them until
// then): everything below each consumer's ack floor, and then the
// messages of acked (acknowledged above a floor that a message still
// outstanding pins, such as a long activity's task) whose consumer's floor
// stayed below them, one by one. It is idempotent; any worker may call it.
// It returns the acknowledged messages it left (their floor passed them,
// or they could not be removed now).
func (s *Store) PurgeAcked(ctx context.Context, acked []Acked) (_ []Acked, err error) {
	defer func(began time.Time) { s.observe(OpPurge, began, err) }(time.Now())
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var errs []error
	type consumer struct{ stream, name string }
	floors := map[consumer]uint64{} // ack floors
	streams := map[string]natsjs.Stream{}
	for _, st := range append(slices.Clip(s.orch), s.act...) {
		streams[st.CachedInfo().Config.Name] = st
		lister := st.ListConsumers(ctx)
		for ci := range lister.Info() {
			floors[consumer{ci.Stream, ci.Name}] = ci.AckFloor.Stream
			f := ci.Config.FilterSubject
			if f == "" || ci.AckFloor.Stream == 0 {
				continue
			}
			if err := st.Purge(ctx, natsjs.WithPurgeSubject(f), natsjs.WithPurgeSequence(ci.AckFloor.Stream+1)); err != nil {
				errs = append(errs, fmt.Errorf("purging %s below %d: %w", f, ci.AckFloor.Stream+1, err))
			}
		}
		if err := lister.Err(); err != nil {
			errs = append(errs, err)
			return acked, errors.Join(errs...) // floors unknown: keep everything for the next round
		}
	}
	var left []Acked
	for _, a := range acked {
		floor, ok := floors[consumer{a.stream, a.consumer}]
		st, known := streams[a.stream]
		if !ok || !known || a.seq <= floor {
			continue // purged with its floor, or its consumer is gone
		}
		if err := st.DeleteMsg(ctx, a.seq); err != nil && !errors.Is(err, natsjs.ErrMsgNotFound) {
			errs = append(errs, fmt.Errorf("removing acknowledged message %d of %s: %w", a.seq, a.stream, err))
			left = append(left, a)
		}
	}
	return left, errors.Join(errs...)
}

// Acked is an acknowledged message, for PurgeAcked.
type Acked struct {
	stream, consumer string
	seq              uint64
}

// Acked returns what PurgeAcked needs of an acknowledged delivery.
func (d Delivery) Acked() (Acked, bool) {
	md, err := d.m.Metadata()
	if err != nil {
		return Acked{}, false
	}
	return Acked{stream: md.Stream, consumer: md.Consumer, seq: md.Sequence.Stream}, true
}
