package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
)

// PurgeInstance removes a finished instance: its status, its history and
// any messages still waiting for it. The id can then be used again. It
// fails with jetflow.ErrInstanceNotFound, or jetflow.ErrInstanceNotFinished
// while the instance is Pending, Running or Suspended (terminate it first).
func (c *Client) PurgeInstance(ctx context.Context, id string) error {
	if err := jetflow.ValidateInstanceID(id); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		e, err := c.store.GetStatus(ctx, id)
		if err != nil {
			return err
		}
		if !e.Status.Finished() {
			return fmt.Errorf("%w: %q is %s; only a finished instance can be purged (terminate it first)",
				jetflow.ErrInstanceNotFinished, id, e.Status.RuntimeStatus)
		}
		err = c.store.PurgeInstance(ctx, id, e.Revision)
		if !errors.Is(err, storage.ErrConflict) || attempt == 2 {
			return err
		}
		// The status moved between the read and the purge (a late status
		// write, or a restart): look again.
	}
}

// PurgeInstances purges the finished instances (Completed, Failed,
// Terminated, Canceled) that q selects (its paging fields are ignored) and
// returns how many it purged; instances that have not finished are left
// alone, as are those that change while being purged. Durable Functions
// requires a lower bound on the creation time for this call; so does the
// HTTP API, but not this method. WithPurgeProgress reports how far it has
// got.
func (c *Client) PurgeInstances(ctx context.Context, q Query, opts ...PurgeOption) (int, error) {
	var o purgeOptions
	for _, opt := range opts {
		opt(&o)
	}
	q.Top, q.ContinuationToken, q.OmitInput = MaxPageSize, "", true
	p := PurgeProgress{}
	if o.progress != nil {
		total, err := c.countFinished(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("counting the instances to purge: %w", err)
		}
		p.Total = total
		o.progress(p)
	}
	for st, err := range c.ListAll(ctx, q) {
		if err != nil {
			return p.Purged, err
		}
		if !st.Finished() {
			continue
		}
		err := c.PurgeInstance(ctx, st.InstanceID)
		switch {
		case err == nil:
			p.Purged++
			if o.progress != nil {
				o.progress(p)
			}
		case errors.Is(err, jetflow.ErrInstanceNotFound), errors.Is(err, jetflow.ErrInstanceNotFinished):
			// purged or restarted meanwhile
		default:
			return p.Purged, err
		}
	}
	return p.Purged, nil
}

// PurgeOption configures PurgeInstances.
type PurgeOption func(*purgeOptions)

type purgeOptions struct{ progress func(PurgeProgress) }

// PurgeProgress is how far PurgeInstances has got, as WithPurgeProgress
// reports it.
type PurgeProgress struct {
	// Total is how many finished instances the query selected when the
	// purge started. Instances that finish, are restarted or are purged by
	// someone else meanwhile can make the final Purged more or less.
	Total int
	// Purged is how many instances have been purged so far.
	Purged int
}

// WithPurgeProgress has PurgeInstances call fn with its progress: once
// when it has counted the instances to purge, before purging any (Purged
// is 0), then after each instance it purges. fn is called on the
// goroutine that called PurgeInstances, which waits for it, so it should
// return quickly; it may cancel the purge's context to stop it. The count
// is read from the client's instance index (as ListInstances reads it),
// without reading the statuses. A nil fn reports nothing.
func WithPurgeProgress(fn func(PurgeProgress)) PurgeOption {
	return func(o *purgeOptions) { o.progress = fn }
}

// countFinished counts the finished instances q selects, from the index
// once it has caught up with the bucket, a page of the index at a time
// (so that lists go on meanwhile).
func (c *Client) countFinished(ctx context.Context, q Query) (int, error) {
	lq, err := q.compile()
	if err != nil {
		return 0, err
	}
	if lq.statuses == 0 {
		lq.statuses = ^uint16(0)
	}
	lq.statuses &= finishedStatuses
	if lq.statuses == 0 {
		return 0, nil // only statuses that are never purged
	}
	x, err := c.instanceIndex()
	if err != nil {
		return 0, err
	}
	if err := c.catchUp(ctx, x); err != nil {
		return 0, err
	}
	n := 0
	for {
		entries, more := x.page(lq)
		n += len(entries)
		if !more {
			return n, nil
		}
		lq.after = entries[len(entries)-1].id
	}
}

// finishedStatuses is the listQuery.statuses mask of the finished runtime
// statuses.
var finishedStatuses = func() uint16 {
	var m uint16
	for _, s := range jetflow.RuntimeStatuses {
		if s.IsTerminal() {
			m |= 1 << statusCode(s)
		}
	}
	return m
}()
