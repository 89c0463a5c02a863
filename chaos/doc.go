// Package chaos holds jetflow's fault-tolerance test suite. It runs real
// processes, built from this module when the suite starts: nats-server
// (one server, or a cluster of three) and `jetflow worker`, and kills them
// with SIGKILL in the middle of a load driven from the test process
// through the Go client. Every test then checks that each instance
// completed with the right output and that its history is sound: chunks
// numbered 1, 2, 3… without gaps, no event applied twice, every activity
// call with exactly one result.
//
// The tests carry the build tag chaos, so a plain `go test ./...` skips
// them. Run them with:
//
//	go test -tags chaos -run Chaos -timeout 15m ./chaos/
//
// docs/RELIABILITY.md describes each test, what it kills and when, what it
// verifies, how long it takes, and what the suite does not cover.
package chaos
