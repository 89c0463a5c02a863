package jetflow

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxInstanceIDLength is the longest instance id accepted, in characters,
// as in Durable Functions.
const MaxInstanceIDLength = 100

// ValidateInstanceID reports whether id is acceptable as an instance id:
// 1 to 100 characters of valid UTF-8, none of them '/', '\', '#', '?' or a
// control character (the rules of Durable Functions). The error wraps
// [ErrInvalidInstanceID] and names what is wrong.
func ValidateInstanceID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: it is empty", ErrInvalidInstanceID)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: it is not valid UTF-8", ErrInvalidInstanceID)
	}
	if n := utf8.RuneCountInString(id); n > MaxInstanceIDLength {
		return fmt.Errorf("%w: it has %d characters, more than %d", ErrInvalidInstanceID, n, MaxInstanceIDLength)
	}
	if i := strings.IndexFunc(id, func(r rune) bool {
		return r == '/' || r == '\\' || r == '#' || r == '?' || unicode.IsControl(r)
	}); i >= 0 {
		r, _ := utf8.DecodeRuneInString(id[i:])
		return fmt.Errorf("%w: %q is not allowed (no '/', '\\', '#', '?' or control characters)", ErrInvalidInstanceID, r)
	}
	return nil
}

// ValidateName reports whether name is acceptable as an orchestrator,
// activity or event name: 1 to 256 characters of valid UTF-8 with no
// control characters. The error wraps [ErrInvalidName].
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: it is empty", ErrInvalidName)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: it is not valid UTF-8", ErrInvalidName)
	case utf8.RuneCountInString(name) > 256:
		return fmt.Errorf("%w: it is longer than 256 characters", ErrInvalidName)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: it has a control character", ErrInvalidName)
	}
	return nil
}
