package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetflow/jetflow/internal/history"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// LoadHistory reads every stored chunk of an instance, in chunk order.
// An instance without history gives an empty slice. On a replicated hub,
// the watch that reads the chunks may be served by a lagging replica: the
// last chunk is then checked with the bucket's leader, and the history
// read again until it is complete.
func (s *Store) LoadHistory(ctx context.Context, id string) (chunks []Chunk, err error) {
	return s.LoadHistoryFrom(ctx, id, 0)
}

// LoadHistoryFrom reads the chunks of an instance stored at revision rev
// or after it, in chunk order: what a worker whose state of the instance
// ends with the chunk stored at rev needs to catch up with the chunks
// other workers committed since. The first chunk returned is that one
// while it is still stored (a purge, or a trim of an execution that
// continued as new, may have removed it; the caller then reads the whole
// history). Its cost is that of the chunks from rev on, however long the
// history before them. Revision 0 reads the whole history, as
// LoadHistory.
func (s *Store) LoadHistoryFrom(ctx context.Context, id string, rev uint64) (chunks []Chunk, err error) {
	defer func(began time.Time) { s.observe(OpHistoryLoad, began, err) }(time.Now())
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	for {
		chunks, err := s.loadHistory(ctx, id, rev)
		if err != nil || !s.leaderReads {
			return chunks, err
		}
		var have uint64
		if len(chunks) > 0 {
			have = chunks[len(chunks)-1].Revision
		}
		last, err := s.leaderLast(ctx, s.historyStream(id), s.names.HistorySubjects(id))
		switch {
		case errors.Is(err, ErrNotFound):
			return chunks, nil // purged meanwhile, or never written
		case err != nil:
			return nil, mapErr("loading history of "+id, err)
		case last.Sequence <= have:
			return chunks, nil
		}
		select { // a replica that lags: read again
		case <-ctx.Done():
			return nil, fmt.Errorf("loading history of %s: the history read stays behind revision %d: %w", id, last.Sequence, ctx.Err())
		case <-time.After(loadRetryWait):
		}
	}
}

// historyBatch is how many chunks one direct get of loadHistory asks for
// when it reads them in stream order.
const historyBatch = 1000

// maxDirectAnswers is the most messages the server answers one batched or
// multi-last direct get with, before its end-of-batch status: its limit
// for multi-last reads (1,024), above historyBatch.
const maxDirectAnswers = 1024

// errTooManyChunks: a history has more chunk keys than one multi-last
// direct get answers (the server's limit is 1,024 subjects).
var errTooManyChunks = errors.New("too many chunks for one multi-last read")

