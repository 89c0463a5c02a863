// Package jetstream is jetflow's storage layout on NATS JetStream: the
// streams and KV buckets of a hub, every subject and key name, the msgpack
// records carried in them, and the typed operations the dispatcher and
// workers use. It is the one package that talks to nats.go's jetstream API
// (imported as natsjs, since the names clash), so every name is built in
// one place (names.go).
//
// # Layout (hub "jetflow")
//
//	KV   jetflow-status     <id>                   status JSON (the HTTP API's shape)
//	KV   jetflow-history    <id>.<chunk %08d>      msgpack: the events of one commit
//	KV   jetflow-registry   orchestrator.<name>    registered orchestrator and activity
//	                        activity.<name>        names (for "nobody registered X" errors)
//	     jetflow-orch       jetflow.orch.<shard>.<id>         orchestration inbox
//	                        jetflow.timer.<shard>.<id>.<...>  durable timers (message schedules)
//	     jetflow-act        jetflow.act.<activity name>       activity tasks
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
package jetstream
