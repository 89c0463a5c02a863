package storage_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
)

// maxConsumerName is JetStream's limit on a durable consumer's name.
const maxConsumerName = 255

// subjectBudget bounds every subject built from a name and an id: a
// client's protocol line (subject, reply subject, sizes) may be at most
// 4096 bytes (the server's default max_control_line), and the server
// closes the connection of a client that sends a longer one.
const subjectBudget = 2048

// TestLongNamesFit: every name ValidateName accepts, and every id
// ValidateInstanceID accepts, give consumer names JetStream accepts and
// subjects well within a protocol line, distinct for distinct names, and
// still readable: they start with the name's encoding.
func TestLongNamesFit(t *testing.T) {
	t.Parallel()
	n := storage.NewNames(strings.Repeat("h", 32), 1000, 1) // the longest hub
	longestID := strings.Repeat("😀", jetflow.MaxInstanceIDLength)
	require.NoError(t, jetflow.ValidateInstanceID(longestID))
	names := []string{
		strings.Repeat("ж", 100),       // the issue's: 100 characters, 600 bytes encoded
		strings.Repeat("ж", 100) + "x", // differs only after the readable prefix
		strings.Repeat("😀", 256),       // the longest encoding: 3072 bytes
		strings.Repeat("a", 256),
		strings.Repeat("a", 251),
		strings.Repeat(".", 256),
	}
	consumers := map[string]string{}
	for _, name := range names {
		require.NoError(t, jetflow.ValidateName(name))
		for _, c := range []string{n.InboxConsumer(name), n.TaskConsumer(name)} {
			require.LessOrEqual(t, len(c), maxConsumerName, "consumer of %q: %s", name, c)
			require.Regexp(t, tokenChars, c)
			if other, dup := consumers[c]; dup {
				t.Fatalf("consumer %s serves %q and %q", c, other, name)
			}
			consumers[c] = name
		}
		enc := storage.EncodeToken(name)
		require.True(t, strings.HasPrefix(n.TaskConsumer(name), "act-"+enc[:100]), "readable: %s", n.TaskConsumer(name))
		require.True(t, strings.HasPrefix(n.InboxConsumer(name), "orch-"+enc[:100]), "readable: %s", n.InboxConsumer(name))

		sub := n.InboxSubject(name, longestID)
		require.LessOrEqual(t, len(sub), subjectBudget, "inbox subject of %q", name)
		require.Len(t, strings.Split(sub, "."), 5, sub)
		require.True(t, strings.HasPrefix(sub, strings.TrimSuffix(n.OrchestratorInboxFilter(name), ">")),
			"the orchestrator's consumer filter matches its inbox subjects")
		require.LessOrEqual(t, len(n.TaskSubject(name, "x")), subjectBudget)
		require.LessOrEqual(t, len(n.TimerSubject(longestID, "exec", 1<<31-1)), subjectBudget)
		require.LessOrEqual(t, len("$KV."+n.RegistryBucket()+"."+n.RegistryKey(storage.KindOrchestrator, name)), 4096-512)
	}
	// Names that fitted keep their consumers and subjects, so running hubs
	// keep theirs.
	orch, act := strings.Repeat("o", 250), strings.Repeat("a", 251)
	require.Equal(t, "orch-"+orch, n.InboxConsumer(orch))
	require.Equal(t, n.Hub()+".orch."+orch+"."+strconv.Itoa(n.Shard("x"))+".x", n.InboxSubject(orch, "x"))
	require.Equal(t, n.Hub()+".orch."+orch+".>", n.OrchestratorInboxFilter(orch))
	require.Equal(t, "act-"+act, n.TaskConsumer(act))
	require.Equal(t, n.Hub()+".act."+act, n.TaskSubject(act, "x"))
	// A shortened token does not end inside an escape, and is no valid
	// encoding.
	for _, c := range []string{n.TaskConsumer(names[0]), n.InboxConsumer(names[2]), n.TaskConsumer(strings.Repeat("a", 200) + strings.Repeat("ж", 56))} {
		i := strings.Index(c, "==")
		require.Positive(t, i, c)
		require.Regexp(t, `^(orch|act)-([-_A-Za-z0-9]|=[0-9A-F]{2})*==[0-9a-f]{16}$`, c)
		_, err := storage.DecodeToken(strings.TrimPrefix(strings.TrimPrefix(c, "act-"), "orch-"))
		require.Error(t, err)
	}
}