// loadHistory reads an instance's chunks with direct gets of the last
// message of each of its chunk keys ("multi_last": the server finds them
// in its subject index, without scanning the stream), and, for a history
// of more keys than one such request answers, with batched gets in stream
// order. (A KV watch would create and delete an ordered consumer for every
// load, which also scans the stream from its start for the instance's
// first chunk.) From a revision (from > 0), it reads in stream order from
// there. Any replica may answer: LoadHistoryFrom checks the result
// against the leader.
func (s *Store) loadHistory(ctx context.Context, id string, from uint64) ([]Chunk, error) {
	// A channel that holds one batch of answers (the server sends at most
	// maxDirectAnswers and its end-of-batch status per request, and the
	// next request goes only once those are read): SubscribeSync's would
	// hold the connection's SubChanLen (65,536 by default), half a
	// megabyte made and cleared for every load.
	answers := make(chan *nats.Msg, maxDirectAnswers+1)
	sub, err := s.nc.ChanSubscribe(s.nc.NewInbox(), answers)
	if err != nil {
		return nil, mapErr("loading history of "+id, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	filter := s.names.HistorySubjects(id)
	type request struct {
		Seq       uint64   `json:"seq,omitempty"`
		NextFor   string   `json:"next_by_subj,omitempty"`
		Batch     int      `json:"batch,omitempty"`
		MultiLast []string `json:"multi_last,omitempty"`
	}
	read := func(next func(seq uint64) request) ([]Chunk, error) {
		var chunks []Chunk
		for seq := uint64(0); ; {
			req, err := json.Marshal(next(seq))
			if err != nil {
				return nil, err
			}
			if err := s.nc.PublishRequest(directGetSubject(s.historyStream(id)), sub.Subject, req); err != nil {
				return nil, mapErr("loading history of "+id, err)
			}
			more, last, err := s.readHistoryBatch(ctx, answers, &chunks)
			if err != nil {
				return nil, err
			}
			if !more {
				// Sequence order is chunk order (a chunk is only written over
				// the last); sorted anyway, so that nothing rests on that.
				slices.SortFunc(chunks, func(a, b Chunk) int { return int(a.Number) - int(b.Number) })
				return chunks, nil
			}
			seq = last + 1
		}
	}
	inOrder := func(seq uint64) request { return request{Seq: max(seq, from, 1), NextFor: filter, Batch: historyBatch} }
	var chunks []Chunk
	if from == 0 {
		chunks, err = read(func(seq uint64) request { return request{Seq: seq, MultiLast: []string{filter}} })
	}
	if from > 0 || errors.Is(err, errTooManyChunks) {
		chunks, err = read(inOrder)
	}
	if err != nil {
		return nil, fmt.Errorf("loading history of %s: %w", id, err)
	}
	return chunks, nil
}

// readHistoryBatch reads the answers to one batched direct get into
// chunks, and reports whether more chunks follow the last one read, and
// that one's sequence.
func (s *Store) readHistoryBatch(ctx context.Context, answers <-chan *nats.Msg, chunks *[]Chunk) (more bool, last uint64, err error) {
	for {
		var m *nats.Msg
		select {
		case m = <-answers:
		case <-ctx.Done():
			return false, 0, mapErr("reading history chunks", ctx.Err())
		}
		switch m.Header.Get("Status") {
		case "404": // nothing (more) stored under the subjects
			return false, last, nil
		case "413":
			return false, 0, errTooManyChunks
		case "204": // end of batch
			pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return pending > 0 && last > 0, last, nil
		case "":
		default:
			return false, 0, fmt.Errorf("direct get: %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return false, 0, fmt.Errorf("a stored message of %q without its sequence", m.Header.Get("Nats-Subject"))
		}
		last = seq
		if op := m.Header.Get("KV-Operation"); op != "" {
			continue // a delete or purge marker: no chunk
		}
		c, err := decodeChunk(m.Header.Get("Nats-Subject"), m.Data)
		if err != nil {
			return false, 0, err
		}
		c.Revision = seq
		*chunks = append(*chunks, c)
	}
}

func decodeChunk(key string, value []byte) (Chunk, error) {
	var c Chunk
	i := strings.LastIndexByte(key, '.')
	n, err := strconv.ParseUint(key[i+1:], 10, 32)
	if i < 0 || err != nil {
		return c, fmt.Errorf("history key %q has no chunk number", key)
	}
	if err := decode(value, &c); err != nil {
		return c, fmt.Errorf("history chunk %q: %w", key, err)
	}
	c.Number = uint32(n)
	return c, nil
}

// AppendChunk stores chunk number n of an instance's history, only if the
// last chunk stored for the instance is still the one at revision prev (0:
// the instance has no history). This compare-and-set is the fence that
// lets one writer extend a history: ErrConflict when another got there
// first. It covers every chunk key of the instance at once, so a writer
// holding an old view loses even after the history was purged and begun
// again with fewer chunks. custom, when set, is the custom status the
// turn left (Chunk.CustomStatus). It returns the new chunk's revision.
func (s *Store) AppendChunk(ctx context.Context, id string, n uint32, prev uint64, events []history.Event, custom json.RawMessage) (rev uint64, err error) {
	defer func(began time.Time) { s.observe(OpHistoryAppend, began, err) }(time.Now())
	data, err := encode(&Chunk{Events: events, CustomStatus: custom})
	if err != nil {
		return 0, err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	msg := &nats.Msg{Subject: s.names.HistorySubject(id, n), Data: data}
	var ack *natsjs.PubAck
	err = retryInProcess(ctx, func() (err error) {
		ack, err = s.js.PublishMsg(ctx, msg, natsjs.WithExpectLastSequenceForSubject(prev, s.names.HistorySubjects(id)))
		return err
	})
	if err != nil {
		return 0, mapErr(fmt.Sprintf("writing history chunk %d of %s", n, id), err)
	}
	return ack.Sequence, nil
}

// historyStream is the stream of the history bucket that holds an
// instance's chunks.
func (s *Store) historyStream(id string) string { return s.names.HistoryStream(s.names.Partition(id)) }

// ChunkSize is the encoded size of a history chunk holding events and
// custom, as AppendChunk stores it.
func ChunkSize(events []history.Event, custom json.RawMessage) (int, error) {
	data, err := encode(&Chunk{Events: events, CustomStatus: custom})
	return len(data), err
}

// ChunkExists reports whether chunk n of an instance is stored (asking the
// bucket's leader on a replicated hub).
func (s *Store) ChunkExists(ctx context.Context, id string, n uint32) (bool, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var err error
	if s.leaderReads {
		_, err = s.leaderLast(ctx, s.historyStream(id), s.names.HistorySubject(id, n))
	} else {
		_, err = s.history[s.names.Partition(id)].Get(ctx, s.names.HistoryKey(id, n))
	}
	if errors.Is(err, natsjs.ErrKeyNotFound) || errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, mapErr("reading history chunk", err)
	}
	return true, nil
}

// TrimHistory removes an instance's chunks stored before revision keep:
// those of executions that ended by continue-as-new (chunk numbers only
// grow, so the removed keys are never created again), or all of them when
// the instance was purged while a worker committed to it (keep is then
// one past that worker's last chunk).
func (s *Store) TrimHistory(ctx context.Context, id string, keep uint64) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	st, err := s.js.Stream(ctx, s.historyStream(id))
	if err != nil {
		return mapErr("trimming history", err)
	}
	err = st.Purge(ctx, natsjs.WithPurgeSubject(s.names.HistorySubjects(id)), natsjs.WithPurgeSequence(keep))
	return mapErr("trimming history of "+id, err)
}

// maxInboxScan bounds how many of an instance's stored inbox messages
// InboxMessageIDs reads.
const maxInboxScan = 1000

// InboxMessageIDs returns the message ids of an instance's messages
// stored in the inbox: those not yet acknowledged, and those acknowledged
// that PurgeAcked has not removed yet. A message that is not among them
// can never be delivered again. ok is false, with the ids read so far,
// when the instance has more than maxInboxScan stored messages (the
// caller decides as if they were all pending). On a replicated hub the
// stream's leader answers, so a message acknowledged and removed is
// never reported stored and then seen again.
func (s *Store) InboxMessageIDs(ctx context.Context, id string) (ids []string, ok bool, err error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	filter := s.names.InstanceInboxFilter(id)
	for seq := uint64(1); len(ids) < maxInboxScan; {
		m, err := s.orch[s.names.Partition(id)].GetMsg(ctx, seq, natsjs.WithGetMsgSubject(filter))
		if errors.Is(err, natsjs.ErrMsgNotFound) {
			return ids, true, nil
		}
		if err != nil {
			return ids, false, mapErr("reading the inbox of "+id, err)
		}
		ids = append(ids, m.Header.Get(nats.MsgIdHdr))
		seq = m.Sequence + 1
	}
	return ids, false, nil
}
