package storage

// unwrap returns the Store behind a *jetstream.Store; package jetstream
// sets it (it imports this package, so this one cannot name its type).
var unwrap func(any) *Store

// SetUnwrap is called once, by package jetstream's init, with the function
// that returns the Store behind its public handle.
func SetUnwrap(f func(any) *Store) { unwrap = f }

// Of returns the Store behind h, a *jetstream.Store: how worker, client
// and the other engine packages reach the storage of the hub a user
// opened.
func Of(h any) *Store { return unwrap(h) }
