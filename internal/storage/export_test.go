package storage

// SetLeaderReads makes s read statuses and histories through the stream
// leaders, as it does on a replicated hub, so that the path is tested on
// a single server too.
func SetLeaderReads(s *Store, on bool) { s.leaderReads = on }

// RetryInProcess is retryInProcess, for its test.
var RetryInProcess = retryInProcess

// MapErrForTest is mapErr, for tests of what an error becomes.
func MapErrForTest(err error) error { return mapErr("test", err) }
