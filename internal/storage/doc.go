// Package storage is jetflow's storage layout on NATS JetStream: the
// streams and KV buckets of a hub, every subject and key name, the msgpack
// records carried in them, and the typed operations the dispatcher, workers
// and clients use. It is the one package that talks to nats.go's jetstream
// API (imported as natsjs), and every name is built in one place
// (names.go). Users open a hub with package jetstream, whose Store is a
// handle on this package's Store; the engine's packages reach it with Of. Errors are the engine's: ErrNotFound,
// ErrConflict, ErrTooLarge, jetflow.ErrInstanceNotFound for a missing
// status, and jetflow.ErrUnavailable when the server cannot be reached.
//
// # Layout (hub "jetflow")
//
//	KV   jetflow-status     <id>                   status JSON (the HTTP API's shape)
//	KV   jetflow-history    <id>.<chunk %08d>      msgpack: the events of one commit
//	KV   jetflow-registry   orchestrator.<name>    registered orchestrator and activity
//	                        activity.<name>        names (for "nobody registered X" errors)
//	                        hub.shards             the hub's layout: <shards>[/<partitions>]
//	                        hub.retention          how long finished instances stay
//	     jetflow-orch       jetflow.orch.<orchestrator>.<shard>.<id>      orchestration inbox
//	                        jetflow.timer.<shard>.<id>.<execution>.<n>    durable timers (message schedules)
//	                        jetflow.timer.<shard>.<id>.<execution>.expire the removal of a finished instance
//	     jetflow-act        jetflow.act.<activity name>       activity tasks
//
// A hub of P > 1 partitions has P history buckets and inbox and task
// streams, named with "-<p>" after them: partition p holds the instances
// whose shard modulo P is p (Names.Partition), and the tasks of their
// activities, on jetflow.act.<activity name>.<p>. Each worker consumes
// every partition, through one durable consumer per name on each.
//
// Two words name the two queues: the inbox (orchestration messages and
// timers: InboxStream, InboxSubject, ConsumeInbox, InboxMessage) and tasks
// (activity tasks: TaskStream, TaskSubject, ConsumeActivity, ActivityTask).
//
// Instance ids and names are encoded for keys and subjects with [EncodeToken]:
// ids made of [A-Za-z0-9_-] stay as they are.
//
// The inbox and task streams use limits retention: an ack there costs no
// fsync (on a work-queue stream every ack is a delete, and so a write).
// [Store.PurgeAcked] removes what every consumer has acknowledged: below
// each consumer's ack floor in one purge, and above a floor pinned by an
// outstanding message one by one, so the streams hold what is outstanding.
//
// This package is a seam for jetflow's own packages; its API may change
// between releases.
package storage
