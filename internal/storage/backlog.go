package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// ConsumerBacklog is what one orchestrator's or activity's consumer has
// not yet done, as the server counts it: what waits in the stream for a
// worker, and what workers hold.
type ConsumerBacklog struct {
	// Consumer is the durable consumer's name (Names.InboxConsumer or
	// Names.TaskConsumer).
	Consumer string
	// Kind is KindOrchestrator or KindActivity.
	Kind string
	// Name is the orchestrator's or activity's name, decoded from the
	// consumer's name; for a name too long to be spelled out in it (see
	// Names.InboxConsumer) it is the consumer name's shortened token.
	Name string
	// Pending is how many messages match the consumer and were never
	// delivered: the backlog.
	Pending uint64
	// AckPending is how many messages were delivered and not yet
	// acknowledged: the work in progress (leases kept by workers).
	AckPending int
	// Redelivered is how many of those were delivered more than once.
	Redelivered int
	// WaitingPulls is how many pull requests wait on the consumer: zero
	// with a backlog means that no worker serves the name.
	WaitingPulls int
	// OldestStored is when the oldest message not yet delivered was
	// stored; zero when Pending is 0 (or the message went meanwhile).
	OldestStored time.Time
}

// Backlog reads the consumer info of every orchestrator and activity
// consumer of the hub and, for those with a backlog, when its oldest
// undelivered message was stored (the message after the consumer's last
// delivered stream sequence that matches its filter). On a hub of several
// partitions a name's consumers (one per partition) are added up into one.
// Consumers of the inbox and task streams that are not the hub's (another
// tool's) are left out. An error leaves out what it prevented and is
// returned with what was read.
func (s *Store) Backlog(ctx context.Context) ([]ConsumerBacklog, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out []ConsumerBacklog
	at := map[string]int{} // consumer name -> its index in out
	var errs []error
	type source struct {
		st     natsjs.Stream
		kind   string
		prefix string
	}
	var sources []source
	for p := range s.names.Partitions() {
		sources = append(sources, source{s.orch[p], KindOrchestrator, orchPrefix}, source{s.act[p], KindActivity, actPrefix})
	}
	for _, src := range sources {
		lister := src.st.ListConsumers(ctx)
		for ci := range lister.Info() {
			token, ok := strings.CutPrefix(ci.Name, src.prefix)
			if !ok || ci.Config.Durable == "" {
				continue
			}
			name, err := DecodeToken(token)
			if err != nil {
				name = token // shortened: the name is not in it
			}
			b := ConsumerBacklog{
				Consumer:     ci.Name,
				Kind:         src.kind,
				Name:         name,
				Pending:      ci.NumPending,
				AckPending:   ci.NumAckPending,
				Redelivered:  ci.NumRedelivered,
				WaitingPulls: ci.NumWaiting,
			}
			if b.Pending > 0 && ci.Config.FilterSubject != "" {
				m, err := src.st.GetMsg(ctx, ci.Delivered.Stream+1, natsjs.WithGetMsgSubject(ci.Config.FilterSubject))
				switch {
				case err == nil:
					b.OldestStored = m.Time
				case !errors.Is(err, natsjs.ErrMsgNotFound):
					errs = append(errs, mapErr(fmt.Sprintf("reading the oldest undelivered message of %s", ci.Name), err))
				}
			}
			i, seen := at[b.Consumer]
			if !seen {
				at[b.Consumer] = len(out)
				out = append(out, b)
				continue
			}
			out[i].add(b) // the same consumer on another partition
		}
		if err := lister.Err(); err != nil {
			errs = append(errs, mapErr("listing the consumers of "+src.st.CachedInfo().Config.Name, err))
		}
	}
	return out, errors.Join(errs...)
}

// add adds the backlog of the same consumer on another partition.
func (b *ConsumerBacklog) add(o ConsumerBacklog) {
	b.Pending += o.Pending
	b.AckPending += o.AckPending
	b.Redelivered += o.Redelivered
	b.WaitingPulls += o.WaitingPulls
	if !o.OldestStored.IsZero() && (b.OldestStored.IsZero() || o.OldestStored.Before(b.OldestStored)) {
		b.OldestStored = o.OldestStored
	}
}
