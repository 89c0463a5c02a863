#!/bin/sh
# The NATS roles of jetflow (deploy/nats/roles.conf) as users of an nsc
# account, for operator (JWT) mode: run it with the account's name, then
# hand each process its creds file (nsc generate creds -a ACCOUNT -n worker
# > worker.creds; jetflow worker --creds worker.creds --inbox-prefix
# _INBOX_worker). The account must have JetStream enabled.
#
# Generated from roles.conf by cmd/jetflow's TestNSCRolesScript, which
# also runs the engine on users with exactly these permissions; after
# changing roles.conf: go test ./cmd/jetflow -run TestNSCRolesScript -update
set -eu
account=${1:?usage: nsc-roles.sh ACCOUNT}

nsc add user --account "$account" --name admin \
  --allow-pub '$JS.API.>' \
  --allow-pub '$KV.jetflow-status.>' \
  --allow-pub '$KV.jetflow-history.>' \
  --allow-pub '$KV.jetflow-registry.>' \
  --allow-pub 'jetflow.>' \
  --allow-pub '$JS.ACK.>' \
  --allow-pub '$JS.FC.>' \
  --allow-sub '_INBOX_admin.>'

nsc add user --account "$account" --name server \
  --allow-pub '$JS.API.INFO' \
  --allow-pub '$JS.API.STREAM.INFO.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.INFO.jetflow-act' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-status' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-history' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-registry' \
  --allow-pub 'jetflow.orch.>' \
  --allow-pub 'jetflow.timer.>' \
  --allow-pub '$KV.jetflow-status.>' \
  --allow-pub '$KV.jetflow-history.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-history' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-history.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-registry' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-registry.>' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-status' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-history' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-registry' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status.>' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-history' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-history.>' \
  --allow-pub '$JS.API.CONSUMER.INFO.KV_jetflow-status.*' \
  --allow-pub '$JS.API.CONSUMER.INFO.KV_jetflow-history.*' \
  --allow-pub '$JS.API.CONSUMER.DELETE.KV_jetflow-status.*' \
  --allow-pub '$JS.API.CONSUMER.DELETE.KV_jetflow-history.*' \
  --allow-pub '$JS.FC.KV_jetflow-status.>' \
  --allow-pub '$JS.FC.KV_jetflow-history.>' \
  --allow-pub '$KV.jetflow-registry.hub.shards' \
  --allow-pub '$JS.API.STREAM.PURGE.KV_jetflow-history' \
  --allow-pub '$JS.API.STREAM.PURGE.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.MSG.GET.jetflow-orch' \
  --allow-sub '_INBOX_server.>'

nsc add user --account "$account" --name worker \
  --allow-pub '$JS.API.INFO' \
  --allow-pub '$JS.API.STREAM.INFO.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.INFO.jetflow-act' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-status' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-history' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-registry' \
  --allow-pub 'jetflow.orch.>' \
  --allow-pub 'jetflow.timer.>' \
  --allow-pub 'jetflow.act.>' \
  --allow-pub '$KV.jetflow-status.>' \
  --allow-pub '$KV.jetflow-history.>' \
  --allow-pub '$KV.jetflow-registry.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-history' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-history.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-registry' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-registry.>' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-status' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-history' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-registry' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status.>' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-history' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-history.>' \
  --allow-pub '$JS.API.CONSUMER.INFO.KV_jetflow-status.*' \
  --allow-pub '$JS.API.CONSUMER.INFO.KV_jetflow-history.*' \
  --allow-pub '$JS.API.CONSUMER.DELETE.KV_jetflow-status.*' \
  --allow-pub '$JS.API.CONSUMER.DELETE.KV_jetflow-history.*' \
  --allow-pub '$JS.FC.KV_jetflow-status.>' \
  --allow-pub '$JS.FC.KV_jetflow-history.>' \
  --allow-pub '$JS.API.STREAM.PURGE.KV_jetflow-history' \
  --allow-pub '$JS.API.CONSUMER.CREATE.jetflow-orch.*.jetflow.orch.>' \
  --allow-pub '$JS.API.CONSUMER.CREATE.jetflow-act.*.jetflow.act.>' \
  --allow-pub '$JS.API.CONSUMER.INFO.jetflow-orch.*' \
  --allow-pub '$JS.API.CONSUMER.INFO.jetflow-act.*' \
  --allow-pub '$JS.API.CONSUMER.MSG.NEXT.jetflow-orch.*' \
  --allow-pub '$JS.API.CONSUMER.MSG.NEXT.jetflow-act.*' \
  --allow-pub '$JS.ACK.jetflow-orch.>' \
  --allow-pub '$JS.ACK.jetflow-act.>' \
  --allow-pub '$JS.API.CONSUMER.LIST.jetflow-orch' \
  --allow-pub '$JS.API.CONSUMER.LIST.jetflow-act' \
  --allow-pub '$JS.API.STREAM.PURGE.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.PURGE.jetflow-act' \
  --allow-pub '$JS.API.STREAM.MSG.DELETE.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.MSG.DELETE.jetflow-act' \
  --allow-pub '$JS.API.STREAM.MSG.GET.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.MSG.GET.jetflow-act' \
  --allow-sub '_INBOX_worker.>'

