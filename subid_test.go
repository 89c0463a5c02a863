package jetflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow/internal/history"
)

// childIDs runs the first turn of an orchestrator that starts n
// sub-orchestrations with default ids under parent id, and returns the ids
// it asked for (the sim checks that a replay asks for the same).
func childIDs(t *testing.T, parent string, n int) []string {
	t.Helper()
	r := testRegistry(t)
	addOrchestrator(t, r, "Child", func(ctx *OrchestrationContext) (any, error) { return nil, nil })
	addOrchestrator(t, r, "Parent", func(ctx *OrchestrationContext) (any, error) {
		tasks := make([]Task, n)
		for i := range tasks {
			tasks[i] = ctx.CallSubOrchestrator("Child", i)
		}
		return nil, ctx.WhenAll(tasks...).Await(nil)
	})
	s := newSim(t, r, parent)
	res := s.start("Parent", nil)
	require.False(t, res.Done, "%+v", res.Events)
	var ids []string
	for _, e := range res.Events {
		require.Equal(t, history.SubOrchestrationCreated, e.Type)
		ids = append(ids, e.InstanceID)
	}
	require.Len(t, ids, n)
	return ids
}

// TestSubOrchestrationDefaultIDIsValid: a parent id of up to 100
// characters gives children ids that are valid instance ids themselves,
// distinct, ending in ":<event id>", and the same on every replay; short
// parents keep the plain "<parent>:<event id>".
func TestSubOrchestrationDefaultIDIsValid(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"parent:0", "parent:1"}, childIDs(t, "parent", 2), "short parents keep their children's ids")
	// 98 characters + ":0" is 100, which fits; ":10" does not.
	fits := strings.Repeat("f", 98)
	require.Equal(t, fits+":0", childIDs(t, fits, 1)[0])

	long := strings.Repeat("p", 100)
	unicode := "élève-" + strings.Repeat("ü", 89) + "-😀😀😀😀" // 100 characters, multi-byte
	sharedPrefix := strings.Repeat("p", 99) + "q"           // differs from long only in its last character
	require.Equal(t, 100, utf8.RuneCountInString(unicode))
	seen := map[string]string{}
	for _, parent := range []string{fits, long, unicode, sharedPrefix} {
		ids := childIDs(t, parent, 12)
		require.Equal(t, ids, childIDs(t, parent, 12), "the same parent derives the same ids")
		for n, id := range ids {
			require.NoError(t, ValidateInstanceID(id), "child %d of %q: %q", n, parent, id)
			require.True(t, strings.HasSuffix(id, fmt.Sprintf(":%d", n)), "%q ends in its event id %d", id, n)
			require.NotEqual(t, parent, id)
			if other, dup := seen[id]; dup {
				t.Fatalf("child id %q derived twice: from %q and %q", id, other, parent)
			}
			seen[id] = parent
		}
	}
	// A derived id keeps the start of the parent's id, to be recognisable.
	id := childIDs(t, unicode, 1)[0]
	require.True(t, strings.HasPrefix(id, "élève-üüü"), id)
}

// TestSubOrchestrationExplicitIDIsChecked: an explicit child id that is
// not a valid instance id fails the call, naming the rule, and starts
// nothing.
func TestSubOrchestrationExplicitIDIsChecked(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "Child", func(ctx *OrchestrationContext) (any, error) { return nil, nil })
	addOrchestrator(t, r, "Parent", func(ctx *OrchestrationContext) (any, error) {
		var id string
		if err := ctx.GetInput(&id); err != nil {
			return nil, err
		}
		err := ctx.CallSubOrchestrator("Child", nil, WithSubInstanceID(id)).Await(nil)
		if !errors.Is(err, ErrInvalidInstanceID) {
			return nil, fmt.Errorf("want ErrInvalidInstanceID, got %v", err)
		}
		return err.Error(), nil
	})
	for _, tc := range []struct{ id, want string }{
		{strings.Repeat("x", 101), "101 characters, more than 100"},
		{"a#b", `'#'`},
	} {
		s := newSim(t, r, "parent")
		res := s.start("Parent", tc.id)
		require.Len(t, res.Events, 1, "nothing is scheduled")
		end := s.final()
		require.Equal(t, history.StatusCompleted, end.Status, "%+v", end.Failure)
		var msg string
		require.NoError(t, json.Unmarshal(end.Result, &msg))
		require.Contains(t, msg, `calling sub-orchestrator "Child": invalid instance id`)
		require.Contains(t, msg, tc.want)
	}
}
