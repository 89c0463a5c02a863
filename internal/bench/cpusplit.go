package bench

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"

	"github.com/google/pprof/profile"
)

// The sides of this process that the scale scenario tells apart by the
// pprof label sideLabel of their goroutines (a goroutine inherits the
// labels of the one that starts it): the embedded server, the engine
// (the workers, their connections and the activities they run), and the
// bench (its client: the start calls and the watches, the load
// generator). The server's stream and consumer goroutines replace the
// labels they inherit with their own, which all have serverLabel. What
// carries no label (the garbage collector's background work, timers'
// goroutines, the runtime) is "other".
const (
	sideLabel  = "jetflow-bench"
	sideServer = "server"
	sideEngine = "engine"
	sideBench  = "bench"
	sideOther  = "other"
	// serverLabel is the label nats-server gives the goroutines it
	// labels (its value is the account's name).
	serverLabel = "account"
)

// onSide runs f with the calling goroutine labelled side, so that the
// goroutines f starts, and theirs, are too.
func onSide(ctx context.Context, side string, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(sideLabel, side), f)
}

// cpuSplit profiles this process's CPU while run runs and returns each
// side's share of it. ok is false, and the shares nil, when a CPU profile
// is already being written (jetflow bench --cpuprofile): there is one
// profiler per process.
func cpuSplit(run func() error) (shares map[string]float64, ok bool, err error) {
	var buf bytes.Buffer
	if pprof.StartCPUProfile(&buf) != nil {
		return nil, false, run()
	}
	err = run()
	pprof.StopCPUProfile()
	if err != nil {
		return nil, true, err
	}
	shares, err = sideShares(buf.Bytes())
	return shares, true, err
}

// sideShares reads a CPU profile and sums its samples by side.
func sideShares(data []byte) (map[string]float64, error) {
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading the CPU profile: %w", err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("reading the CPU profile: no cpu samples")
	}
	by := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		side := sideOther
		switch l := s.Label[sideLabel]; {
		case len(l) > 0:
			side = l[0]
		case len(s.Label[serverLabel]) > 0:
			side = sideServer
		}
		by[side] += s.Value[idx]
		total += s.Value[idx]
	}
	shares := map[string]float64{}
	for _, side := range []string{sideServer, sideEngine, sideBench, sideOther} {
		shares[side] = 0 // every side, at 0 when the profile took no sample
		if total > 0 {
			shares[side] = float64(by[side]) / float64(total)
		}
	}
	return shares, nil
}
