// Package testkit holds the helpers that jetflow's tests share: waiting on
// a condition, receiving from a channel with a timeout, and checking a
// stored history against the invariants every history holds.
//
// # Waiting
//
// A test never sleeps to wait for something to happen: it waits for the
// condition with [WaitFor] (or [WaitForNoError], whose failure says why
// the condition did not hold), which polls it at a short interval and
// fails the test, naming what it waited for, when the timeout passes.
// Channels are read with [Receive], [Next], [Collect] and [Quiet], which
// fail the test instead of blocking it for ever. Every helper must be
// called from the test's goroutine (it may call t.FailNow), and the
// conditions it polls run there too, so they may use require.
//
// # Histories
//
// [CheckChunks] and [CheckHistory] check what holds for every instance's
// stored history, finished or not, whatever the orchestrator did; a test
// adds the checks that its own scenario implies.
//
// This package is internal and used only by tests: it may change at any
// time.
package testkit
