package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Errors of the storage operations, matched with errors.Is.
var (
	// ErrConflict: a compare-and-set write lost (the key exists, or its
	// revision moved on).
	ErrConflict = errors.New("conflicting write")
	// ErrNotFound: no such key.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: the message is larger than the server takes (its
	// max_payload). Retrying never helps.
	ErrTooLarge = errors.New("message larger than the server's maximum payload")
)

// MinServerPayload is the smallest max_payload of a NATS server that
// jetflow runs on: one value of jetflow.MaxPayload bytes and the record
// around it must fit in a message. A stock server's 1 MB is enough.
const MinServerPayload = jetflow.MaxPayload + 64*1024

// Config is jetstream.Config, converted field for field (it documents the
// fields and their defaults); withDefaults fills in what is zero.
type Config struct {
	Hub             string
	Shards          int
	Partitions      int
	Replicas        int
	Memory          bool
	DuplicateWindow time.Duration
	Timeout         time.Duration
	PurgeMarkerTTL  time.Duration
	Retention       time.Duration
	Now             func() time.Time
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.Hub == "" {
		out.Hub = DefaultHub
	}
	if out.Shards == 0 {
		out.Shards = 64
	}
	if out.Partitions == 0 {
		out.Partitions = 1
	}
	if out.Replicas == 0 {
		out.Replicas = 1
	}
	if out.DuplicateWindow == 0 {
		out.DuplicateWindow = 2 * time.Minute
	}
	if out.Timeout == 0 {
		out.Timeout = 10 * time.Second
	}
	if out.PurgeMarkerTTL == 0 {
		out.PurgeMarkerTTL = time.Hour
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return out
}

func (c *Config) validate() error {
	if err := CheckHub(c.Hub); err != nil {
		return err
	}
	if c.Shards < 1 || c.Shards > 100000 {
		return fmt.Errorf("shards %d: want 1 to 100000", c.Shards)
	}
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		return fmt.Errorf("partitions %d: want 1 to %d", c.Partitions, MaxPartitions)
	}
	if c.Partitions > 1 && (c.Shards < c.Partitions || c.Shards > maxPartitionedShards) {
		return fmt.Errorf("shards %d with %d partitions: want %d to %d (each partition's streams list their shards)",
			c.Shards, c.Partitions, c.Partitions, maxPartitionedShards)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("replicas %d: want 1 to 5", c.Replicas)
	}
	if c.PurgeMarkerTTL < time.Second {
		return fmt.Errorf("purge marker TTL %s: want at least 1s", c.PurgeMarkerTTL)
	}
	if c.Retention > 0 && c.Retention < time.Second {
		return fmt.Errorf("retention %s: want at least 1s, or a negative value for none", c.Retention)
	}
	return nil
}

// MaxPartitions is the most partitions a hub may have.
const MaxPartitions = 64

// maxPartitionedShards is the most shards of a hub of several partitions,
// whose inbox streams name each of their shards in their subjects.
const maxPartitionedShards = 1024

// CheckHub returns an error unless hub may name a hub (Config.Hub): at
// most 32 characters of [A-Za-z0-9_-], one token of every subject (the
// empty name passes: Config takes it as DefaultHub).
func CheckHub(hub string) error {
	if len(hub) > 32 {
		return fmt.Errorf("hub %q: longer than 32 characters", hub)
	}
	for i := 0; i < len(hub); i++ {
		if !isPlain(hub[i]) {
			return fmt.Errorf("hub %q: only A-Z, a-z, 0-9, '_' and '-' are allowed", hub)
		}
	}
	return nil
}