nsc add user --account "$account" --name worker_hello \
  --allow-pub '$JS.API.INFO' \
  --allow-pub '$JS.API.STREAM.INFO.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.INFO.jetflow-act' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-status' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-history' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-registry' \
  --allow-pub 'jetflow.orch.E1_HelloSequence.>' \
  --allow-pub 'jetflow.timer.>' \
  --allow-pub 'jetflow.act.E1_SayHello' \
  --allow-pub '$KV.jetflow-status.>' \
  --allow-pub '$KV.jetflow-history.>' \
  --allow-pub '$KV.jetflow-registry.orchestrator.E1_HelloSequence' \
  --allow-pub '$KV.jetflow-registry.activity.E1_SayHello' \
  --allow-pub '$KV.jetflow-registry.hub.shards' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-history' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-history.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-registry' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-registry.>' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-status' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-history' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-registry' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status.>' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-history' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-history.>' \
  --allow-pub '$JS.API.CONSUMER.INFO.KV_jetflow-status.*' \
  --allow-pub '$JS.API.CONSUMER.INFO.KV_jetflow-history.*' \
  --allow-pub '$JS.API.CONSUMER.DELETE.KV_jetflow-status.*' \
  --allow-pub '$JS.API.CONSUMER.DELETE.KV_jetflow-history.*' \
  --allow-pub '$JS.FC.KV_jetflow-status.>' \
  --allow-pub '$JS.FC.KV_jetflow-history.>' \
  --allow-pub '$JS.API.STREAM.PURGE.KV_jetflow-history' \
  --allow-pub '$JS.API.CONSUMER.CREATE.jetflow-orch.orch-E1_HelloSequence.jetflow.orch.E1_HelloSequence.>' \
  --allow-pub '$JS.API.CONSUMER.CREATE.jetflow-act.act-E1_SayHello.jetflow.act.E1_SayHello' \
  --allow-pub '$JS.API.CONSUMER.INFO.jetflow-orch.orch-E1_HelloSequence' \
  --allow-pub '$JS.API.CONSUMER.INFO.jetflow-act.act-E1_SayHello' \
  --allow-pub '$JS.API.CONSUMER.MSG.NEXT.jetflow-orch.orch-E1_HelloSequence' \
  --allow-pub '$JS.API.CONSUMER.MSG.NEXT.jetflow-act.act-E1_SayHello' \
  --allow-pub '$JS.ACK.jetflow-orch.orch-E1_HelloSequence.>' \
  --allow-pub '$JS.ACK.jetflow-act.act-E1_SayHello.>' \
  --allow-pub '$JS.API.STREAM.MSG.GET.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.MSG.GET.jetflow-act' \
  --allow-sub '_INBOX_worker_hello.>'

