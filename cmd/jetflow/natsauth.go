package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jetflow/jetflow/internal/storage"
	"github.com/nats-io/nats-server/v2/server"
)

// natsUsersFile is the file under dev's --data that holds the generated
// NATS credentials, so that a restart keeps them (processes connected to
// dev's NATS reconnect with what they have).
const natsUsersFile = "nats-users.json"

// natsUser is a user name and password of dev's embedded NATS.
type natsUser struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// devNATSUsers are the users of dev's embedded NATS when it requires
// credentials: admin may do everything; watcher may only read and watch
// the status bucket.
type devNATSUsers struct {
	Admin   natsUser `json:"admin"`
	Watcher natsUser `json:"watcher"`
}

// watcherInboxPrefix is the inbox prefix of the watcher role: it may
// receive only replies under it, not those of other processes (which
// carry history and inputs).
const watcherInboxPrefix = "_INBOX_watcher"

// loadDevNATSUsers reads dir's credentials file, or writes a new one with
// random passwords (readable by the owner only).
func loadDevNATSUsers(dir string) (devNATSUsers, string, error) {
	path := filepath.Join(dir, natsUsersFile)
	var u devNATSUsers
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &u); err != nil || u.Admin.Password == "" || u.Watcher.Password == "" {
			return u, path, fmt.Errorf("%s: not a credentials file written by jetflow dev (remove it to get new credentials)", path)
		}
		return u, path, nil
	case !errors.Is(err, fs.ErrNotExist):
		return u, path, err
	}
	u = devNATSUsers{Admin: natsUser{User: "jetflow", Password: randomSecret()}, Watcher: natsUser{User: "watcher", Password: randomSecret()}}
	data, _ = json.MarshalIndent(u, "", "  ")
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return u, path, fmt.Errorf("writing the NATS credentials: %w", err)
	}
	return u, path, nil
}

// randomSecret returns 128 random bits in hex (safe in URLs).
func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// serverUsers returns the embedded server's users.
func (u devNATSUsers) serverUsers(names storage.Names) []*server.User {
	return []*server.User{
		{Username: u.Admin.User, Password: u.Admin.Password},
		{Username: u.Watcher.User, Password: u.Watcher.Password, Permissions: watcherPermissions(names)},
	}
}

// watcherPermissions are the NATS permissions of a read-only watcher of
// a hub's status bucket: the WATCHER role of deploy/nats/roles.conf for
// the hub (TestDevNATSWatcher checks what it allows and refuses). It may
// read the metadata of the hub's streams (what jetflow watch opens), get
// and watch status keys, and receive replies under its own inbox prefix;
// it may not publish to any stream, read history or purge. The dev
// server's users are made before the hub's layout is read, so the stream
// metadata it may read is that of every stream the hub may have, with
// one partition or up to storage.MaxPartitions.
func watcherPermissions(n storage.Names) *server.Permissions {
	status := n.StatusStream()
	allow := []string{"$JS.API.INFO"}
	seen := map[string]bool{}
	for _, p := range []int{1, storage.MaxPartitions} {
		for _, st := range storage.NewNames(n.Hub(), 0, p).Streams() {
			if !seen[st] {
				seen[st] = true
				allow = append(allow, "$JS.API.STREAM.INFO."+st)
			}
		}
	}
	allow = append(allow,
		"$JS.API.CONSUMER.CREATE."+status,
		"$JS.API.CONSUMER.CREATE."+status+".>",
		"$JS.API.CONSUMER.INFO."+status+".*",
		"$JS.API.CONSUMER.DELETE."+status+".*",
		"$JS.API.DIRECT.GET."+status,
		"$JS.API.DIRECT.GET."+status+".>",
		"$JS.API.STREAM.MSG.GET."+status,
		"$JS.FC."+status+".>",
		// jetstream.Open reads the hub's layout.
		"$JS.API.DIRECT.GET."+n.RegistryStream()+"."+n.ShardsSubject(),
	)
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: allow},
		Subscribe: &server.SubjectPermission{Allow: []string{watcherInboxPrefix + ".>"}},
	}
}

// withUser returns natsURL with a user and password in it.
func withUser(natsURL string, u natsUser) string {
	p, err := url.Parse(natsURL)
	if err != nil {
		return natsURL
	}
	p.User = url.UserPassword(u.User, u.Password)
	return p.String()
}

// loopback reports whether a listen address only takes connections from
// this machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL hides the password of a URL (or of each of a comma-separated
// list) for printing.
func redactURL(s string) string {
	out := ""
	for i, part := range strings.Split(s, ",") {
		if i > 0 {
			out += ","
		}
		if u, err := url.Parse(part); err == nil && u.User != nil {
			out += u.Redacted()
			continue
		}
		out += part
	}
	return out
}
