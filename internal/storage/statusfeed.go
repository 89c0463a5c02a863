package storage

import (
	"context"
	"errors"
	"fmt"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// StatusRecord is one message of the status bucket as [Store.FollowStatuses]
// delivers it: an instance's status JSON as stored, or its removal.
type StatusRecord struct {
	// ID is the instance id (the decoded key).
	ID string
	// Revision is the message's KV revision (its stream sequence).
	Revision uint64
	// Deleted is set for a delete or purge marker: the instance has no
	// status any more. Value is nil then.
	Deleted bool
	// Value is the status JSON as stored. It shares the message's buffer:
	// copy what you keep.
	Value []byte
}

// StatusBatch is what [Store.FollowStatuses] sends: records in revision
// order.
type StatusBatch struct {
	Records []StatusRecord
	// Revision is the highest revision the watch has delivered so far,
	// this batch included; keys that are not instance ids, and so have no
	// record, count too.
	Revision uint64
	// Current is set once every value the bucket held when the watch
	// started has been delivered (on this batch or an earlier one).
	Current bool
}

// maxStatusBatch bounds the records of one StatusBatch.
const maxStatusBatch = 1024

// FollowStatuses watches the whole status bucket: the current status of
// every instance as raw JSON, then every change, deletions and purges
// included, in revision order, gathered in batches of what has arrived,
// until ctx ends (the channel is then closed; it is also closed if the
// watch ends, e.g. with the connection). Unlike [Store.WatchStatuses] it
// decodes no values and drops nothing, so that a caller can keep a copy of
// the bucket and know how far it has read it.
func (s *Store) FollowStatuses(ctx context.Context) (<-chan StatusBatch, error) {
	return s.follow(ctx, natsjs.AllKeys)
}

// follow is the one loop under every status watch: it watches the status
// keys matching the subject filter keys and sends what arrives in
// batches. A batch ends where the initial values end, so that each batch
// is made of initial values only or of changes only.
func (s *Store) follow(ctx context.Context, keys string, opts ...natsjs.WatchOpt) (<-chan StatusBatch, error) {
	w, err := s.status.Watch(ctx, keys, opts...)
	if err != nil {
		return nil, mapErr("watching status", err)
	}
	out := make(chan StatusBatch, 4)
	go func() {
		defer close(out)
		defer stopWatch(w)
		var rev uint64
		current := false
		// add adds e to b and tells whether b is complete: e ends the
		// initial values.
		add := func(b *StatusBatch, e natsjs.KeyValueEntry) bool {
			if e == nil {
				current = true
				return true
			}
			rev = max(rev, e.Revision())
			id, err := DecodeToken(e.Key())
			if err != nil {
				return false // not an instance's key
			}
			r := StatusRecord{ID: id, Revision: e.Revision()}
			if e.Operation() == natsjs.KeyValuePut {
				r.Value = e.Value()
			} else {
				r.Deleted = true
			}
			b.Records = append(b.Records, r)
			return false
		}
		for {
			var b StatusBatch
			var full bool
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				full = add(&b, e)
			}
			open := true
		more:
			for open && !full && len(b.Records) < maxStatusBatch {
				select {
				case e, ok := <-w.Updates():
					if !ok {
						open = false
						break more
					}
					full = add(&b, e)
				default:
					break more
				}
			}
			b.Revision, b.Current = rev, current
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
			if !open {
				return
			}
		}
	}()
	return out, nil
}

// LastStatusRevision returns the revision of the last message written to
// the status bucket (0 if none): a watch that has delivered it has seen
// every write made before the call. That message may be gone (a purge
// marker whose TTL ran out, say), and then no watch delivers it: see
// [Store.NextStatusRevision].
func (s *Store) LastStatusRevision(ctx context.Context) (uint64, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	st, err := s.status.Status(ctx)
	if err != nil {
		return 0, mapErr("reading the status bucket", err)
	}
	kvs, ok := st.(*natsjs.KeyValueBucketStatus)
	if !ok || kvs.StreamInfo() == nil {
		return 0, fmt.Errorf("reading the status bucket: no stream info in %T", st)
	}
	return kvs.StreamInfo().State.LastSeq, nil
}

// NextStatusRevision returns the revision of the first message the status
// bucket still holds at or after rev, and false when it holds none.
func (s *Store) NextStatusRevision(ctx context.Context, rev uint64) (uint64, bool, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	st, err := s.js.Stream(ctx, s.names.StatusStream())
	if err != nil {
		return 0, false, mapErr("reading the status bucket", err)
	}
	m, err := st.GetMsg(ctx, max(rev, 1), natsjs.WithGetMsgSubject(s.names.StatusSubjects()))
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, mapErr("reading the status bucket", err)
	}
	return m.Sequence, true, nil
}

// ResumeStatusRevision returns the revision at which a status watch asked
// to start at fromRev (inclusive, as [Store.WatchStatuses] takes it)
// starts: fromRev itself while the bucket has reached it or writes it next
// (fromRev <= last revision + 1), else 0. A revision beyond that is not one
// of this bucket's: a client kept it from before the hub was restored from
// a backup or recreated, and a watch from it would be silent until the
// bucket caught up (for ever, from the largest revisions). 0 makes it a
// fresh watch instead: every current value, then each change. The status
// watches call it themselves; a caller that decides something from the
// revision before watching calls it too.
func (s *Store) ResumeStatusRevision(ctx context.Context, fromRev uint64) (uint64, error) {
	if fromRev <= 1 {
		return fromRev, nil // from the current values, or from the first revision
	}
	last, err := s.LastStatusRevision(ctx)
	if err != nil {
		return 0, err
	}
	if fromRev-1 > last {
		return 0, nil
	}
	return fromRev, nil
}
