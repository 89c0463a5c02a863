package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/samples"
)

// The orchestrations the samples lack, which the randomized test needs:
// sub-orchestrations and continue-as-new (with and without external
// events). They run in the chaos worker (chaos/chaosworker) beside the
// samples.
const (
	// ParentName calls three samples as sub-orchestrations, then the
	// step activity (see Parent).
	ParentName = "ChaosParent"
	// CounterName continues as new from generation to generation (see
	// Counter).
	CounterName = "ChaosCounter"
	// AccumulatorName adds up external events, one per execution (see
	// Accumulator).
	AccumulatorName = "ChaosAccumulator"
	// StepActivity returns its input.
	StepActivity = "ChaosStep"
	// AddEvent is the event Accumulator waits for: an integer.
	AddEvent = "Add"
)

// Register adds the samples (with their default options) and the chaos
// orchestrations to r. When runs is not nil, every activity, the samples'
// included, records each of its runs in it before it does anything else.
func Register(r *jetflow.Registry, runs *RunLog) error {
	s := jetflow.NewRegistry()
	if err := samples.Register(s, samples.Options{}); err != nil {
		return err
	}
	for _, name := range s.OrchestratorNames() {
		o, _ := s.Orchestrator(name)
		if err := r.AddOrchestrator(name, o); err != nil {
			return err
		}
	}
	for name, o := range map[string]jetflow.Orchestrator{
		ParentName:      Parent,
		CounterName:     Counter,
		AccumulatorName: Accumulator,
	} {
		if err := r.AddOrchestrator(name, o); err != nil {
			return err
		}
	}
	acts := map[string]jetflow.Activity{StepActivity: Step}
	for _, name := range s.ActivityNames() {
		acts[name], _ = s.Activity(name)
	}
	for name, a := range acts {
		if err := r.AddActivity(name, runs.recorded(a)); err != nil {
			return err
		}
	}
	return nil
}

// ParentOutput is Parent's output.
type ParentOutput struct {
	Hello []string `json:"hello"`
	Sum   int      `json:"sum"`
	Delay int      `json:"delay"`
	Step  string   `json:"step"`
}

// ParentFanOut and ParentDelay are the inputs Parent gives its FanOutFanIn
// and Delay children.
const (
	ParentFanOut = 5
	ParentDelay  = 1
)

// Parent starts E1_HelloSequence, FanOutFanIn of ParentFanOut and Delay of
// ParentDelay seconds as sub-orchestrations with their default ids
// ("<id>:0", "<id>:1", "<id>:2"), waits for all three, then calls the
// step activity with "parent" and returns a ParentOutput.
func Parent(ctx *jetflow.OrchestrationContext) (any, error) {
	hello := ctx.CallSubOrchestrator("E1_HelloSequence", nil)
	fan := ctx.CallSubOrchestrator("FanOutFanIn", ParentFanOut)
	delay := ctx.CallSubOrchestrator("Delay", ParentDelay)
	var out ParentOutput
	if err := hello.Await(&out.Hello); err != nil {
		return nil, err
	}
	if err := fan.Await(&out.Sum); err != nil {
		return nil, err
	}
	if err := delay.Await(&out.Delay); err != nil {
		return nil, err
	}
	if err := ctx.CallActivity(StepActivity, "parent").Await(&out.Step); err != nil {
		return nil, err
	}
	return out, nil
}

// WantParent is Parent's output.
func WantParent() ParentOutput {
	return ParentOutput{
		Hello: []string{"Hello Tokyo!", "Hello Seattle!", "Hello London!"},
		Sum:   samples.SumOfSquares(ParentFanOut),
		Delay: ParentDelay,
		Step:  "parent",
	}
}

// CounterState is Counter's input.
type CounterState struct {
	Gen   int `json:"gen"`
	Until int `json:"until"`
}

// CounterTimer is the timer Counter waits for in odd generations.
const CounterTimer = 500 * time.Millisecond

