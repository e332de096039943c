package forward

import "fmt"

// RefusedError is a backend's refusal (it wraps ErrInvalid) with a short
// reason, the dropped counter's label: a bounded set of words, such as
// Connect's codes ("invalid_argument"), never the backend's message.
type RefusedError struct {
	Reason string
	Err    error
}

// Refused wraps err as ErrInvalid for reason.
func Refused(reason string, err error) error { return &RefusedError{Reason: reason, Err: err} }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%v (%s): %v", ErrInvalid, e.Reason, e.Err)
}

func (e *RefusedError) Unwrap() []error { return []error{ErrInvalid, e.Err} }
