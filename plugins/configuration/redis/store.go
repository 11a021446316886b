package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/internal/redisconf"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// separator splits a stored string into value and version.
const separator = "||"

// Store is the configuration.redis store.
type Store struct {
	log    *slog.Logger
	client *redis.Client
	db     int
}

// New returns an uninitialised store.
func New(log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{log: log}
}

// Init connects and makes sure keyspace notifications are on.
func (s *Store) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parse(md)
	if err != nil {
		return err
	}
	// One budget for connecting and for checking keyspace events.
	ictx, cancel := context.WithTimeout(ctx, cfg.opts.DialTimeout+cfg.opts.ReadTimeout)
	defer cancel()
	c, err := redisconf.Dial(ictx, &cfg.opts)
	if err != nil {
		return err
	}
	s.client, s.db = c, cfg.opts.DB
	s.enableKeyspaceEvents(ictx)
	return nil
}

// enableKeyspaceEvents adds "KA" to notify-keyspace-events when keyspace
// events for every command class are not already on (as Dapr does). Managed
// Redis services often refuse CONFIG: then a warning says what to set.
func (s *Store) enableKeyspaceEvents(ctx context.Context) {
	cur, err := s.client.ConfigGet(ctx, "notify-keyspace-events").Result()
	flags := cur["notify-keyspace-events"]
	if err == nil && strings.Contains(flags, "K") && (strings.Contains(flags, "A") || (strings.Contains(flags, "g") && strings.Contains(flags, "$"))) {
		return
	}
	if err == nil {
		err = s.client.ConfigSet(ctx, "notify-keyspace-events", flags+"KA").Err()
	}
	if err != nil {
		s.log.Warn("could not enable keyspace notifications; Subscribe sees no changes until the server sets notify-keyspace-events KA", "err", err)
	}
}

// parseItem splits "value||version".
func parseItem(raw string) sdk.ConfigurationItem {
	v, ver, _ := strings.Cut(raw, separator)
	return sdk.ConfigurationItem{Value: v, Version: ver, Metadata: map[string]string{}}
}

// Get reads the keys (every key when none are given).
func (s *Store) Get(ctx context.Context, req *sdk.ConfigurationGetRequest) (map[string]sdk.ConfigurationItem, error) {
	keys := req.Keys
	if len(keys) == 0 {
		var err error
		if keys, err = s.allKeys(ctx); err != nil {
			return nil, err
		}
	}
	out := make(map[string]sdk.ConfigurationItem, len(keys))
	const batch = 500
	for start := 0; start < len(keys); start += batch {
		chunk := keys[start:min(start+batch, len(keys))]
		vals, err := s.client.MGet(ctx, chunk...).Result()
		if err != nil {
			return nil, fmt.Errorf("reading %d keys: %w", len(chunk), err)
		}
		for i, v := range vals {
			if str, ok := v.(string); ok {
				out[chunk[i]] = parseItem(str)
			}
		}
	}
	return out, nil
}

// allKeys SCANs the database for string keys.
func (s *Store) allKeys(ctx context.Context) ([]string, error) {
	var keys []string
	iter := s.client.ScanType(ctx, 0, "*", 1000, "string").Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	return keys, nil
}

// Subscribe listens to keyspace notifications for the keys (or all keys).
func (s *Store) Subscribe(ctx context.Context, req *sdk.ConfigurationSubscribeRequest, ready func(), h sdk.ConfigurationHandler) error {
	prefix := "__keyspace@" + strconv.Itoa(s.db) + "__:"
	var ps *redis.PubSub
	n := len(req.Keys)
	if n == 0 {
		ps = s.client.PSubscribe(ctx, prefix+"*")
		n = 1
	} else {
		channels := make([]string, len(req.Keys))
		for i, k := range req.Keys {
			channels[i] = prefix + k
		}
		ps = s.client.Subscribe(ctx, channels...)
	}
	defer ps.Close()
	// Redis confirms each channel or pattern; after that no event is missed.
	for range n {
		if _, err := ps.Receive(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("subscribing to keyspace notifications: %w", err)
		}
	}
	ready()
	ch := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("keyspace notification channel closed")
			}
			key := strings.TrimPrefix(m.Channel, prefix)
			it, err := s.current(ctx, key, m.Payload)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.log.Warn("reading a changed key", "key", key, "err", err)
				continue
			}
			if err := h(ctx, map[string]sdk.ConfigurationItem{key: it}); err != nil {
				return nil // the subscriber is gone
			}
		}
	}
}

// current is the item after event on key: empty for removals, else re-read.
func (s *Store) current(ctx context.Context, key, event string) (sdk.ConfigurationItem, error) {
	switch event {
	case "del", "expired", "evicted", "unlink", "rename_from":
		return sdk.ConfigurationItem{Metadata: map[string]string{}}, nil
	}
	v, err := s.client.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return sdk.ConfigurationItem{Metadata: map[string]string{}}, nil
	}
	if err != nil {
		return sdk.ConfigurationItem{}, err
	}
	return parseItem(v), nil
}

// Ping checks Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.client == nil {
		return errors.New("not initialised")
	}
	return s.client.Ping(ctx).Err()
}

// Close closes the client.
func (s *Store) Close() error {
	if s.client == nil {
		return nil
	}
	return s.client.Close()
}
