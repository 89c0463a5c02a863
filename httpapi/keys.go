package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// Scopes of API keys. A key holds one or more:
//
//	admin         every route (the scope of Config.APIKey)
//	read          status, history, list and watch (every GET)
//	start         start any orchestrator
//	start:NAME    start orchestrator NAME
//	raise         raise events to any instance
//	raise:NAME    raise events to instances of orchestrator NAME
//
// Terminate, suspend, resume, restart, rewind and purge need admin.
const (
	ScopeAdmin = "admin"
	ScopeRead  = "read"
	ScopeStart = "start"
	ScopeRaise = "raise"
)

// MinKeyLength is the shortest key a keys file may hold.
const MinKeyLength = 16

// Key is one API key of a keys file: its secret, a name that error
// messages and logs use instead of it, and its scopes.
type Key struct {
	Name   string   `json:"name"`
	Key    string   `json:"key"`
	Scopes []string `json:"scopes"`
}

// keysFile is the JSON of a keys file:
//
//	{"keys": [
//	  {"name": "ops",       "key": "…", "scopes": ["admin"]},
//	  {"name": "dashboard", "key": "…", "scopes": ["read"]},
//	  {"name": "shop",      "key": "…", "scopes": ["start:E1_HelloSequence", "raise:CityRecommender"]}
//	]}
type keysFile struct {
	Keys []Key `json:"keys"`
}

// ParseKeys reads the JSON of a keys file ({"keys": [{"name", "key",
// "scopes"}, …]}) and checks every key: a name, a secret of at least
// MinKeyLength characters used by no other key, and known scopes.
func ParseKeys(data []byte) ([]Key, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var f keysFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf(`keys: not a keys file ({"keys": [{"name": …, "key": …, "scopes": […]}]}): %w`, err)
	}
	names, secrets := map[string]bool{}, map[string]bool{}
	for i, k := range f.Keys {
		what := fmt.Sprintf("keys[%d]", i)
		if k.Name == "" {
			return nil, fmt.Errorf("%s: no name", what)
		}
		what += fmt.Sprintf(" (%q)", k.Name)
		if names[k.Name] {
			return nil, fmt.Errorf("%s: another key has that name", what)
		}
		names[k.Name] = true
		if len(k.Key) < MinKeyLength {
			return nil, fmt.Errorf("%s: key shorter than %d characters", what, MinKeyLength)
		}
		if secrets[k.Key] {
			return nil, fmt.Errorf("%s: another key has the same secret", what)
		}
		secrets[k.Key] = true
		if len(k.Scopes) == 0 {
			return nil, fmt.Errorf("%s: no scopes (want %s)", what, scopeHelp)
		}
		if _, err := newPrincipal(k.Name, k.Scopes); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	return f.Keys, nil
}

// LoadKeys reads and checks a keys file (see ParseKeys).
func LoadKeys(path string) ([]Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

const scopeHelp = "admin, read, start, start:NAME, raise or raise:NAME"

// principal is what an authenticated key may do.
type principal struct {
	name               string
	scopes             []string // as configured, for GET /whoami
	admin, read        bool
	startAll, raiseAll bool
	start, raise       map[string]bool
}

// everyone is the principal of a server without keys.
var everyone = &principal{name: "anonymous", admin: true, scopes: []string{ScopeAdmin}}

func newPrincipal(name string, scopes []string) (*principal, error) {
	p := &principal{name: name, scopes: slices.Clone(scopes), start: map[string]bool{}, raise: map[string]bool{}}
	for _, s := range scopes {
		kind, arg, hasArg := strings.Cut(s, ":")
		switch {
		case s == ScopeAdmin:
			p.admin = true
		case s == ScopeRead:
			p.read = true
		case s == ScopeStart:
			p.startAll = true
		case s == ScopeRaise:
			p.raiseAll = true
		case hasArg && arg != "" && kind == ScopeStart:
			p.start[arg] = true
		case hasArg && arg != "" && kind == ScopeRaise:
			p.raise[arg] = true
		default:
			return nil, fmt.Errorf("unknown scope %q (want %s)", s, scopeHelp)
		}
	}
	return p, nil
}

func (p *principal) canRead() bool { return p.admin || p.read }

func (p *principal) canStart(name string) bool { return p.admin || p.startAll || p.start[name] }

// canRaiseSome reports whether p may raise events to the instances of at
// least one orchestrator.
func (p *principal) canRaiseSome() bool { return p.admin || p.raiseAll || len(p.raise) > 0 }

func (p *principal) canRaise(orchestrator string) bool {
	return p.admin || p.raiseAll || p.raise[orchestrator]
}

// keyEntry is one key of a keyring: the SHA-256 of its secret (compared
// in constant time whatever the length of what was sent) and its
// principal.
type keyEntry struct {
	sum [sha256.Size]byte
	p   *principal
}

// Keyring holds the scoped API keys of Config.Keys. Set replaces them all
// at once (jetflow does on SIGHUP), while requests are being served. The
// zero value holds no key. It is safe for concurrent use.
type Keyring struct {
	keys atomic.Pointer[[]keyEntry]
}

// NewKeyring returns a keyring holding keys.
func NewKeyring(keys []Key) (*Keyring, error) {
	k := &Keyring{}
	if err := k.Set(keys); err != nil {
		return nil, err
	}
	return k, nil
}

// Set replaces the keys of the keyring; on error it keeps the old ones.
func (k *Keyring) Set(keys []Key) error {
	entries := make([]keyEntry, 0, len(keys))
	for _, key := range keys {
		if key.Key == "" {
			return fmt.Errorf("key %q: empty secret", key.Name)
		}
		p, err := newPrincipal(key.Name, key.Scopes)
		if err != nil {
			return fmt.Errorf("key %q: %w", key.Name, err)
		}
		entries = append(entries, keyEntry{sum: sha256.Sum256([]byte(key.Key)), p: p})
	}
	k.keys.Store(&entries)
	return nil
}

// Len returns the number of keys.
func (k *Keyring) Len() int {
	if e := k.keys.Load(); e != nil {
		return len(*e)
	}
	return 0
}

// lookup returns the principal of secret, or nil. Every key is compared,
// in constant time.
func (k *Keyring) lookup(secret string, extra []keyEntry) *principal {
	sum := sha256.Sum256([]byte(secret))
	var found *principal
	check := func(entries []keyEntry) {
		for i := range entries {
			if subtle.ConstantTimeCompare(sum[:], entries[i].sum[:]) == 1 {
				found = entries[i].p
			}
		}
	}
	check(extra)
	if k != nil {
		if e := k.keys.Load(); e != nil {
			check(*e)
		}
	}
	return found
}

// errNoKey and errQueryKey explain a 401.
var (
	errNoKey    = errors.New("missing or wrong API key: send it as the x-functions-key header or the code query parameter")
	errQueryKey = errors.New("API keys in the query string (code=) are refused by this server: send the key as the x-functions-key header")
)
