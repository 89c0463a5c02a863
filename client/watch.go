package client

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
)

// Update is one status change seen by WatchStatus or WatchAll.
type Update struct {
	StatusEntry
	// Deleted is set when the instance's status was removed (the instance
	// was purged); only InstanceID and Revision are set then. WatchStatus
	// does not send these.
	Deleted bool
}

// StatusEntry is a status with its revision.
type StatusEntry struct {
	jetflow.Status
	// Revision is the status's KV revision: pass it to WatchStatus or
	// WatchAll to resume after it. Revisions grow with every write to the
	// hub's status bucket, across all instances.
	Revision uint64
}

// GetStatusWithRevision is GetStatus with the status's KV revision, the
// value to resume a watch after.
func (c *Client) GetStatusWithRevision(ctx context.Context, id string) (*StatusEntry, error) {
	if err := jetflow.ValidateInstanceID(id); err != nil {
		return nil, err
	}
	e, err := c.store.GetStatus(ctx, id)
	if err != nil {
		return nil, err
	}
	return &StatusEntry{Status: e.Status, Revision: e.Revision}, nil
}

// WatchStatus sends an instance's current status (when it has one) and
// then each change, and closes the channel after the instance finishes or
// when ctx ends. The bucket keeps one value per instance: a value replaced
// before the watch delivered it (a reader that falls behind, a watch
// served by a lagging cluster node) is skipped, never the latest, and
// never a terminal status; updates come in revision order.
//
// With fromRevision > 0 it resumes after that revision (the Revision of
// the last update the caller saw): it sends the instance's status if it
// changed after fromRevision (at its latest value: the bucket keeps one
// value per instance, so intermediate values may be skipped, but a
// terminal status never is) and then each change. When the instance had
// already finished at fromRevision or before, the channel is closed at
// once. A fromRevision the hub's status bucket has not reached (see
// ResumeRevision) counts as 0.
func (c *Client) WatchStatus(ctx context.Context, id string, fromRevision uint64) (<-chan Update, error) {
	if err := jetflow.ValidateInstanceID(id); err != nil {
		return nil, err
	}
	fromRevision, err := c.ResumeRevision(ctx, fromRevision)
	if err != nil {
		return nil, err
	}
	start := uint64(0)
	if fromRevision > 0 {
		// The caller saw the terminal status: nothing will follow it, and
		// a watch from the next revision would wait for ever.
		e, err := c.store.GetStatus(ctx, id)
		switch {
		case err == nil && e.Status.Finished() && e.Revision <= fromRevision:
			out := make(chan Update)
			close(out)
			return out, nil
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return nil, err
		}
		start = nextRevision(fromRevision)
	}
	return c.relay(ctx, func(ctx context.Context) (<-chan storage.StatusUpdate, error) {
		return c.store.WatchStatus(ctx, id, start)
	}, func(u *storage.StatusUpdate) (send, last bool) {
		return !u.Deleted, !u.Deleted && u.Status.Finished()
	})
}

// relay runs a store watch and forwards its updates as client Updates:
// pick says which to send and after which to stop. The watch ends with ctx
// or when relay stops; while it runs, the store's metrics count it.
func (c *Client) relay(ctx context.Context, watch func(context.Context) (<-chan storage.StatusUpdate, error),
	pick func(*storage.StatusUpdate) (send, last bool)) (<-chan Update, error) {
	ctx, cancel := context.WithCancel(ctx)
	in, err := watch(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan Update, 16)
	ended := c.store.WatchStarted(ctx, storage.WatchGo)
	go func() {
		defer close(out)
		defer cancel()
		defer ended()
		for u := range in {
			send, last := pick(&u)
			if send {
				select {
				case out <- Update{StatusEntry: StatusEntry{Status: u.Status, Revision: u.Revision}, Deleted: u.Deleted}:
				case <-ctx.Done():
					return
				}
			}
			if last {
				return
			}
		}
	}()
	return out, nil
}

