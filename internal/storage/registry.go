package storage

import (
	"context"
	"errors"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Kinds of registered names.
const (
	KindOrchestrator = "orchestrator"
	KindActivity     = "activity"
)

// Register records that a worker serves these names, so that starts and
// activity calls can tell "nobody registered X" from "X is busy".
// Idempotent.
func (s *Store) Register(ctx context.Context, kind string, names []string, worker string) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	data, err := encode(&RegistryEntry{Worker: worker})
	if err != nil {
		return err
	}
	for _, n := range names {
		key := s.names.RegistryKey(kind, n)
		if _, err := s.registry.Put(ctx, key, data); err != nil {
			return mapErr("registering "+kind+" "+n, err)
		}
		s.registered.Store(key, struct{}{})
	}
	return nil
}

// IsRegistered reports whether any worker ever registered the name. Names
// are never unregistered, so a yes is cached.
func (s *Store) IsRegistered(ctx context.Context, kind, name string) (bool, error) {
	key := s.names.RegistryKey(kind, name)
	if _, ok := s.registered.Load(key); ok {
		return true, nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, err := s.registry.Get(ctx, key)
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, mapErr("looking up "+kind+" "+name, err)
	}
	s.registered.Store(key, struct{}{})
	return true, nil
}
