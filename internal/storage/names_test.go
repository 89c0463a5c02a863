package storage_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jetflow/jetflow/internal/storage"
	"github.com/stretchr/testify/require"
)

// tokenChars is everything EncodeToken may output: never '.', '*', '>' or
// whitespace, which would split or widen a subject.
var tokenChars = regexp.MustCompile(`^[-_=A-Za-z0-9]+$`)

var tokenCases = []struct {
	name, in, want string
}{
	{"plain id", "order-1", "order-1"},
	{"all plain characters", "AZaz09_-", "AZaz09_-"},
	{"dot", "a.b", "a=2Eb"},
	{"space", "a b", "a=20b"},
	{"colon", "tenant:42", "tenant=3A42"},
	{"equals sign", "a=b", "a=3Db"},
	{"escape lookalike", "x=2E", "x=3D2E"},
	{"star", "*", "=2A"},
	{"greater than", ">", "=3E"},
	{"unicode", "é", "=C3=A9"},
	{"empty string", "", "="},
	{"lone equals sign", "=", "=3D"},
	{"control character", "a\x00b", "a=00b"},
	{"high byte", "\xff", "=FF"},
}

func TestEncodeToken(t *testing.T) {
	t.Parallel()
	for _, tc := range tokenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := storage.EncodeToken(tc.in)
			require.Equal(t, tc.want, got)
			require.Regexp(t, tokenChars, got)
			back, err := storage.DecodeToken(got)
			require.NoError(t, err)
			require.Equal(t, tc.in, back)
		})
	}
}

func TestDecodeToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		in        string
		want      string
		withError bool
	}{
		{name: "plain", in: "order-1", want: "order-1"},
		{name: "escapes", in: "a=2Eb=20c", want: "a.b c"},
		{name: "lower-case hex", in: "a=2eb", want: "a.b"},
		{name: "empty string", in: "=", want: ""},
		{name: "escape cut short", in: "a=2", withError: true},
		{name: "equals sign at the end", in: "a=", withError: true},
		{name: "two equals signs", in: "==", withError: true},
		{name: "not hex", in: "=ZZ", withError: true},
		{name: "half hex", in: "=2G", withError: true},
		{name: "sign", in: "=+1", withError: true},
		{name: "minus", in: "=-1", withError: true},
		{name: "space", in: "= 1", withError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := storage.DecodeToken(tc.in)
			if tc.withError {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func FuzzEncodeToken(f *testing.F) {
	for _, tc := range tokenCases {
		f.Add(tc.in)
	}
	f.Add("=2E")
	f.Add("a.b.c.>")
	f.Fuzz(func(t *testing.T, s string) {
		enc := storage.EncodeToken(s)
		if !tokenChars.MatchString(enc) {
			t.Fatalf("EncodeToken(%q) = %q: not only [-_=A-Za-z0-9]", s, enc)
		}
		dec, err := storage.DecodeToken(enc)
		if err != nil {
			t.Fatalf("DecodeToken(EncodeToken(%q) = %q): %v", s, enc, err)
		}
		if dec != s {
			t.Fatalf("DecodeToken(EncodeToken(%q)) = %q", s, dec)
		}
		if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !isPlain(r) }) && enc != s {
			t.Fatalf("plain %q encoded as %q", s, enc)
		}
		// Any token, encoded or not, decodes without panicking.
		_, _ = storage.DecodeToken(s)
	})
}

func isPlain(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

func TestShard(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{1, 2, 7, 64, 100000} {
		n := storage.NewNames("jetflow", shards, 1)
		again := storage.NewNames("jetflow", shards, 1)
		seen := map[int]bool{}
		for i := range 2000 {
			id := "instance-" + strconv.Itoa(i)
			s := n.Shard(id)
			require.GreaterOrEqual(t, s, 0, "shards %d, id %s", shards, id)
			require.Less(t, s, shards, "shards %d, id %s", shards, id)
			require.Equal(t, s, n.Shard(id), "stable")
			require.Equal(t, s, again.Shard(id), "stable across Names values")
			seen[s] = true
		}
		// FNV spreads 2000 ids over every one of a few shards.
		if shards <= 64 {
			require.Len(t, seen, shards, "shards %d", shards)
		}
	}

	// Shards are part of stored subjects: pin a few, so that a change of
	// hash is noticed (it would strand messages of running instances).
	n := storage.NewNames("jetflow", 64, 1)
	for id, want := range map[string]int{"order-1": 45, "a.b": 12, "é": 1, "": 5} {
		require.Equal(t, want, n.Shard(id), "shard of %q", id)
	}
	require.Equal(t, 2, storage.NewNames("jetflow", 7, 1).Shard("é"))
}

func TestNames(t *testing.T) {
	t.Parallel()
	n := storage.NewNames("hub1", 64, 1)
	require.Equal(t, "hub1", n.Hub())
	require.Equal(t, "hub1-status", n.StatusBucket())
	require.Equal(t, "hub1-history", n.HistoryBucket(0))
	require.Equal(t, "hub1-registry", n.RegistryBucket())
	require.Equal(t, "hub1-orch", n.InboxStream(0))
	require.Equal(t, "hub1-act", n.TaskStream(0))
	require.Equal(t, "orch-E1_HelloSequence", n.InboxConsumer("E1_HelloSequence"))
	require.Equal(t, "orch-a=2Eb", n.InboxConsumer("a.b"))
	require.Equal(t, "hub1.orch.>", n.InboxesFilter())
	require.Equal(t, "hub1.orch.a=2Eb.>", n.OrchestratorInboxFilter("a.b"))

	require.Equal(t, "hub1.orch.Order.45.order-1", n.InboxSubject("Order", "order-1"))
	require.Equal(t, "hub1.orch.a=2Eb.12.a=2Eb", n.InboxSubject("a.b", "a.b"))
	require.Equal(t, "hub1.orch.*.12.a=2Eb", n.InstanceInboxFilter("a.b"))
	require.Equal(t, "hub1.timer.45.order-1.exec=2E1.3", n.TimerSubject("order-1", "exec.1", 3))
	require.Equal(t, "hub1.timer.45.order-1.s1=2E2.start", n.StartSubject("order-1", "s1.2"))
	require.True(t, strings.HasPrefix(n.StartSubject("order-1", "s1"), strings.TrimSuffix(n.TimerFilter("order-1"), ">")),
		"a start's schedule is among the instance's timers, which a purge removes")
	require.Equal(t, "hub1.act.E1_SayHello", n.TaskSubject("E1_SayHello", "id"))
	require.Equal(t, "hub1.act.say=20hello=2E", n.TaskSubject("say hello.", "id"))
	require.Equal(t, "act-say=20hello=2E", n.TaskConsumer("say hello."))

	require.Equal(t, "order-1", n.StatusKey("order-1"))
	require.Equal(t, "a=2Eb", n.StatusKey("a.b"))
	require.Equal(t, "a=2Eb.00000012", n.HistoryKey("a.b", 12))
	require.Equal(t, "x.4294967295", n.HistoryKey("x", 1<<32-1))
	require.Equal(t, "a=2Eb.*", n.HistoryFilter("a.b"))
	require.Equal(t, "orchestrator.E1_HelloSequence", n.RegistryKey(storage.KindOrchestrator, "E1_HelloSequence"))
	require.Equal(t, "activity.a=3Ab", n.RegistryKey(storage.KindActivity, "a:b"))

	// Whatever the id, an inbox subject has exactly five tokens and a
	// timer subject six, so that filters and shard claims keep working.
	for _, tc := range tokenCases {
		require.Len(t, strings.Split(n.InboxSubject(tc.in, tc.in), "."), 5, "id %q", tc.in)
		require.Len(t, strings.Split(n.TimerSubject(tc.in, tc.in, 7), "."), 6, "id %q", tc.in)
		require.Len(t, strings.Split(n.HeldSubject(tc.in, tc.in), "."), 6, "id %q", tc.in)
		require.True(t, strings.HasPrefix(n.HeldSubject(tc.in, "m"), strings.TrimSuffix(n.TimerFilter(tc.in), ">")),
			"a deferred message is among the instance's timers, which a purge removes")
		require.Len(t, strings.Split(n.HistoryKey(tc.in, 1), "."), 2, "id %q", tc.in)
		require.Len(t, strings.Split(n.TaskSubject(tc.in, "id"), "."), 3, "name %q", tc.in)
	}
}

// TestPartitionedNames: on a hub of several partitions, each partition has
// its own inbox, task and history streams, and every subject of an
// instance (inbox, timers, its activities' tasks, its history) belongs to
// the streams of its partition and no other.
func TestPartitionedNames(t *testing.T) {
	t.Parallel()
	n := storage.NewNames("hub1", 64, 4)
	require.Equal(t, 4, n.Partitions())
	require.Equal(t, "hub1-orch-3", n.InboxStream(3))
	require.Equal(t, "hub1-act-0", n.TaskStream(0))
	require.Equal(t, "hub1-history-2", n.HistoryBucket(2))
	require.Equal(t, "KV_hub1-history-2", n.HistoryStream(2))
	require.Equal(t, "hub1-status", n.StatusBucket(), "one status bucket, whatever the partitions")
	require.Equal(t, "hub1.act.E1_SayHello.*", n.TaskFilter("E1_SayHello"))
	require.Len(t, n.Streams(), 2+3*4)
	require.Len(t, n.InboxStreamSubjects(1), 2*16, "the inbox and timer subjects of 16 shards")

	for _, tc := range tokenCases {
		id := tc.in
		p := n.Partition(id)
		require.Equal(t, n.Shard(id)%4, p)
		for q := range n.Partitions() {
			in := q == p
			for _, subject := range []string{n.InboxSubject("Order", id), n.TimerSubject(id, "e1", 3),
				n.StartSubject(id, "e1"), n.ExpirySubject(id, "e1"), n.HeldSubject(id, "m")} {
				require.Equal(t, in, matchesAny(subject, n.InboxStreamSubjects(q)), "%s in partition %d", subject, q)
			}
			require.Equal(t, in, matchesAny(n.TaskSubject("E1_SayHello", id), n.TaskStreamSubjects(q)), "task of %q in partition %d", id, q)
			require.Equal(t, in, strings.HasPrefix(n.HistorySubject(id, 1), "$KV."+n.HistoryBucket(q)+"."), "history of %q in partition %d", id, q)
		}
		require.True(t, matchesAny(n.TaskSubject("E1_SayHello", id), []string{n.TaskFilter("E1_SayHello")}))
		require.False(t, matchesAny(n.TaskSubject("E1_SayHello", id), []string{n.TaskFilter("E1_SayHell")}))
	}

	// One partition is the layout of hubs made before partitions.
	one := storage.NewNames("hub1", 64, 1)
	require.Equal(t, "64", one.Layout())
	require.Equal(t, "64/4", n.Layout())
	for _, tc := range []struct {
		in                 string
		shards, partitions int
	}{{"64", 64, 1}, {"64/4", 64, 4}, {"7/7", 7, 7}} {
		shards, partitions, err := storage.ParseLayout(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, [2]int{tc.shards, tc.partitions}, [2]int{shards, partitions}, tc.in)
	}
	for _, bad := range []string{"", "x", "0", "64/", "64/0", "4/8", "64/x", "-1/1"} {
		_, _, err := storage.ParseLayout(bad)
		require.ErrorContains(t, err, "is not a layout", "%q", bad)
	}
}

// matchesAny reports whether subject matches one of the filters (NATS
// wildcards: '*' one token, '>' the rest).
func matchesAny(subject string, filters []string) bool {
	for _, f := range filters {
		s, ft := strings.Split(subject, "."), strings.Split(f, ".")
		match := true
		for i, tok := range ft {
			if tok == ">" {
				match = len(s) > i
				break
			}
			if i >= len(s) || (tok != "*" && tok != s[i]) {
				match = false
				break
			}
			if i == len(ft)-1 && len(s) != len(ft) {
				match = false
			}
		}
		if match {
			return true
		}
	}
	return false
}