// WatchFilter selects the instances and updates WatchAll sends. The zero
// value selects everything.
type WatchFilter struct {
	// InstanceIDPrefix keeps the instances whose id starts with it
	// (case-sensitive). Empty: every instance.
	InstanceIDPrefix string
	// RuntimeStatus keeps the updates whose runtime status is one of
	// these. Empty: every update. The filter applies to each update on its
	// own: an instance that leaves the selected statuses is not announced.
	// Deletions (Update.Deleted) have no status and are always kept.
	RuntimeStatus []jetflow.RuntimeStatus
}

// validate checks the filter: the prefix follows the rules of instance ids
// (but may be empty), the statuses are known.
func (f WatchFilter) validate() error {
	if f.InstanceIDPrefix != "" {
		if err := jetflow.ValidateInstanceID(f.InstanceIDPrefix); err != nil {
			return fmt.Errorf("instance id prefix: %w", err)
		}
	}
	for _, s := range f.RuntimeStatus {
		if !s.Valid() {
			return fmt.Errorf("%w: unknown runtime status %q", jetflow.ErrInvalidOption, s)
		}
	}
	return nil
}

// WatchAll follows many instances: it sends the current status of every
// instance the filter selects, then each change of them, in revision
// order, until ctx ends; it does not stop at terminal statuses. It fails
// with jetflow.ErrInvalidInstanceID for a prefix no id could have and
// jetflow.ErrInvalidOption for an unknown runtime status.
//
// With fromRevision > 0 it resumes after that revision (the Revision of
// the last update the caller saw, of any instance): it sends every
// selected instance whose status changed after fromRevision, at its latest
// value, then each change. No instance changed after fromRevision is
// missed and no revision is sent twice; the status bucket keeps one value
// per instance, so intermediate values written while nobody watched are
// skipped, but a terminal status, being an instance's last value, never
// is. Deletions are sent when resuming and once watching, but not as
// "current values" when fromRevision is 0, or beyond the hub's last
// revision (see ResumeRevision), which counts as 0.
//
// The prefix cannot be a server-side filter (a key is one subject token
// and NATS wildcards match whole tokens): the watch receives every status
// of the hub and drops the others in this process.
func (c *Client) WatchAll(ctx context.Context, f WatchFilter, fromRevision uint64) (<-chan Update, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	keep := map[jetflow.RuntimeStatus]bool{}
	for _, s := range f.RuntimeStatus {
		keep[s] = true
	}
	start := uint64(0)
	if fromRevision > 0 {
		start = nextRevision(fromRevision) // the store starts afresh beyond its last revision
	}
	return c.relay(ctx, func(ctx context.Context) (<-chan storage.StatusUpdate, error) {
		return c.store.WatchStatuses(ctx, f.InstanceIDPrefix, start)
	}, func(u *storage.StatusUpdate) (send, last bool) {
		return len(keep) == 0 || u.Deleted || keep[u.Status.RuntimeStatus], false
	})
}

// ResumeRevision returns the revision that a watch asked to resume after
// after (the Revision of the last Update seen) resumes after: after itself
// when the hub's status bucket has reached it, else 0, which makes it a
// fresh watch (the current values, then each change). A revision the
// bucket has not reached comes from before the hub was restored from a
// backup or recreated; a watch after it would wait in silence. WatchStatus
// and WatchAll apply it themselves: call it to decide something from the
// revision before watching (as whether the caller saw an instance's
// terminal status).
func (c *Client) ResumeRevision(ctx context.Context, after uint64) (uint64, error) {
	if after == 0 {
		return 0, nil
	}
	start, err := c.store.ResumeStatusRevision(ctx, nextRevision(after))
	if err != nil || start == 0 {
		return 0, err
	}
	return after, nil
}

// nextRevision is the revision after rev, the store watches' start after
// a caller saw rev. The largest revision stays itself: it has no next, and
// it must not wrap around to 0, which means "from the current values".
func nextRevision(rev uint64) uint64 {
	if rev == math.MaxUint64 {
		return rev
	}
	return rev + 1
}
