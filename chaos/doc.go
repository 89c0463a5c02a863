// Package chaos holds jetflow's fault-tolerance test suite. It runs real
// processes, built from this module when the suite starts: nats-server
// (one server, or a cluster of three), `jetflow worker` and chaosworker
// (chaos/chaosworker), and kills them with SIGKILL, freezes them with
// SIGSTOP and restarts them in the middle of a load driven from the test
// process through the Go client, with production defaults (the 30 s ack
// wait, the stock 1 MB max_payload). Every test then checks that each
// instance finished as it should and that its history is sound: chunks
// numbered 1, 2, 3… without gaps, no event applied twice, every activity
// call with exactly one result.
//
// One test is randomized (TestChaos/Random): a seeded schedule of faults
// over a mixed load, and a checker that reads back every instance, every
// status it went through and every activity run. This package's own code
// is what it needs beyond the samples: orchestrations with
// sub-orchestrations and continue-as-new, and a record of activity runs,
// which chaosworker registers.
//
// The tests carry the build tag chaos, so a plain `go test ./...` skips
// them. Run them with:
//
//	go test -tags chaos -run Chaos -timeout 15m ./chaos/
//	go test -tags chaos -run Chaos/Random ./chaos/
//
// docs/RELIABILITY.md describes each test, what it kills and when, what it
// verifies, how long it takes, and what the suite does not cover.
package chaos