nsc add user --account "$account" --name sidecar \
  --allow-pub '$JS.API.INFO' \
  --allow-pub '$JS.API.STREAM.INFO.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.INFO.jetflow-act' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-status' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-history' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-registry' \
  --allow-pub 'jetflow.orch.>' \
  --allow-pub 'jetflow.timer.>' \
  --allow-pub 'jetflow.act.>' \
  --allow-pub '$KV.jetflow-status.>' \
  --allow-pub '$KV.jetflow-history.>' \
  --allow-pub '$KV.jetflow-registry.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-history' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-history.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-registry' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-registry.>' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-status' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-history' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-registry' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status.>' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-history' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-history.>' \
  --allow-pub '$JS.API.CONSUMER.INFO.KV_jetflow-status.*' \
  --allow-pub '$JS.API.CONSUMER.INFO.KV_jetflow-history.*' \
  --allow-pub '$JS.API.CONSUMER.DELETE.KV_jetflow-status.*' \
  --allow-pub '$JS.API.CONSUMER.DELETE.KV_jetflow-history.*' \
  --allow-pub '$JS.FC.KV_jetflow-status.>' \
  --allow-pub '$JS.FC.KV_jetflow-history.>' \
  --allow-pub '$JS.API.STREAM.PURGE.KV_jetflow-history' \
  --allow-pub '$JS.API.CONSUMER.CREATE.jetflow-orch.*.jetflow.orch.>' \
  --allow-pub '$JS.API.CONSUMER.CREATE.jetflow-act.*.jetflow.act.>' \
  --allow-pub '$JS.API.CONSUMER.INFO.jetflow-orch.*' \
  --allow-pub '$JS.API.CONSUMER.INFO.jetflow-act.*' \
  --allow-pub '$JS.API.CONSUMER.MSG.NEXT.jetflow-orch.*' \
  --allow-pub '$JS.API.CONSUMER.MSG.NEXT.jetflow-act.*' \
  --allow-pub '$JS.ACK.jetflow-orch.>' \
  --allow-pub '$JS.ACK.jetflow-act.>' \
  --allow-pub '$JS.API.CONSUMER.LIST.jetflow-orch' \
  --allow-pub '$JS.API.CONSUMER.LIST.jetflow-act' \
  --allow-pub '$JS.API.STREAM.PURGE.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.PURGE.jetflow-act' \
  --allow-pub '$JS.API.STREAM.MSG.DELETE.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.MSG.DELETE.jetflow-act' \
  --allow-pub '$JS.API.STREAM.MSG.GET.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.MSG.GET.jetflow-act' \
  --allow-sub '_INBOX_sidecar.>'

nsc add user --account "$account" --name watcher \
  --allow-pub '$JS.API.INFO' \
  --allow-pub '$JS.API.STREAM.INFO.jetflow-orch' \
  --allow-pub '$JS.API.STREAM.INFO.jetflow-act' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-status' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-history' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-registry' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status.>' \
  --allow-pub '$JS.API.CONSUMER.INFO.KV_jetflow-status.*' \
  --allow-pub '$JS.API.CONSUMER.DELETE.KV_jetflow-status.*' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status.>' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_jetflow-status' \
  --allow-pub '$JS.FC.KV_jetflow-status.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-registry.$KV.jetflow-registry.hub.shards' \
  --allow-sub '_INBOX_watcher.>'

nsc add user --account "$account" --name watcher_one \
  --allow-pub '$JS.API.INFO' \
  --allow-pub '$JS.API.STREAM.INFO.KV_jetflow-status' \
  --allow-pub '$JS.API.CONSUMER.CREATE.KV_jetflow-status.*.$KV.jetflow-status.order-42' \
  --allow-pub '$JS.API.CONSUMER.INFO.KV_jetflow-status.*' \
  --allow-pub '$JS.API.CONSUMER.DELETE.KV_jetflow-status.*' \
  --allow-pub '$JS.API.DIRECT.GET.KV_jetflow-status.$KV.jetflow-status.order-42' \
  --allow-pub '$JS.FC.KV_jetflow-status.>' \
  --allow-sub '_INBOX_watcher_one.>'
