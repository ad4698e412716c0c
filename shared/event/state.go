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
	// TypeWebhookPing is what a WebhookService ping delivers (its shape is
	// not documented; the Receiver records it and creates no job).
	TypeWebhookPing = "webhook.ping"
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

// Collectable reports whether a job in state s has results to collect:
// requires_action (the pending calls) or a terminal state.
func (s State) Collectable() bool { return s == StateRequiresAction || s.Terminal() }

// TypeVideoFailed is the type of results events for a video generation that
// failed. Gemini sends no event for it (its catalog has only
// video.generated); the name follows the catalog's pattern.
const TypeVideoFailed = "video.failed"

// TypeFor is the event type that announces state s of a job of kind k:
// the type of its results event, whatever webhook (or sweep) triggered the
// collection. It is "" for states no event announces (submitted, running)
// and for kinds geminihooks does not collect.
func TypeFor(k Kind, s State) string {
	switch k {
	case KindBatch:
		switch s {
		case StateSucceeded:
			return TypeBatchSucceeded
		case StateFailed:
			return TypeBatchFailed
		case StateExpired:
			return TypeBatchExpired
		case StateCancelled:
			return TypeBatchCancelled
		}
	case KindVideo:
		switch s {
		case StateSucceeded:
			return TypeVideoGenerated
		case StateFailed, StateExpired, StateCancelled:
			return TypeVideoFailed
		}
	case KindInteraction:
		switch s {
		case StateSucceeded:
			return TypeInteractionCompleted
		case StateFailed, StateExpired:
			return TypeInteractionFailed
		case StateRequiresAction:
			return TypeInteractionRequiresAction
		case StateCancelled:
			return TypeInteractionCancelled
		}
	}
	return ""
}

// Collected reports whether geminihooks collects jobs of kind k.
func (k Kind) Collected() bool {
	return k == KindBatch || k == KindVideo || k == KindInteraction
}
