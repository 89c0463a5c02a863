// Package durabletask holds the Go code generated from
// orchestrator_service.proto: the messages and the TaskHubSidecarService
// of the Durable Task sidecar protocol, which package sidecar serves. The
// generated files are committed, so builds need no protoc; regenerate
// them with `go generate ./internal/durabletask` after installing
// protoc (Debian's protobuf-compiler), protoc-gen-go and
// protoc-gen-go-grpc (the versions in the generated files' headers).
//
// This package is internal: its API may change between releases.
package durabletask

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative orchestrator_service.proto
