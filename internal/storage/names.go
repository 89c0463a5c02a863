package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// DefaultHub is the hub used when none is configured.
const DefaultHub = "jetflow"

// Names builds every stream, bucket, subject and key name of one hub: no
// other file of the package spells one.
type Names struct {
	hub        string
	shards     int
	partitions int
}

// NewNames returns the names of hub with the given number of inbox shards,
// whose inbox, task and history streams are spread over partitions
// streams each (0 counts as 1).
func NewNames(hub string, shards, partitions int) Names {
	return Names{hub: hub, shards: shards, partitions: max(partitions, 1)}
}

// Hub returns the hub name.
func (n Names) Hub() string { return n.hub }

// Partitions is how many streams each of the inbox, the tasks and the
// history is spread over.
func (n Names) Partitions() int { return n.partitions }

// Partition returns the partition of an instance: the streams that hold
// its inbox messages and timers, its history and the tasks of its
// activities. It is its shard modulo the partitions, so that a partition
// is a set of whole shards.
func (n Names) Partition(id string) int { return n.Shard(id) % n.partitions }

// partitioned names a stream or bucket of partition p: the name itself on
// a hub of one partition (the layout of hubs made before partitions),
// and the name with "-<p>" after it on others.
func (n Names) partitioned(name string, p int) string {
	if n.partitions == 1 {
		return name
	}
	return name + "-" + strconv.Itoa(p)
}

// StatusBucket is the KV bucket of instance statuses.
func (n Names) StatusBucket() string { return n.hub + "-status" }

// HistoryBucket is the KV bucket of the history chunks of partition p.
func (n Names) HistoryBucket(p int) string { return n.partitioned(n.hub+"-history", p) }

// RegistryBucket is the KV bucket of registered names.
func (n Names) RegistryBucket() string { return n.hub + "-registry" }

// InboxStream is the stream of the orchestration messages and timers of
// partition p.
func (n Names) InboxStream(p int) string { return n.partitioned(n.hub+"-orch", p) }

// TaskStream is the stream of the activity tasks of partition p.
func (n Names) TaskStream(p int) string { return n.partitioned(n.hub+"-act", p) }

// InboxStreamSubjects are the subjects of InboxStream(p): the inbox and
// timer subjects of its shards.
func (n Names) InboxStreamSubjects(p int) []string {
	if n.partitions == 1 {
		return []string{n.InboxesFilter(), n.TimersFilter()}
	}
	var out []string
	for s := p; s < n.shards; s += n.partitions {
		shard := strconv.Itoa(s)
		out = append(out, n.hub+".orch.*."+shard+".*", n.hub+".timer."+shard+".>")
	}
	return out
}

// TaskStreamSubjects are the subjects of TaskStream(p).
func (n Names) TaskStreamSubjects(p int) []string {
	if n.partitions == 1 {
		return []string{n.TasksFilter()}
	}
	return []string{n.hub + ".act.*." + strconv.Itoa(p)}
}

// InboxConsumer is the durable consumer that the workers of one
// orchestrator share: the inbox messages of its instances. It is "orch-"
// and the name's [EncodeToken], shortened to a prefix of it and a hash of
// the name when that would be over JetStream's 255 characters.
func (n Names) InboxConsumer(orchestrator string) string { return orchPrefix + orchToken(orchestrator) }

// TaskConsumer is the durable consumer of one activity's tasks. It is
// "act-" and the name's [EncodeToken], shortened like InboxConsumer's.
func (n Names) TaskConsumer(activity string) string {
	// Consumer names may not hold '.', '*', '>' or whitespace: the token
	// encoding keeps only [-_=A-Za-z0-9], and '=' is allowed.
	return actPrefix + actToken(activity)
}

// maxConsumerName is JetStream's limit on the length of a consumer name.
const maxConsumerName = 255

const (
	orchPrefix = "orch-"
	actPrefix  = "act-"
)

func orchToken(name string) string { return nameToken(name, maxConsumerName-len(orchPrefix)) }
func actToken(name string) string  { return nameToken(name, maxConsumerName-len(actPrefix)) }

// nameToken is the token that stands for an orchestrator or activity name
// in its consumer's name and in its subjects: [EncodeToken] of the name
// when that is at most max bytes long, so that every name that fitted
// keeps its consumer and subjects. A longer encoding (a long name, or one
// of non-ASCII characters: up to 12 bytes each) is cut to its first
// escapes, without splitting one, followed by "==" and 16 hex digits of
// the SHA-256 of the name. An encoding never holds "==" (an escape is '='
// and two hex digits), so a shortened token is not any other name's, and
// DecodeToken refuses it instead of decoding it wrongly. Subjects built
// with it stay short: at most 250 bytes of name, well within a protocol
// line (4096 bytes by default) with the longest id.
func nameToken(name string, max int) string {
	enc := EncodeToken(name)
	if len(enc) <= max {
		return enc
	}
	sum := sha256.Sum256([]byte(name))
	tail := "==" + hex.EncodeToString(sum[:8])
	cut := max - len(tail)
	if i := strings.LastIndexByte(enc[:cut], '='); i >= 0 && i > cut-3 {
		cut = i // enc[:cut] would end inside the escape at i
	}
	return enc[:cut] + tail
}

