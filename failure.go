package jetflow

// Failure types: the Type of a [*TaskFailedError] (a failed activity or
// sub-orchestration, as the orchestrator sees it) and of a failed
// execution's failure (in its history), so that code can branch on why
// something failed.
const (
	// FailureActivityError: the activity returned an error.
	FailureActivityError = "ActivityError"
	// FailurePanic: the activity panicked; the message holds the value.
	FailurePanic = "Panic"
	// FailureActivityNotRegistered: no worker of the hub registered the
	// activity (or the one that took the task did not).
	FailureActivityNotRegistered = "ActivityNotRegistered"
	// FailureInvalidOutput: the activity's result is not valid JSON, or is
	// over MaxPayload.
	FailureInvalidOutput = "InvalidOutput"
	// FailureTimeout: an activity attempt ran past its start-to-close
	// timeout (WithActivityTimeout, WithStartToCloseTimeout).
	FailureTimeout = "Timeout"
	// FailurePoisonMessage: a message was delivered MaxDeliveries times
	// without being handled (its workers crashed or hung each time).
	FailurePoisonMessage = "PoisonMessage"
	// FailureTerminated: a sub-orchestration was terminated.
	FailureTerminated = "Terminated"
	// FailureOrchestratorError: the orchestrator returned an error or
	// panicked.
	FailureOrchestratorError = "OrchestratorError"
	// FailureOrchestratorNotRegistered: the worker running the instance
	// has no orchestrator of its name.
	FailureOrchestratorNotRegistered = "OrchestratorNotRegistered"
	// FailureNonDeterminism: on replay, the orchestrator asked for other
	// actions than its history records.
	FailureNonDeterminism = "NonDeterminism"
	// FailureInvalidHistory: the stored history cannot be replayed.
	FailureInvalidHistory = "InvalidHistory"
	// FailureInvalidInput: the execution's input is not valid JSON.
	FailureInvalidInput = "InvalidInput"
	// FailureInstanceExists: a sub-orchestration's instance id is taken by
	// a running instance.
	FailureInstanceExists = "InstanceExists"
	// FailureHistoryTooLarge: one turn's events would not fit in one
	// message of the NATS server.
	FailureHistoryTooLarge = "HistoryTooLarge"
	// FailureExecutorError: the engine itself failed while replaying (a
	// bug; the message says what).
	FailureExecutorError = "ExecutorError"
)
