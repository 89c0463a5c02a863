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
	hub    string
	shards int
}

// NewNames returns the names of hub with the given number of inbox shards.
func NewNames(hub string, shards int) Names { return Names{hub: hub, shards: shards} }

// Hub returns the hub name.
func (n Names) Hub() string { return n.hub }

// StatusBucket is the KV bucket of instance statuses.
func (n Names) StatusBucket() string { return n.hub + "-status" }

// HistoryBucket is the KV bucket of history chunks.
func (n Names) HistoryBucket() string { return n.hub + "-history" }

// RegistryBucket is the KV bucket of registered names.
func (n Names) RegistryBucket() string { return n.hub + "-registry" }

// InboxStream is the stream of orchestration messages and timers.
func (n Names) InboxStream() string { return n.hub + "-orch" }

// TaskStream is the stream of activity tasks.
func (n Names) TaskStream() string { return n.hub + "-act" }

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

// RetentionKey is the registry key recording the hub's retention (see
// Config.Retention).
func (n Names) RetentionKey() string { return "hub.retention" }

// TimerFilter matches the timer subjects of an instance.
func (n Names) TimerFilter(id string) string {
	return fmt.Sprintf("%s.timer.%d.%s.>", n.hub, n.Shard(id), EncodeToken(id))
}

// TaskSubject is the task subject of an activity (its token, as in
// TaskConsumer).
func (n Names) TaskSubject(activity string) string { return n.hub + ".act." + actToken(activity) }

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

// ShardsKey is the registry key recording the hub's shard count (see
// Config.Shards).
func (n Names) ShardsKey() string { return "hub.shards" }

// ShardsSubject is the subject of the registry key ShardsKey.
func (n Names) ShardsSubject() string { return kvSubject(n.RegistryBucket(), n.ShardsKey()) }

// StatusStream is the stream behind the status bucket.
func (n Names) StatusStream() string { return kvStream(n.StatusBucket()) }

// HistoryStream is the stream behind the history bucket.
func (n Names) HistoryStream() string { return kvStream(n.HistoryBucket()) }

// RegistryStream is the stream behind the registry bucket.
func (n Names) RegistryStream() string { return kvStream(n.RegistryBucket()) }

// StatusSubject is the subject of an instance's status key.
func (n Names) StatusSubject(id string) string { return kvSubject(n.StatusBucket(), n.StatusKey(id)) }

// StatusSubjects matches every status subject.
func (n Names) StatusSubjects() string { return kvSubject(n.StatusBucket(), ">") }

// HistorySubject is the subject of one history chunk's key.
func (n Names) HistorySubject(id string, chunk uint32) string {
	return kvSubject(n.HistoryBucket(), n.HistoryKey(id, chunk))
}

// HistorySubjects matches the subjects of every chunk key of an instance.
func (n Names) HistorySubjects(id string) string {
	return kvSubject(n.HistoryBucket(), n.HistoryFilter(id))
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
