//go:build chaos

package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// tracer records, when JETFLOW_CHAOS_TRACE is set, every message the
// engine sends through NATS: publishes to the hub's streams (with their
// message ids), the streams' acknowledgements of them, deliveries to the
// workers, and the workers' acks. It listens on a connection to every
// server of the cluster, so it keeps recording when one is killed. On a
// failure, the trace of the instances in trouble tells where a message
// was lost. It is a debugging aid: the tests pass or fail the same without
// it.
type tracer struct {
	mu      sync.Mutex
	recs    []traceRec
	replyTo map[string]string // publish reply inbox -> message id
	owners  map[string]string // subscription subject -> connection ("name#cid")
}

// pollOwners records which client connection subscribes to which inbox,
// from the server's /connz, so that a delivery can be told apart by the
// worker it went to.
func (tr *tracer) pollOwners(httpPort int) {
	hc := &http.Client{Timeout: time.Second}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/connz?subs=detail&limit=4096", httpPort))
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var connz struct {
		Connections []struct {
			CID  uint64 `json:"cid"`
			Name string `json:"name"`
			Subs []struct {
				Subject string `json:"subject"`
			} `json:"subscriptions_list_details"`
		} `json:"connections"`
	}
	if json.NewDecoder(resp.Body).Decode(&connz) != nil {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, c := range connz.Connections {
		for _, sub := range c.Subs {
			if strings.HasPrefix(sub.Subject, "_INBOX.") {
				tr.owners[sub.Subject] = fmt.Sprintf("%s#%d", c.Name, c.CID)
			}
		}
	}
}

type traceRec struct {
	at    time.Time
	node  string
	kind  string // pub, stored, deliver, ack
	msgID string
	subj  string
	strm  string // stream, when known
	seq   uint64 // stream sequence, when known
	info  string
}

// startTracer starts recording if JETFLOW_CHAOS_TRACE is set; it returns
// nil otherwise.
func startTracer(t *testing.T, ns *natsCluster, hubName string) *tracer {
	if os.Getenv("JETFLOW_CHAOS_TRACE") == "" {
		return nil
	}
	tr := &tracer{replyTo: map[string]string{}, owners: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	t.Cleanup(func() { cancel(); <-polled })
	go func() {
		defer close(polled)
		for ctx.Err() == nil {
			for _, nd := range ns.nodes {
				tr.pollOwners(nd.httpPort)
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	for _, nd := range ns.nodes {
		nc, err := nats.Connect(nd.url(), nats.Name("chaos-trace-"+nd.name), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			t.Fatalf("tracer: %v", err)
		}
		t.Cleanup(nc.Close)
		node := nd.name
		for _, subj := range []string{hubName + ".>", "_INBOX.>", "$JS.ACK.>"} {
			if _, err := nc.Subscribe(subj, func(m *nats.Msg) { tr.record(node, m) }); err != nil {
				t.Fatalf("tracer: %v", err)
			}
		}
		_ = nc.Flush()
	}
	return tr
}

func (tr *tracer) record(node string, m *nats.Msg) {
	now := time.Now()
	r := traceRec{at: now, node: node, subj: m.Subject}
	switch {
	case strings.HasPrefix(m.Subject, "$JS.ACK."):
		r.kind, r.info = "ack", string(m.Data)
		r.strm, r.seq = ackSubject(m.Subject)
	case strings.HasPrefix(m.Subject, "_INBOX."):
		switch {
		case strings.HasPrefix(m.Reply, "$JS.ACK."):
			r.kind, r.msgID = "deliver", m.Header.Get(nats.MsgIdHdr)
			r.strm, r.seq = ackSubject(m.Reply)
			r.info = m.Reply
		case len(m.Data) > 0 && m.Data[0] == '{' && strings.Contains(string(m.Data), `"seq"`):
			var ack struct {
				Stream    string `json:"stream"`
				Seq       uint64 `json:"seq"`
				Duplicate bool   `json:"duplicate"`
			}
			if json.Unmarshal(m.Data, &ack) != nil || ack.Stream == "" {
				return
			}
			tr.mu.Lock()
			id, ok := tr.replyTo[m.Subject]
			tr.mu.Unlock()
			if !ok {
				return
			}
			r.kind, r.msgID, r.strm, r.seq = "stored", id, ack.Stream, ack.Seq
			r.info = fmt.Sprintf("duplicate=%v", ack.Duplicate)
		default:
			return
		}
	default:
		r.kind, r.msgID, r.info = "pub", m.Header.Get(nats.MsgIdHdr), m.Reply
		if m.Reply != "" && r.msgID != "" {
			tr.mu.Lock()
			tr.replyTo[m.Reply] = r.msgID
			tr.mu.Unlock()
		}
	}
	tr.mu.Lock()
	tr.recs = append(tr.recs, r)
	tr.mu.Unlock()
}

// ackSubject returns the stream and stream sequence of an ack subject:
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>,
// or with <domain>.<account hash> before the stream and a random token
// after.
func ackSubject(subj string) (stream string, seq uint64) {
	tok := strings.Split(subj, ".")
	i := 2
	switch {
	case len(tok) == 9:
	case len(tok) >= 11:
		i = 4
	default:
		return "", 0
	}
	n, _ := strconv.ParseUint(tok[i+3], 10, 64)
	return tok[i], n
}

// dump logs the records of an instance's messages: those whose id starts
// with exec (the execution id: starts, tasks, results, timers) or that
// were published to the instance's inbox subject (events, whose ids are
// random), and the deliveries and acks of their stream sequences.
func (tr *tracer) dump(t *testing.T, exec, encodedID string) {
	t.Helper()
	if tr == nil {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ids := map[string]bool{}
	for _, r := range tr.recs {
		if r.msgID != "" && (strings.HasPrefix(r.msgID, exec) || r.kind == "pub" && strings.HasSuffix(r.subj, "."+encodedID)) {
			ids[r.msgID] = true
		}
	}
	type key struct {
		stream string
		seq    uint64
	}
	seqs := map[key]bool{}
	for _, r := range tr.recs {
		if r.kind == "stored" && ids[r.msgID] {
			seqs[key{r.strm, r.seq}] = true
		}
	}
	var b strings.Builder
	for _, r := range tr.recs {
		if ids[r.msgID] || (r.kind == "ack" || r.kind == "deliver") && seqs[key{r.strm, r.seq}] {
			fmt.Fprintf(&b, "\n  %s %s %-7s %s %s seq %d %s %s", r.at.Format("15:04:05.000"), r.node, r.kind, r.msgID, r.strm, r.seq, r.subj, r.info)
			if owner := tr.owners[r.subj]; r.kind == "deliver" && owner != "" {
				fmt.Fprintf(&b, " to %s", owner)
			}
		}
	}
	t.Logf("trace of %s (execution %s; %d records in all):%s", encodedID, exec, len(tr.recs), b.String())
}
