package testkit

import (
	"runtime"
	"strings"
)

// Goroutines counts the goroutines whose stack trace (header included)
// satisfies match: how leak tests see what is left running.
func Goroutines(match func(stack string) bool) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if match(g) {
			count++
		}
	}
	return count
}
