// Command jetflow runs and drives jetflow, durable orchestrations on NATS
// JetStream.
//
// `jetflow dev` runs everything in one process for development: an embedded
// nats-server with JetStream (its client port open to other processes and
// the nats CLI), a worker with the samples registered, the Durable
// Functions–compatible HTTP API and the Durable Task gRPC sidecar (for the
// Durable Task SDKs of other languages; --no-grpc turns it off):
//
//	go run ./cmd/jetflow dev [--data ./.jetflow] [--nats-listen 127.0.0.1:4222] [--http 127.0.0.1:8080] [--grpc 127.0.0.1:4001]
//
// The other verbs talk to a running hub over NATS (--nats, default
// nats://127.0.0.1:4222 or $JETFLOW_NATS_URL; --creds, --nkey, --user,
// --password or $JETFLOW_NATS_PASSWORD, --token or $JETFLOW_NATS_TOKEN, and
// --tls-* for secured servers):
//
//	jetflow worker [--concurrency N] [--no-orchestrations|--no-activities]  run the samples' workers
//	jetflow server [--http ADDR] [--api-key KEY] [--keys FILE]  run the HTTP API without workers
//	jetflow sidecar [--grpc ADDR] [--orchestrators a,b] [--activities c,d]
//	                                              serve the Durable Task gRPC protocol to the SDKs' workers and clients
//	jetflow init [--replicas 3] [--retention D]   create the hub's streams and buckets, then exit
//	                                              (--retention: remove finished instances D after they finish)
//	jetflow healthcheck [URL]                     exit 0 if a server's /healthz answers 200
//	jetflow nats-roles [--hub H] [--partitions N] print the NATS roles of deploy/nats/roles.conf
//	                                              for hub H of N partitions
//	jetflow bench [--scenario S] [--instances N] [--workers W] [--json] [--cpuprofile F]
//	                                              measure the engine against the raw write rate
//	                                              (S: hello, fanout, status-watch, long-history, waiting, scale, all)
//
// Security (docs/SECURITY.md): dev and server take --api-key, --keys FILE
// (scoped keys, read again on SIGHUP), --no-query-key, --public-url,
// --allowed-origins, --allowed-hosts and TLS (dev --tls-cert/--tls-key,
// server --http-tls-cert/--http-tls-key); with a key, dev's NATS requires
// the credentials its banner prints. Every verb takes --inbox-prefix, for
// the NATS roles of deploy/nats/roles.conf.
//
//	jetflow start NAME [--input JSON] [--id ID]   start an instance, print its id
//	jetflow status ID [--history]                 print its status JSON (with its history)
//	jetflow watch ID [--from-revision N]          print each status change until it finishes
//	jetflow watch --prefix P [--from-revision N]  print the changes of many instances until Ctrl-C
//	jetflow list [--status S] [--prefix P] [--created-from T] [--created-to T] [--top N] [--continue TOKEN] [--all] [--json]
//	                                              print a page of instances (every page with --all)
//	jetflow raise ID EVENT [JSON]                 send it an external event
//	jetflow terminate ID [--reason TEXT]          terminate it
//	jetflow suspend ID [--reason TEXT]            suspend it
//	jetflow resume ID [--reason TEXT]             resume it
//	jetflow rewind ID [--reason TEXT]             run a failed instance again from where it failed
//	jetflow restart ID [--same-id]                run a finished instance again, print the new id
//	jetflow purge ID [--json]                     remove a finished instance
//	jetflow purge --created-before T [--created-after T] [--status S] [--json]
//	                                              remove the finished instances selected
//
// Long verbs (bulk purge, list --all, bench) draw progress on stderr when
// it is a terminal, never when it is piped; --json prints JSON only.
// Errors are printed as one line on stderr, with a non-zero exit status.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
