package client

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
)

// PurgeInstance removes a finished instance: its status, its history and
// any messages still waiting for it. The id can then be used again. It
// fails with jetflow.ErrInstanceNotFound, or jetflow.ErrInstanceNotFinished
// while the instance is Pending, Running or Suspended (terminate it first).
// WithRecursivePurge purges its sub-orchestrations too; WithPurgeProgress
// does nothing here.
func (c *Client) PurgeInstance(ctx context.Context, id string, opts ...PurgeOption) error {
	if err := jetflow.ValidateInstanceID(id); err != nil {
		return err
	}
	var o purgeOptions
	for _, opt := range opts {
		opt(&o)
	}
	if !o.recursive {
		return c.purgeOne(ctx, id)
	}
	tree, err := c.finishedTree(ctx, id)
	if err != nil {
		return err
	}
	for _, sub := range tree {
		// Children before their parent: a purge cut short leaves the
		// parent, whose history still names what is left, for a retry.
		if err := c.purgeOne(ctx, sub); err != nil && (sub == id || !errors.Is(err, jetflow.ErrInstanceNotFound)) {
			return fmt.Errorf("purging %q, a sub-orchestration of %q: %w", sub, id, err)
		}
	}
	return nil
}

// purgeOne purges one finished instance.
func (c *Client) purgeOne(ctx context.Context, id string) error {
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

// finishedTree returns id and the sub-orchestrations its history shows it
// started, and theirs, depth first, each instance after its own
// sub-orchestrations. It fails, naming the instance, when one of them has
// not finished: a recursive purge removes nothing then. Sub-orchestrations
// already gone (purged) are left out.
func (c *Client) finishedTree(ctx context.Context, root string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var walk func(id string) error
	walk = func(id string) error {
		if seen[id] {
			return nil
		}
		seen[id] = true
		e, err := c.store.GetStatus(ctx, id)
		if errors.Is(err, storage.ErrNotFound) && id != root {
			return nil
		}
		if err != nil {
			return err
		}
		if !e.Status.Finished() {
			what := fmt.Sprintf("%q is %s", id, e.Status.RuntimeStatus)
			if id != root {
				what = fmt.Sprintf("its sub-orchestration %q is %s", id, e.Status.RuntimeStatus)
			}
			return fmt.Errorf("%w: %s; only finished instances can be purged, nothing was purged", jetflow.ErrInstanceNotFinished, what)
		}
		children, err := c.subOrchestrations(ctx, id)
		if err != nil {
			return err
		}
		for _, child := range children {
			if err := walk(child); err != nil {
				return err
			}
		}
		out = append(out, id)
		return nil
	}
	return out, walk(root)
}

// subOrchestrations lists the instance ids of the sub-orchestrations an
// instance's stored history shows it started, in order, once each.
func (c *Client) subOrchestrations(ctx context.Context, id string) ([]string, error) {
	chunks, err := c.store.LoadHistory(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	var ids []string
	for _, ch := range chunks {
		for _, e := range ch.Events {
			if e.Type == history.SubOrchestrationCreated && !slices.Contains(ids, e.InstanceID) {
				ids = append(ids, e.InstanceID)
			}
		}
	}
	return ids, nil
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
		err := c.PurgeInstance(ctx, st.InstanceID, opts...)
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

type purgeOptions struct {
	progress  func(PurgeProgress)
	recursive bool
}

// WithRecursivePurge has PurgeInstance and PurgeInstances purge the
// sub-orchestrations of each instance too (those its history shows it
// started, and theirs), depth first, as durabletask-go's
// api.WithRecursivePurge does. Every instance of the tree must have
// finished: otherwise the purge fails with jetflow.ErrInstanceNotFinished,
// naming the instance, and purges nothing. PurgeInstances counts the
// instances its query selected, not their sub-orchestrations.
func WithRecursivePurge() PurgeOption { return func(o *purgeOptions) { o.recursive = true } }

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
