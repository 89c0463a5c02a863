package storage

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	// encodedToken is everything EncodeToken may write: never '.', '*',
	// '>' or whitespace, which would split or widen a subject.
	encodedToken = regexp.MustCompile(`^[-_=A-Za-z0-9]+$`)
	plainToken   = regexp.MustCompile(`^[-_A-Za-z0-9]+$`)
)

// FuzzTokenRoundTrip checks the instance-id encoding of keys and subjects on
// two strings: each encodes to [-_=A-Za-z0-9]+, decodes back to itself,
// stays as it is when already plain, and two different strings never
// share an encoding.
//
// The seeds in testdata/fuzz/FuzzTokenRoundTrip and
// testdata/fuzz/FuzzDecodeToken are written by
// go test -run TestWriteNamesSeeds -write-fuzz-seeds.
func FuzzTokenRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, a, b string) {
		ea := EncodeToken(a)
		require.Regexp(t, encodedToken, ea, "EncodeToken(%q)", a)
		got, err := DecodeToken(ea)
		require.NoError(t, err, "DecodeToken(EncodeToken(%q))", a)
		require.Equal(t, a, got, "DecodeToken(EncodeToken(%q))", a)
		if plainToken.MatchString(a) {
			require.Equal(t, a, ea, "a plain id is its own token")
		}
		if a != b {
			require.NotEqual(t, ea, EncodeToken(b), "EncodeToken(%q) == EncodeToken(%q)", a, b)
		}
	})
}

// FuzzDecodeToken decodes arbitrary tokens: no panic, and what decodes
// encodes to a token that decodes to it again. (DecodeToken also takes
// tokens EncodeToken never writes, such as "=41" for "A": keys jetflow did
// not write.)
func FuzzDecodeToken(f *testing.F) {
	f.Fuzz(func(t *testing.T, token string) {
		s, err := DecodeToken(token)
		if err != nil {
			require.Contains(t, err.Error(), fmt.Sprintf("%q", token))
			return
		}
		again, err := DecodeToken(EncodeToken(s))
		require.NoError(t, err)
		require.Equal(t, s, again)
		if !strings.Contains(token, "=") {
			require.Equal(t, token, s, "a token without escapes is the id")
		}
	})
}

// tokenSeeds are ids like those the API accepts, and some it refuses.
var tokenSeeds = []string{
	"order-1", "Order_2", "", "=", "a.b", "a b", "a/b", "a\\b", "a#b?c", "ä", "日本語", "🙂", "=3D", "==", "\x00", "\xff",
	"a:0", "parent:12", strings.Repeat("x", 100), strings.Repeat("é", 50), "*", ">", "-", "_",
}

// TestWriteNamesSeeds writes the seed corpora of FuzzTokenRoundTrip and
// FuzzDecodeToken with -write-fuzz-seeds.
func TestWriteNamesSeeds(t *testing.T) {
	t.Parallel()
	if !*writeFuzzSeeds {
		return
	}
	for i, s := range tokenSeeds {
		next := tokenSeeds[(i+1)%len(tokenSeeds)]
		writeSeed(t, "FuzzTokenRoundTrip", fmt.Sprintf("seed-%02d", i), s, next)
		writeSeed(t, "FuzzDecodeToken", fmt.Sprintf("seed-%02d", i), EncodeToken(s))
	}
	for i, bad := range []string{"=4", "=G1", "a=", "=41", "=2f", "===", "==0123456789abcdef", "=+1"} {
		writeSeed(t, "FuzzDecodeToken", fmt.Sprintf("odd-%02d", i), bad)
	}
}
