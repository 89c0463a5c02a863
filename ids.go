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

// MaxVersionLength is the longest orchestration or activity version
// (client.WithVersion, the sidecar's version fields), in characters.
const MaxVersionLength = 256

// ValidateVersion checks a version: empty (none), or at most
// MaxVersionLength characters of UTF-8 without control characters. A
// version is the user's label (Durable Task's "1.0.0"); the engine stores
// and reports it, and never compares it.
func ValidateVersion(v string) error {
	switch {
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: version %q is not valid UTF-8", ErrInvalidOption, v)
	case utf8.RuneCountInString(v) > MaxVersionLength:
		return fmt.Errorf("%w: the version is longer than %d characters", ErrInvalidOption, MaxVersionLength)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: version %q has a control character", ErrInvalidOption, v)
	}
	return nil
}

// Limits of an instance's or a task's tags (client.WithTags, the
// sidecar's tags fields): how many, and how long a key and a value may be,
// in bytes.
const (
	MaxTags           = 64
	MaxTagKeyLength   = 256
	MaxTagValueLength = 1024
)

// ValidateTags checks tags: at most MaxTags, each key 1 to
// MaxTagKeyLength bytes and each value at most MaxTagValueLength bytes,
// all valid UTF-8.
func ValidateTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return fmt.Errorf("%w: %d tags, over the limit of %d", ErrInvalidOption, len(tags), MaxTags)
	}
	for k, v := range tags {
		switch {
		case k == "":
			return fmt.Errorf("%w: a tag has an empty key", ErrInvalidOption)
		case len(k) > MaxTagKeyLength:
			return fmt.Errorf("%w: tag key %.40q… is longer than %d bytes", ErrInvalidOption, k, MaxTagKeyLength)
		case len(v) > MaxTagValueLength:
			return fmt.Errorf("%w: the value of tag %q is longer than %d bytes", ErrInvalidOption, k, MaxTagValueLength)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return fmt.Errorf("%w: tag %q is not valid UTF-8", ErrInvalidOption, k)
		}
	}
	return nil
}