// Shard returns the inbox shard of an instance id.
func (n Names) Shard(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n.shards))
}

// InboxSubject is the inbox subject of an instance of orchestrator. The
// orchestrator's name (its token, as in InboxConsumer) routes the message
// to the workers that run it.
func (n Names) InboxSubject(orchestrator, id string) string {
	return n.hub + ".orch." + orchToken(orchestrator) + "." + strconv.Itoa(n.Shard(id)) + "." + EncodeToken(id)
}

// InboxesFilter matches every inbox subject.
func (n Names) InboxesFilter() string { return n.hub + ".orch.>" }

// OrchestratorInboxFilter matches the inbox subjects of one orchestrator's
// instances.
func (n Names) OrchestratorInboxFilter(orchestrator string) string {
	return n.hub + ".orch." + orchToken(orchestrator) + ".>"
}

// InstanceInboxFilter matches an instance's inbox subjects, whatever its
// orchestrator.
func (n Names) InstanceInboxFilter(id string) string {
	return n.hub + ".orch.*." + strconv.Itoa(n.Shard(id)) + "." + EncodeToken(id)
}

// TimerSubject is the subject holding the schedule of one timer. Each timer
// has its own subject: the server keeps one schedule per subject.
func (n Names) TimerSubject(id, executionID string, timerID int32) string {
	return fmt.Sprintf("%s.timer.%d.%s.%s.%d", n.hub, n.Shard(id), EncodeToken(id), EncodeToken(executionID), timerID)
}

// ExpirySubject is the subject holding the schedule of an execution's
// InstanceExpired message (among the instance's timers, so that a purge
// removes it).
func (n Names) ExpirySubject(id, executionID string) string {
	return fmt.Sprintf("%s.timer.%d.%s.%s.expire", n.hub, n.Shard(id), EncodeToken(id), EncodeToken(executionID))
}

// StartSubject is the subject holding the schedule of a start message
// for a later time (client.WithStartTime): the start of the run whose
// first execution is executionID, among the instance's timers, so that a
// purge removes it.
func (n Names) StartSubject(id, executionID string) string {
	return fmt.Sprintf("%s.timer.%d.%s.%s.start", n.hub, n.Shard(id), EncodeToken(id), EncodeToken(executionID))
}

// HeldSubject is the subject holding the schedule of an inbox message,
// of id msgID, deferred to its instance's scheduled start (among the
// instance's timers, so that a purge removes it): one per message, named
// by a hash of its id, so that deferring it again replaces the schedule.
// The execution token "held" is no execution's: their ids never end a
// subject in 16 hex digits.
func (n Names) HeldSubject(id, msgID string) string {
	sum := sha256.Sum256([]byte(msgID))
	return fmt.Sprintf("%s.timer.%d.%s.held.%s", n.hub, n.Shard(id), EncodeToken(id), hex.EncodeToString(sum[:8]))
}

// RetentionKey is the registry key recording the hub's retention (see
// Config.Retention).
func (n Names) RetentionKey() string { return "hub.retention" }

// TimerFilter matches the timer subjects of an instance.
func (n Names) TimerFilter(id string) string {
	return fmt.Sprintf("%s.timer.%d.%s.>", n.hub, n.Shard(id), EncodeToken(id))
}

// TaskSubject is the subject of a task of activity (its token, as in
// TaskConsumer) for instance id: on a hub of several partitions, the
// partition of the instance follows.
func (n Names) TaskSubject(activity, id string) string {
	if n.partitions == 1 {
		return n.tasks(activity)
	}
	return n.tasks(activity) + "." + strconv.Itoa(n.Partition(id))
}

// TaskFilter matches the task subjects of activity, in whichever
// partition.
func (n Names) TaskFilter(activity string) string {
	if n.partitions == 1 {
		return n.tasks(activity)
	}
	return n.tasks(activity) + ".*"
}

// tasks is the subject of an activity's tasks on a hub of one partition,
// and what their subjects begin with on others.
func (n Names) tasks(activity string) string { return n.hub + ".act." + actToken(activity) }

// StatusKey is an instance's key in the status bucket.
func (n Names) StatusKey(id string) string { return EncodeToken(id) }

// HistoryKey is the key of one history chunk (numbered from 1).
func (n Names) HistoryKey(id string, chunk uint32) string {
	return fmt.Sprintf("%s.%08d", EncodeToken(id), chunk)
}

