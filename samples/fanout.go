package samples

import (
	"fmt"
	"time"

	"github.com/jetflow/jetflow"
)

// DefaultFanOut is how many activities FanOutFanIn calls when its input
// is null or 0.
const DefaultFanOut = 20

// MaxFanOut bounds FanOutFanIn's input, so that one request cannot
// schedule an unbounded number of activities.
const MaxFanOut = 1000

// FanOutFanIn calls Square for 1, 2, …, n in parallel (n is its input, an
// integer from 0 to MaxFanOut; null or 0 means DefaultFanOut), waits for
// all of them with WhenAll and returns the sum of the results:
// n(n+1)(2n+1)/6, 2870 for n = 20.
func FanOutFanIn(ctx *jetflow.OrchestrationContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, fmt.Errorf("input must be an integer from 0 to %d: %w", MaxFanOut, err)
	}
	if n < 0 || n > MaxFanOut {
		return nil, fmt.Errorf("input must be an integer from 0 to %d, not %d", MaxFanOut, n)
	}
	if n == 0 {
		n = DefaultFanOut
	}
	tasks := make([]jetflow.Task, n)
	for i := range tasks {
		tasks[i] = ctx.CallActivity("Square", i+1)
	}
	var squares []int
	if err := ctx.WhenAll(tasks...).Await(&squares); err != nil {
		return nil, err
	}
	sum := 0
	for _, s := range squares {
		sum += s
	}
	return sum, nil
}

// SumOfSquares is FanOutFanIn's output for input n (n > 0).
func SumOfSquares(n int) int { return n * (n + 1) * (2*n + 1) / 6 }

// Square returns its integer input squared.
func Square(ctx *jetflow.ActivityContext) (any, error) {
	var x int
	if err := ctx.GetInput(&x); err != nil {
		return nil, err
	}
	return x * x, nil
}

// Delay waits for a durable timer of n seconds (its input, an integer
// from 0 to 86400; null means 0), then returns n. The timer survives
// worker and server restarts and fires after downtime.
func Delay(ctx *jetflow.OrchestrationContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, fmt.Errorf("input must be a number of seconds from 0 to 86400: %w", err)
	}
	if n < 0 || n > 86400 {
		return nil, fmt.Errorf("input must be a number of seconds from 0 to 86400, not %d", n)
	}
	if err := ctx.CreateTimer(time.Duration(n) * time.Second).Await(nil); err != nil {
		return nil, err
	}
	return n, nil
}
