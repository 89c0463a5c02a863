//go:build !unix

package bench

import (
	"errors"
	"time"
)

// cpuTime is the CPU time this process has used, which this system does
// not tell (the scale scenario then reports none).
func cpuTime() (time.Duration, error) {
	return 0, errors.ErrUnsupported
}