// HistoryFilter matches every chunk key of an instance.
func (n Names) HistoryFilter(id string) string { return EncodeToken(id) + ".*" }

// RegistryKey is the key recording that a worker registered a name; kind is
// "orchestrator" or "activity".
func (n Names) RegistryKey(kind, name string) string { return kind + "." + EncodeToken(name) }

// ShardsKey is the registry key recording the hub's layout (Layout).
func (n Names) ShardsKey() string { return "hub.shards" }

// Layout is the value of ShardsKey for these names: the shard count, and
// "/" and the partition count after it when there are several partitions
// (so that a hub made before partitions reads as one partition, and a
// binary that knows no partitions refuses a partitioned hub instead of
// using the wrong streams).
func (n Names) Layout() string {
	if n.partitions == 1 {
		return strconv.Itoa(n.shards)
	}
	return strconv.Itoa(n.shards) + "/" + strconv.Itoa(n.partitions)
}

// ParseLayout reads a Layout value: the shard and partition counts.
func ParseLayout(v string) (shards, partitions int, err error) {
	s, p, several := strings.Cut(v, "/")
	shards, err = strconv.Atoi(s)
	partitions = 1
	if err == nil && several {
		partitions, err = strconv.Atoi(p)
	}
	if err != nil || shards < 1 || partitions < 1 || partitions > shards {
		return 0, 0, fmt.Errorf("%q is not a layout (<shards> or <shards>/<partitions>)", v)
	}
	return shards, partitions, nil
}

// ShardsSubject is the subject of the registry key ShardsKey.
func (n Names) ShardsSubject() string { return kvSubject(n.RegistryBucket(), n.ShardsKey()) }

// Streams names every stream of the hub, those behind its buckets too.
func (n Names) Streams() []string {
	out := []string{n.StatusStream(), n.RegistryStream()}
	for p := range n.partitions {
		out = append(out, n.InboxStream(p), n.TaskStream(p), n.HistoryStream(p))
	}
	return out
}

// StatusStream is the stream behind the status bucket.
func (n Names) StatusStream() string { return kvStream(n.StatusBucket()) }

// HistoryStream is the stream behind the history bucket of partition p.
func (n Names) HistoryStream(p int) string { return kvStream(n.HistoryBucket(p)) }

// RegistryStream is the stream behind the registry bucket.
func (n Names) RegistryStream() string { return kvStream(n.RegistryBucket()) }

// StatusSubject is the subject of an instance's status key.
func (n Names) StatusSubject(id string) string { return kvSubject(n.StatusBucket(), n.StatusKey(id)) }

// StatusSubjects matches every status subject.
func (n Names) StatusSubjects() string { return kvSubject(n.StatusBucket(), ">") }

// HistorySubject is the subject of one history chunk's key.
func (n Names) HistorySubject(id string, chunk uint32) string {
	return kvSubject(n.HistoryBucket(n.Partition(id)), n.HistoryKey(id, chunk))
}

// HistorySubjects matches the subjects of every chunk key of an instance.
func (n Names) HistorySubjects(id string) string {
	return kvSubject(n.HistoryBucket(n.Partition(id)), n.HistoryFilter(id))
}

// TimersFilter matches every timer subject.
func (n Names) TimersFilter() string { return n.hub + ".timer.>" }

// TasksFilter matches every task subject.
func (n Names) TasksFilter() string { return n.hub + ".act.>" }

// kvStream is the stream behind a KV bucket.
func kvStream(bucket string) string { return "KV_" + bucket }

// kvSubject is the subject of a key of a KV bucket.
func kvSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// msgGetSubject is the JetStream API subject that asks a stream's leader
// for one of its messages.
func msgGetSubject(stream string) string { return "$JS.API.STREAM.MSG.GET." + stream }

// directGetSubject is the JetStream API subject of a stream's direct gets,
// which any replica may answer.
func directGetSubject(stream string) string { return "$JS.API.DIRECT.GET." + stream }

func isPlain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

const hexDigits = "0123456789ABCDEF"

// EncodeToken makes s safe as one token of a subject or KV key, reversibly:
// bytes in [A-Za-z0-9_-] stay, every other byte becomes =XX (hex). An
// empty string becomes "=".
func EncodeToken(s string) string {
	if s == "" {
		return "="
	}
	plain := true
	for i := 0; i < len(s); i++ {
		if !isPlain(s[i]) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isPlain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// DecodeToken reverses EncodeToken.
func DecodeToken(t string) (string, error) {
	if t == "=" {
		return "", nil
	}
	if !strings.Contains(t, "=") {
		return t, nil
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		if t[i] != '=' {
			b.WriteByte(t[i])
			continue
		}
		if i+2 >= len(t) {
			return "", fmt.Errorf("bad escape at the end of %q", t)
		}
		v, err := strconv.ParseUint(t[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape %q in %q", t[i:i+3], t)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}
