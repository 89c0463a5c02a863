// Package jetstream opens a jetflow hub on NATS JetStream: the streams and
// KV buckets that hold every instance's status, history, inbox and
// activity tasks. A program opens the hub once and hands the [Store] to
// [github.com/jetflow/jetflow/worker.New] and
// [github.com/jetflow/jetflow/client.New]:
//
//	nc, _ := nats.Connect(nats.DefaultURL)
//	store, err := jetstream.Open(ctx, nc, jetstream.Config{})
//
// The layout of a hub (hub "jetflow"), for operators and `nats` users:
//
//	KV   jetflow-status     <id>                   status JSON (the HTTP API's shape)
//	KV   jetflow-history    <id>.<chunk %08d>      msgpack: the events of one commit
//	KV   jetflow-registry   orchestrator.<name>    registered orchestrator and activity
//	                        activity.<name>        names (for "nobody registered X" errors)
//	                        hub.shards             the hub's layout: <shards>[/<partitions>]
//	     jetflow-orch       jetflow.orch.<orchestrator>.<shard>.<id>      orchestration inbox
//	                        jetflow.timer.<shard>.<id>.<execution>.<n>    durable timers (message schedules)
//	     jetflow-act        jetflow.act.<activity name>       activity tasks
//
// A hub of P > 1 partitions (Config.Partitions) has P of each of the
// history bucket and the inbox and task streams, named with "-<p>" after
// them (jetflow-history-0, jetflow-orch-0, jetflow-act-0, …); partition p
// holds the instances whose shard modulo P is p, and the tasks their
// activities are given, on jetflow.act.<activity name>.<p>.
//
// Watch custom statuses live with `nats kv watch jetflow-status`. Instance
// ids and names are encoded in keys and subjects: ids made of
// [A-Za-z0-9_-] stay as they are.
//
// The NATS server must have JetStream enabled and take messages of at
// least [MinServerPayload] bytes (a stock server's 1 MB does).
// To run one inside the program, see package
// [github.com/jetflow/jetflow/jetstream/embedded].
package jetstream

import (
	"context"
	"time"

	"github.com/jetflow/jetflow/internal/storage"
	"github.com/nats-io/nats.go"
)

// DefaultHub is the hub a zero Config opens.
const DefaultHub = storage.DefaultHub

// MinServerPayload is the smallest max_payload of a NATS server that
// jetflow runs on: one value of jetflow.MaxPayload bytes and the record
// around it must fit in a message. A stock server's 1 MB is enough.
const MinServerPayload = storage.MinServerPayload

// Config describes a hub. The zero value opens hub "jetflow" on one
// server, stored on disk.
type Config struct {
	// Hub namespaces every stream and bucket, like a Durable Functions task
	// hub. Defaults to "jetflow".
	Hub string
	// Shards is the number of inbox shards of a new hub (a token of every
	// inbox and timer subject). It is part of the hub's layout: the hub
	// records it when it is created, and every process uses the recorded
	// value; opening an existing hub with another (non-zero) value fails.
	// It is not a cap on the number of workers. Defaults to 64.
	Shards int
	// Partitions is the number of streams each of the inbox, the activity
	// tasks and the history of a new hub is spread over (an instance's
	// messages, tasks and chunks all go to the partition of its shard), so
	// that a hub writes to as many streams at once, and on a cluster their
	// leaders spread over the servers. Part of the hub's layout, like
	// Shards: recorded when the hub is created, used by every process,
	// refused when it differs. A hub of several partitions has at most
	// 1,024 shards, at least as many as partitions. The status bucket stays
	// one. Defaults to 1; at most 64.
	Partitions int
	// Replicas of every stream and bucket. Defaults to 1; use 3 on a cluster.
	Replicas int
	// Memory keeps streams in memory instead of files. Defaults to false.
	Memory bool
	// DuplicateWindow is how long the inbox and task streams remember
	// message ids to drop duplicate publishes. Defaults to 2 minutes.
	DuplicateWindow time.Duration
	// Timeout bounds each storage request whose context has no deadline.
	// Defaults to 10 seconds.
	Timeout time.Duration
	// PurgeMarkerTTL is how long the marker that a purged instance leaves
	// in the status bucket stays (live watches see the purge through it);
	// then nothing of the instance is left. Defaults to 1 hour; at least 1
	// second. Applies to status buckets created with it (older ones keep
	// their markers).
	PurgeMarkerTTL time.Duration
	// Retention, when positive, is how long the hub keeps a finished
	// instance (Completed, Failed or Terminated): that long after it
	// finishes, its status, history and anything left for it are removed,
	// as a purge removes them, by the server's own message schedule and
	// whichever worker takes it. It is a hub setting: recorded in the hub
	// when given (negative records none), and used by every process that
	// opens the hub without one; a process reads it when it opens the hub,
	// and an instance keeps the retention in force when it finished.
	// Defaults to the hub's setting, which for a new hub is none: finished
	// instances stay until purged, as in Durable Functions. At least 1
	// second when positive.
	Retention time.Duration
	// Now is the clock of everything built on the store: workers and
	// clients. Defaults to time.Now.
	Now func() time.Time
}

// Store is an open hub. It is safe for concurrent use; one Store serves
// any number of workers and clients in a process. Closing the NATS
// connection closes it.
type Store struct {
	s *storage.Store
}

// Open opens the hub's streams and buckets on nc, creating those that do
// not exist (the configuration of existing ones is left as it is).
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	s, err := storage.Open(ctx, nc, storage.Config(cfg))
	if err != nil {
		return nil, err
	}
	return &Store{s: s}, nil
}

// Hub returns the name of the hub.
func (s *Store) Hub() string { return s.s.Config().Hub }

// Now reads the hub's clock (Config.Now).
func (s *Store) Now() time.Time { return s.s.Now() }

func init() {
	storage.SetUnwrap(func(h any) *storage.Store {
		if s := h.(*Store); s != nil {
			return s.s
		}
		return nil
	})
}
