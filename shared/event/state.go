package event

// State is Gemini's view of a job, as far as geminihooks has learned it.
type State string

// Job states in rank order. Terminal states never change once reached.
const (
	StateUnknown        State = ""
	StateSubmitted      State = "submitted"
	StateRunning        State = "running"
	StateRequiresAction State = "requires_action"
	StateSucceeded      State = "succeeded"
	StateFailed         State = "failed"
	StateExpired        State = "expired"
	StateCancelled      State = "cancelled"
)

// Event types Gemini documents.
const (
	TypeBatchSucceeded            = "batch.succeeded"
	TypeBatchFailed               = "batch.failed"
	TypeBatchExpired              = "batch.expired"
	TypeBatchCancelled            = "batch.cancelled"
	TypeVideoGenerated            = "video.generated"
	TypeInteractionCompleted      = "interaction.completed"
	TypeInteractionFailed         = "interaction.failed"
	TypeInteractionRequiresAction = "interaction.requires_action"
	TypeInteractionCancelled      = "interaction.cancelled"
)

var stateOfType = map[string]State{
	TypeBatchSucceeded:            StateSucceeded,
	TypeBatchFailed:               StateFailed,
	TypeBatchExpired:              StateExpired,
	TypeBatchCancelled:            StateCancelled,
	TypeVideoGenerated:            StateSucceeded,
	TypeInteractionCompleted:      StateSucceeded,
	TypeInteractionFailed:         StateFailed,
	TypeInteractionRequiresAction: StateRequiresAction,
	TypeInteractionCancelled:      StateCancelled,
}

// StateOf maps an event type to the job state it announces; ok is false for
// event types geminihooks does not know (they are recorded, not interpreted).
func StateOf(eventType string) (s State, ok bool) {
	s, ok = stateOfType[eventType]
	return s, ok
}

// Known reports whether geminihooks interprets this event type.
func Known(eventType string) bool { _, ok := stateOfType[eventType]; return ok }

func (s State) rank() int {
	switch s {
	case StateSubmitted:
		return 1
	case StateRunning:
		return 2
	case StateRequiresAction:
		return 3
	case StateSucceeded, StateFailed, StateExpired, StateCancelled:
		return 4
	}
	return 0
}

// Terminal reports whether the job can no longer change state.
func (s State) Terminal() bool { return s.rank() == 4 }

// Supersedes reports whether moving from old to s is progress: s ranks
// higher than old. Equal ranks never supersede, so a duplicate or a second
// terminal event never overwrites the first.
func (s State) Supersedes(old State) bool { return s.rank() > old.rank() }