// Counter shows its generation as its custom status, calls the step
// activity with its state (and checks the echo), waits CounterTimer in
// odd generations, and continues as new with the next generation until
// Gen reaches Until; it returns Until.
func Counter(ctx *jetflow.OrchestrationContext) (any, error) {
	var c CounterState
	if err := ctx.GetInput(&c); err != nil {
		return nil, err
	}
	if err := ctx.SetCustomStatus(c.Gen); err != nil {
		return nil, err
	}
	var echo CounterState
	if err := ctx.CallActivity(StepActivity, c).Await(&echo); err != nil {
		return nil, err
	}
	if echo != c {
		return nil, fmt.Errorf("step returned %+v for %+v", echo, c)
	}
	if c.Gen%2 == 1 {
		if err := ctx.CreateTimer(CounterTimer).Await(nil); err != nil {
			return nil, err
		}
	}
	if c.Gen >= c.Until {
		return c.Gen, nil
	}
	ctx.ContinueAsNew(CounterState{Gen: c.Gen + 1, Until: c.Until})
	return nil, nil
}

// AccumulatorState is Accumulator's input.
type AccumulatorState struct {
	Sum  int `json:"sum"`
	Got  int `json:"got"`
	Want int `json:"want"`
}

// Accumulator shows how many Add events it has had as its custom status,
// waits for the next one, adds its value to Sum, and continues as new
// until it has had Want of them; it returns Sum. Events raised while an
// execution ends are carried over to the next one, so each event is
// added exactly once: raised with the values 1, 2, 4…, the output tells
// which were.
func Accumulator(ctx *jetflow.OrchestrationContext) (any, error) {
	var a AccumulatorState
	if err := ctx.GetInput(&a); err != nil {
		return nil, err
	}
	if err := ctx.SetCustomStatus(a.Got); err != nil {
		return nil, err
	}
	var v int
	if err := ctx.WaitForExternalEvent(AddEvent).Await(&v); err != nil {
		return nil, err
	}
	a.Sum += v
	a.Got++
	if a.Got >= a.Want {
		return a.Sum, nil
	}
	ctx.ContinueAsNew(a)
	return nil, nil
}

// Step returns its input.
func Step(ctx *jetflow.ActivityContext) (any, error) {
	var in json.RawMessage
	if err := ctx.GetInput(&in); err != nil {
		return nil, err
	}
	return in, nil
}

// RunLog records activity runs, one JSON line (a Run) each, appended to a
// file that every worker of a test shares. A line is one write(2) to a
// file opened with O_APPEND, made before the activity runs: it survives a
// kill -9 of its worker (the kernel has it), and lines of different
// workers do not mix.
type RunLog struct {
	mu  sync.Mutex
	f   *os.File
	pid int
}

// Run is one activity run.
type Run struct {
	// Instance and Task identify the call: the calling instance and the
	// ID of its TaskScheduled event (IDs restart in every execution, so
	// calls of an instance that continues as new differ by their input).
	Instance string          `json:"i"`
	Task     int32           `json:"t"`
	Name     string          `json:"n"`
	Input    json.RawMessage `json:"in"`
	// PID is the process that ran it; At is when it began (Unix ns).
	PID int   `json:"pid"`
	At  int64 `json:"at"`
}

// OpenRunLog opens (creating it if need be) the run log at path.
func OpenRunLog(path string) (*RunLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &RunLog{f: f, pid: os.Getpid()}, nil
}

// recorded wraps a so that each run is recorded first; with a nil log it
// returns a unchanged.
func (l *RunLog) recorded(a jetflow.Activity) jetflow.Activity {
	if l == nil {
		return a
	}
	return func(ctx *jetflow.ActivityContext) (any, error) {
		var in json.RawMessage
		if err := ctx.GetInput(&in); err != nil {
			return nil, err
		}
		b, err := json.Marshal(Run{Instance: ctx.InstanceID(), Task: ctx.TaskID(), Name: ctx.Name(), Input: in, PID: l.pid, At: time.Now().UnixNano()})
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		_, err = l.f.Write(append(b, '\n'))
		l.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("recording the run: %w", err)
		}
		return a(ctx)
	}
}

// RunKey identifies one activity call across its runs.
func (r Run) RunKey() string {
	return r.Instance + "\x00" + strconv.Itoa(int(r.Task)) + "\x00" + string(compactJSON(r.Input))
}

// CallKey is RunKey for a call read from history.
func CallKey(instance string, task int32, input json.RawMessage) string {
	return Run{Instance: instance, Task: task, Input: input}.RunKey()
}

func compactJSON(b json.RawMessage) []byte {
	var v any
	if len(b) == 0 {
		return []byte("null")
	}
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, _ := json.Marshal(v)
	return out
}
