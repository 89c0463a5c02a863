package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jetflow/jetflow"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// StatusEntry is a status with its KV revision.
type StatusEntry struct {
	Status   jetflow.Status
	Revision uint64
}

// GetStatus reads an instance's status; none is an error that is both
// ErrNotFound and jetflow.ErrInstanceNotFound. On a replicated hub it
// reads through the bucket's leader, so that it never misses a write
// acknowledged before.
func (s *Store) GetStatus(ctx context.Context, id string) (*StatusEntry, error) {
	began := time.Now()
	e, err := s.getStatus(ctx, id)
	s.observe(OpStatusRead, began, err)
	if errors.Is(err, ErrNotFound) {
		return nil, instanceNotFound(id)
	}
	return e, err
}

func (s *Store) getStatus(ctx context.Context, id string) (*StatusEntry, error) {
	if s.leaderReads {
		return s.leaderStatus(ctx, id)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	e, err := s.status.Get(ctx, s.names.StatusKey(id))
	if err != nil {
		return nil, mapErr("reading status of "+id, err)
	}
	return decodeStatus(e.Key(), e.Value(), e.Revision())
}

func (s *Store) leaderStatus(ctx context.Context, id string) (*StatusEntry, error) {
	key := s.names.StatusKey(id)
	m, err := s.leaderLast(ctx, s.names.StatusStream(), s.names.StatusSubject(id))
	if err != nil {
		return nil, mapErr("reading status of "+id, err)
	}
	if m.kvOperation() != "" {
		return nil, fmt.Errorf("reading status of %s: %w", id, ErrNotFound)
	}
	return decodeStatus(key, m.Data, m.Sequence)
}

// decodeStatus decodes the status JSON stored under key (an instance id
// or its encoded key, for the error) at revision rev.
func decodeStatus(key string, value []byte, rev uint64) (*StatusEntry, error) {
	var out StatusEntry
	if err := json.Unmarshal(value, &out.Status); err != nil {
		return nil, fmt.Errorf("status %q (revision %d) is not status JSON: %w", key, rev, err)
	}
	out.Revision = rev
	return &out, nil
}

// PutStatus writes an instance's status if its revision is still rev; rev 0
// means the key must not exist (or was deleted). It returns the new
// revision, or ErrConflict.
func (s *Store) PutStatus(ctx context.Context, id string, st *jetflow.Status, rev uint64) (newRev uint64, err error) {
	defer func(began time.Time) { s.observe(OpStatusPut, began, err) }(time.Now())
	out, err := s.StatusWrite(id, st, rev)
	if err != nil {
		return 0, err
	}
	res := s.publish(ctx, out)
	if rev == 0 && errors.Is(res[0].Err, ErrConflict) {
		// A deleted status leaves a delete marker as the key's last
		// message, which GetStatus reports as ErrNotFound: take its
		// revision as the one to replace, as KV Create does.
		if marker, ok := s.deletedStatus(ctx, id); ok {
			return s.PutStatus(ctx, id, st, marker)
		}
	}
	return res[0].Seq, res[0].Err
}

// deletedStatus returns the revision of the delete marker that is the
// status key's last message, if it is one.
func (s *Store) deletedStatus(ctx context.Context, id string) (uint64, bool) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	h, err := s.status.History(ctx, s.names.StatusKey(id))
	if err != nil || len(h) == 0 {
		return 0, false
	}
	last := h[len(h)-1]
	if last.Operation() == natsjs.KeyValuePut {
		return 0, false
	}
	return last.Revision(), true
}

// SetProgress merges an activity's progress report into an instance's
// status (compare-and-set, retried on conflict), unless the instance has
// finished or its status is gone.
func (s *Store) SetProgress(ctx context.Context, id string, p jetflow.ActivityProgress) error {
	for range 5 {
		cur, err := s.GetStatus(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.Status.Finished() {
			return nil
		}
		cur.Status.ActivityProgress = &p
		if _, err := s.PutStatus(ctx, id, &cur.Status, cur.Revision); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("writing the progress of %s: %w", id, ErrConflict)
}

// DeleteStatus removes an instance's status if its revision is still rev.
func (s *Store) DeleteStatus(ctx context.Context, id string, rev uint64) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return mapErr("deleting status of "+id, retryInProcess(ctx, func() error {
		return s.status.Purge(ctx, s.names.StatusKey(id), natsjs.LastRevision(rev))
	}))
}

// StatusWrite prepares a compare-and-set status write (see PutStatus) to
// send with Publish beside other messages.
func (s *Store) StatusWrite(id string, st *jetflow.Status, rev uint64) (Outgoing, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return Outgoing{}, fmt.Errorf("encoding status of %s: %w", id, err)
	}
	return Outgoing{
		subject:   s.names.StatusSubject(id),
		data:      data,
		expectRev: &rev,
		what:      "writing status of " + id,
	}, nil
}

