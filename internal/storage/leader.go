package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Reads on replicated streams.
//
// KV reads (direct gets) and watches (ordered consumers) may be served by
// any replica of a stream, including a follower that has not applied the
// latest writes yet: on an R3 hub, a status or history read right after a
// write may miss it. Where a decision depends on the latest value (a
// worker's view of an instance), reads go to the stream leader, which has
// stored every write it acknowledged. On R1 the only server is the leader,
// and reads stay as they are.

// leaderMsg is a stream message read through the stream leader.
type leaderMsg struct {
	Subject  string `json:"subject"`
	Sequence uint64 `json:"seq"`
	Header   []byte `json:"hdrs,omitempty"`
	Data     []byte `json:"data,omitempty"`
}

// errNoMessage: nothing is stored under the subject.
var errNoMessage = fmt.Errorf("no message: %w", ErrNotFound)

// leaderLast reads the last message stored under subject (wildcards
// allowed) in stream, through the stream's leader (the JetStream API's
// message get, which only the leader answers; direct gets may be answered
// by any replica).
func (s *Store) leaderLast(ctx context.Context, stream, subject string) (*leaderMsg, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return nil, err
	}
	msg, err := s.nc.RequestWithContext(ctx, msgGetSubject(stream), req)
	if err != nil {
		return nil, fmt.Errorf("reading the last message of %s: %w", subject, err)
	}
	var resp struct {
		Message *leaderMsg `json:"message"`
		Error   *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("reading the last message of %s: %w", subject, err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404 && resp.Error.ErrCode == 10037: // no message found
		return nil, errNoMessage
	case resp.Error != nil:
		return nil, fmt.Errorf("reading the last message of %s: %s (%d)", subject, resp.Error.Description, resp.Error.ErrCode)
	case resp.Message == nil:
		return nil, fmt.Errorf("reading the last message of %s: empty answer", subject)
	}
	return resp.Message, nil
}

// kvOperation returns the KV operation header of a stored message ("" for
// a put, "DEL" or "PURGE" for markers).
func (m *leaderMsg) kvOperation() string {
	if len(m.Header) == 0 {
		return ""
	}
	h, err := nats.DecodeHeadersMsg(m.Header)
	if err != nil {
		return ""
	}
	return h.Get("KV-Operation")
}

// loadRetryWait is how long LoadHistory waits before reading again a
// history that a lagging replica served incomplete.
const loadRetryWait = 20 * time.Millisecond