// Store is a hub's streams and buckets, opened on one NATS connection. It
// is safe for concurrent use.
type Store struct {
	cfg           Config
	shardsSet     bool // Config.Shards was given, not defaulted
	partitionsSet bool // Config.Partitions was given, not defaulted
	names         Names
	nc            *nats.Conn
	js            natsjs.JetStream

	status   natsjs.KeyValue
	registry natsjs.KeyValue
	history  []natsjs.KeyValue // by partition
	orch     []natsjs.Stream   // by partition
	act      []natsjs.Stream   // by partition

	registered sync.Map // registry key -> struct{}: names known to be registered

	retentionMu    sync.Mutex
	retention      time.Duration // the hub's retention, once retentionKnown
	retentionKnown bool

	statusMarkerTTL time.Duration // TTL of purge markers in the status bucket; 0: they stay
	leaderReads     bool          // the hub is replicated: read statuses and histories through the leaders (leader.go)
	observer        observer      // told of every operation (observe.go)
}

// Open opens the hub's streams and buckets, creating those that do not
// exist, and returns the store. The configuration of existing ones is left
// as it is.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	shardsSet, partitionsSet := cfg.Shards != 0, cfg.Partitions != 0
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("jetstream config: %w", err)
	}
	js, err := natsjs.New(nc,
		natsjs.WithDefaultTimeout(cfg.Timeout),
		natsjs.WithPublishAsyncMaxPending(8192),
		natsjs.WithPublishAsyncTimeout(cfg.Timeout),
	)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if max := nc.MaxPayload(); max < MinServerPayload {
		return nil, fmt.Errorf("the NATS server takes messages of at most %d bytes; jetflow needs at least %d "+
			"(values of up to %d bytes, and their history records): set max_payload to at least 1MB in the server's configuration",
			max, MinServerPayload, jetflow.MaxPayload)
	}
	s := &Store{cfg: cfg, shardsSet: shardsSet, partitionsSet: partitionsSet,
		names: NewNames(cfg.Hub, cfg.Shards, cfg.Partitions), nc: nc, js: js}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) storage() natsjs.StorageType {
	if s.cfg.Memory {
		return natsjs.MemoryStorage
	}
	return natsjs.FileStorage
}

