package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// PurgeInstance removes everything stored for an instance whose status is
// at revision statusRev: its status, its history chunks, and its messages
// waiting in the inbox (events, commands, timers not yet fired). It fails
// with ErrConflict, removing nothing, if the status moved on (the instance
// was restarted or purged meanwhile).
//
// A purge and a restart of the same id may race: the status is removed
// first, by compare-and-set, and only what was stored before that is
// removed after it, so a run started once the status is gone keeps its
// history and messages.
func (s *Store) PurgeInstance(ctx context.Context, id string, statusRev uint64) (err error) {
	defer func(began time.Time) { s.observe(OpPurge, began, err) }(time.Now())
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	p := s.names.Partition(id)
	hist, err := s.js.Stream(ctx, s.names.HistoryStream(p))
	if err != nil {
		return mapErr("purging "+id, err)
	}
	// The streams' last sequences before the status goes: what is stored up
	// to them belongs to the purged run (a finished instance gets no new
	// chunks or messages until it is started again, which needs the status
	// gone first).
	histLast, err := lastSeq(ctx, hist)
	if err != nil {
		return mapErr("purging "+id, err)
	}
	orchLast, err := lastSeq(ctx, s.orch[p])
	if err != nil {
		return mapErr("purging "+id, err)
	}
	var opts []natsjs.KVDeleteOpt
	if s.statusMarkerTTL > 0 {
		// The purge marker tells live watchers; it expires, leaving nothing.
		opts = append(opts, natsjs.PurgeTTL(s.statusMarkerTTL))
	}
	if err := retryInProcess(ctx, func() error {
		return s.status.Purge(ctx, s.names.StatusKey(id), append(opts, natsjs.LastRevision(statusRev))...)
	}); err != nil {
		return mapErr("purging the status of "+id, err)
	}
	var errs []error
	purge := func(st natsjs.Stream, subject string, last uint64) {
		if err := st.Purge(ctx, natsjs.WithPurgeSubject(subject), natsjs.WithPurgeSequence(last+1)); err != nil {
			errs = append(errs, fmt.Errorf("purging %s: %w", subject, err))
		}
	}
	purge(hist, s.names.HistorySubjects(id), histLast)
	purge(s.orch[p], s.names.InstanceInboxFilter(id), orchLast)
	purge(s.orch[p], s.names.TimerFilter(id), orchLast)
	return mapErr("purging "+id, errors.Join(errs...))
}

func lastSeq(ctx context.Context, st natsjs.Stream) (uint64, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}