// StatusUpdate is one change of an instance's status seen by a watch.
type StatusUpdate struct {
	StatusEntry
	// Deleted is set when the status was removed (purged). Only
	// Status.InstanceID and Revision are set then.
	Deleted bool
}

// WatchStatus sends the current status of the instance and then its
// changes, until ctx ends (the channel is then closed). The bucket keeps
// one value per instance, so a value replaced before the watch delivered
// it is skipped (a slow reader, or a watch served by a lagging node);
// what is sent is in revision order and ends with the instance's latest
// value, a terminal status or a purge never skipped. With fromRev > 0 it
// starts at that revision instead of the current value (see
// [Store.WatchStatuses] for what is sent then). Errors decoding a value are
// skipped.
func (s *Store) WatchStatus(ctx context.Context, id string, fromRev uint64) (<-chan StatusUpdate, error) {
	return s.watchStatus(ctx, s.names.StatusKey(id), "", fromRev)
}

// WatchStatuses sends the status of every instance whose id starts with
// prefix (every instance when prefix is empty), and then their changes,
// in revision order, until ctx ends (the channel is then closed). As in
// WatchStatus, a value replaced before the watch delivered it is skipped,
// never an instance's latest. Errors decoding a value are skipped.
//
// With fromRev 0 it starts with the current status of every such instance
// (instances whose status was deleted are not sent), then each change,
// deletions included.
//
// With fromRev > 0 it sends, from that revision on (inclusive), the
// status of every instance changed at or after it, at its latest value,
// then each change. The status bucket keeps one revision per key, so
// intermediate values written before the watch started are not sent,
// only the last one; but no instance changed at or after fromRev is
// missed, and none is sent twice for one revision. As a terminal status
// is an instance's last value, it is never missed. A watcher that saw
// revision r resumes with fromRev r+1. A fromRev beyond the bucket's next
// revision counts as 0 (see [Store.ResumeStatusRevision]).
//
// A key is one subject token and NATS wildcards match whole tokens only,
// so a prefix that is part of a token cannot be a server-side filter: the
// watch receives every key of the bucket and drops the other instances
// here.
func (s *Store) WatchStatuses(ctx context.Context, prefix string, fromRev uint64) (<-chan StatusUpdate, error) {
	return s.watchStatus(ctx, natsjs.AllKeys, prefix, fromRev)
}

// watchDrainTimeout bounds how long a stopped watch waits for nats.go's
// delivery goroutine to let go of its channel.
const watchDrainTimeout = 5 * time.Second

// watchStatus watches the status keys matching the subject filter keys,
// keeping the instances whose id starts with prefix.
func (s *Store) watchStatus(ctx context.Context, keys, prefix string, fromRev uint64) (<-chan StatusUpdate, error) {
	fromRev, err := s.ResumeStatusRevision(ctx, fromRev)
	if err != nil {
		return nil, err
	}
	var opts []natsjs.WatchOpt
	if fromRev > 0 {
		// Delivery by start sequence: every message of the stream from
		// fromRev on, that is the last value of each key changed since.
		opts = append(opts, natsjs.ResumeFromRevision(fromRev))
	}
	batches, err := s.follow(ctx, keys, opts...)
	if err != nil {
		return nil, err
	}
	out := make(chan StatusUpdate, 16)
	go func() {
		defer close(out)
		// Among the initial values, a delete marker is an instance that
		// no longer exists, not a change the watcher has to hear of;
		// unless it resumes. A batch holds initial values only when the
		// watch was not current before it (follow ends a batch where
		// they end).
		wasCurrent := false
		for b := range batches {
			initial := fromRev == 0 && !wasCurrent
			wasCurrent = b.Current
			for _, r := range b.Records {
				if !strings.HasPrefix(r.ID, prefix) {
					continue
				}
				var u StatusUpdate
				if r.Deleted {
					if initial {
						continue
					}
					u.Deleted, u.Revision, u.Status.InstanceID = true, r.Revision, r.ID
				} else {
					se, err := decodeStatus(r.ID, r.Value, r.Revision)
					if err != nil {
						continue
					}
					u.StatusEntry = *se
				}
				select {
				case out <- u:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// stopWatch stops a KV watch and drains its channel until nats.go closes
// it: its delivery goroutine blocks on a full channel (256 entries, e.g.
// during the initial values of a large bucket) and would otherwise never
// end.
func stopWatch(w natsjs.KeyWatcher) {
	_ = w.Stop()
	timeout := time.NewTimer(watchDrainTimeout)
	defer timeout.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-timeout.C:
			return
		}
	}
}