// setup opens the hub's buckets and streams, creating those that do not
// exist. Existing ones are used as they are, so that a client process
// never rewrites the configuration of a running hub (its replicas, say).
func (s *Store) setup(ctx context.Context) error {
	n := s.names
	var err error
	kv := func(bucket, desc string, markerTTL time.Duration) (natsjs.KeyValue, error) {
		b, err := s.js.KeyValue(ctx, bucket)
		if errors.Is(err, natsjs.ErrBucketNotFound) {
			b, err = s.js.CreateKeyValue(ctx, natsjs.KeyValueConfig{
				Bucket:         bucket,
				Description:    desc,
				History:        1,
				Storage:        s.storage(),
				Replicas:       s.cfg.Replicas,
				LimitMarkerTTL: markerTTL,
			})
			if errors.Is(err, natsjs.ErrBucketExists) { // created meanwhile by another process
				b, err = s.js.KeyValue(ctx, bucket)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("opening KV bucket %s: %w", bucket, err)
		}
		return b, nil
	}
	if s.status, err = kv(n.StatusBucket(), "jetflow instance statuses (JSON, the HTTP API's shape)", s.cfg.PurgeMarkerTTL); err != nil {
		return err
	}
	st, err := s.status.Status(ctx)
	if err != nil {
		return fmt.Errorf("reading KV bucket %s: %w", n.StatusBucket(), err)
	}
	if st.(*natsjs.KeyValueBucketStatus).LimitMarkerTTL() > 0 {
		s.statusMarkerTTL = s.cfg.PurgeMarkerTTL
	}
	s.leaderReads = st.(*natsjs.KeyValueBucketStatus).StreamInfo().Config.Replicas > 1
	if s.registry, err = kv(n.RegistryBucket(), "jetflow registered orchestrator and activity names, and the hub's layout", 0); err != nil {
		return err
	}
	if err := s.layout(ctx); err != nil {
		return err
	}
	if s.cfg.Retention != 0 {
		if err := s.recordRetention(ctx); err != nil {
			return err
		}
	}
	n = s.names
	stream := func(name, desc string, subjects []string, schedules bool) (natsjs.Stream, error) {
		st, err := s.js.Stream(ctx, name)
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			st, err = s.js.CreateStream(ctx, natsjs.StreamConfig{
				Name:              name,
				Description:       desc,
				Subjects:          subjects,
				Retention:         natsjs.LimitsPolicy,
				Storage:           s.storage(),
				Replicas:          s.cfg.Replicas,
				Duplicates:        s.cfg.DuplicateWindow,
				AllowMsgSchedules: schedules,
			})
			if errors.Is(err, natsjs.ErrStreamNameAlreadyInUse) {
				st, err = s.js.Stream(ctx, name)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("opening stream %s: %w", name, err)
		}
		return st, nil
	}
	for p := range n.Partitions() {
		h, err := kv(n.HistoryBucket(p), "jetflow history chunks (msgpack), <id>.<chunk>", 0)
		if err != nil {
			return err
		}
		orch, err := stream(n.InboxStream(p), "jetflow orchestration inbox and timers", n.InboxStreamSubjects(p), true)
		if err != nil {
			return err
		}
		act, err := stream(n.TaskStream(p), "jetflow activity tasks", n.TaskStreamSubjects(p), false)
		if err != nil {
			return err
		}
		s.history, s.orch, s.act = append(s.history, h), append(s.orch, orch), append(s.act, act)
	}
	return nil
}

// layout reads the hub's recorded layout (its shard and partition
// counts), recording the configured one if the hub has none yet, so that
// every process of a hub builds the same subjects and streams. It reads
// before it writes, so that a process allowed only to read (a watcher)
// opens an existing hub.
func (s *Store) layout(ctx context.Context) error {
	key := s.names.ShardsKey()
	e, err := s.getRegistry(ctx, key)
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		_, err = s.registry.Create(ctx, key, []byte(s.names.Layout()))
		if err == nil {
			return nil
		}
		if !errors.Is(err, natsjs.ErrKeyExists) { // created meanwhile by another process
			return fmt.Errorf("recording the hub's layout: %w", err)
		}
		e, err = s.getRegistry(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("reading the hub's layout: %w", err)
	}
	shards, partitions, err := ParseLayout(string(e.Value()))
	if err != nil {
		return fmt.Errorf("the hub's layout: %s: %w", key, err)
	}
	if s.shardsSet && shards != s.cfg.Shards {
		return fmt.Errorf("%w: hub %q was created with %d shards, not %d", jetflow.ErrInvalidOption, s.cfg.Hub, shards, s.cfg.Shards)
	}
	if s.partitionsSet && partitions != s.cfg.Partitions {
		return fmt.Errorf("%w: hub %q was created with %d partition(s), not %d", jetflow.ErrInvalidOption, s.cfg.Hub, partitions, s.cfg.Partitions)
	}
	s.cfg.Shards, s.cfg.Partitions = shards, partitions
	s.names = NewNames(s.cfg.Hub, shards, partitions)
	return nil
}

// recordRetention records the configured retention as the hub's (the
// last process to give one sets it for the hub), unless it is recorded
// already.
func (s *Store) recordRetention(ctx context.Context) error {
	want := max(s.cfg.Retention, 0)
	if e, err := s.getRegistry(ctx, s.names.RetentionKey()); err == nil && string(e.Value()) == want.String() {
		s.setRetention(want)
		return nil
	}
	if _, err := s.registry.Put(ctx, s.names.RetentionKey(), []byte(want.String())); err != nil {
		return fmt.Errorf("recording the hub's retention: %w", err)
	}
	s.setRetention(want)
	return nil
}

func (s *Store) setRetention(d time.Duration) {
	s.retentionMu.Lock()
	s.retention, s.retentionKnown = d, true
	s.retentionMu.Unlock()
}

// Retention is how long the hub keeps finished instances (0: until they
// are purged): the one this process gave, or the hub's, read the first
// time it is asked for (only the processes that finish instances need it,
// so that a watcher's role need not read it).
func (s *Store) Retention(ctx context.Context) (time.Duration, error) {
	s.retentionMu.Lock()
	defer s.retentionMu.Unlock()
	if s.retentionKnown {
		return s.retention, nil
	}
	key := s.names.RetentionKey()
	var d time.Duration
	e, err := s.getRegistry(ctx, key)
	switch {
	case errors.Is(err, natsjs.ErrKeyNotFound):
	case err != nil:
		return 0, mapErr("reading the hub's retention", err)
	default:
		if d, err = time.ParseDuration(string(e.Value())); err != nil || d < 0 {
			return 0, fmt.Errorf("the hub's settings: %s is %q, not a retention", key, e.Value())
		}
	}
	s.retention, s.retentionKnown = d, true
	return d, nil
}

// getRegistry reads a registry key. On a cluster, a bucket created a
// moment ago may not answer direct gets yet (no responders): it asks
// again until ctx ends.
func (s *Store) getRegistry(ctx context.Context, key string) (natsjs.KeyValueEntry, error) {
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		e, err := s.registry.Get(ctx, key)
		if !errors.Is(err, nats.ErrNoResponders) {
			return e, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

// Names returns the hub's names.
func (s *Store) Names() Names { return s.names }

// Config returns the configuration with defaults applied.
func (s *Store) Config() Config { return s.cfg }

// Now reads the store's clock (Config.Now).
func (s *Store) Now() time.Time { return s.cfg.Now() }

// Conn returns the NATS connection.
func (s *Store) Conn() *nats.Conn { return s.nc }

// timeout adds the configured default deadline to ctx if it has none.
func (s *Store) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

// isConflict reports whether err is a lost compare-and-set: a KV Create on
// an existing key, or an expected-last-sequence check that failed (code
// 10071, or 10164 on replicated streams).
func isConflict(err error) bool {
	if errors.Is(err, natsjs.ErrKeyExists) {
		return true
	}
	var apiErr *natsjs.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

func mapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case isConflict(err):
		return fmt.Errorf("%s: %w", op, ErrConflict)
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%s: %w", op, ErrTooLarge)
	case errors.Is(err, natsjs.ErrKeyNotFound), errors.Is(err, natsjs.ErrKeyDeleted), errors.Is(err, natsjs.ErrMsgNotFound):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case unreachable(err):
		return fmt.Errorf("%s: %w (%w)", op, jetflow.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// unreachable reports whether err means that the server could not be
// reached or did not answer in time.
func unreachable(err error) bool {
	for _, target := range []error{context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders, nats.ErrConnectionClosed,
		nats.ErrConnectionDraining, nats.ErrDisconnected, nats.ErrNoServers, natsjs.ErrNoHeartbeat} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// instanceNotFound is the error of a status that does not exist: both
// ErrNotFound and jetflow.ErrInstanceNotFound, so that no caller needs to
// translate it.
func instanceNotFound(id string) error {
	return fmt.Errorf("%w: %q", notFound{jetflow.ErrInstanceNotFound}, id)
}

// notFound is an engine error that is also ErrNotFound.
type notFound struct{ error }

func (e notFound) Is(target error) bool { return target == ErrNotFound }
func (e notFound) Unwrap() error        { return e.error }

// StoredMessages returns how many messages the hub's streams and buckets
// have stored since they were created (the sum of their last sequences):
// each is one write (one fsync when the server syncs every write).
func (s *Store) StoredMessages(ctx context.Context) (uint64, error) {
	return s.sumStreams(ctx, func(st natsjs.StreamState) uint64 { return st.LastSeq })
}

// StoredBytes returns how many bytes the hub's streams and buckets hold
// now (messages with their subjects and headers, as the server counts
// them), for sizing.
func (s *Store) StoredBytes(ctx context.Context) (uint64, error) {
	return s.sumStreams(ctx, func(st natsjs.StreamState) uint64 { return st.Bytes })
}

// sumStreams sums a figure of the states of the hub's streams and buckets.
func (s *Store) sumStreams(ctx context.Context, figure func(natsjs.StreamState) uint64) (uint64, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var total uint64
	for _, name := range s.names.Streams() {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			return 0, mapErr("reading stream "+name, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0, mapErr("reading stream "+name, err)
		}
		total += figure(info.State)
	}
	return total, nil
}
