// Package natskeys is an encryption.KeyStore in a NATS JetStream key-value
// bucket (nats.go jetstream; works on NATS 2.9).
//
//	keys := natskeys.New(js, natskeys.WithBucket("es_keys"))
//
// Each subject is one KV entry (key "s." + base64url(subject)) holding every
// version of its key, so Rotate and first use are compare-and-set writes
// (Create, Update with the last revision): concurrent writers, in any
// process, agree on one key per version. Delete overwrites the entry with a
// tombstone; the bucket keeps one revision per key (History 1), so the server
// drops the message that held the keys. JetStream may keep deleted bytes on
// disk until its files are compacted, and a replicated bucket holds them on
// every replica until then.
package natskeys

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption"
)

// Store is a KeyStore in a JetStream KV bucket. It is safe for concurrent use.
type Store struct {
	js       jetstream.JetStream
	bucket   string
	replicas int
	master   *encryption.MasterKey

	mu sync.Mutex
	kv jetstream.KeyValue
}

// Option configures a Store.
type Option func(*Store)

// WithBucket names the bucket ("es_keys" by default).
func WithBucket(name string) Option { return func(s *Store) { s.bucket = name } }

// WithReplicas sets the bucket's replicas when this store creates it (1 by
// default).
func WithReplicas(n int) Option { return func(s *Store) { s.replicas = n } }

// WithMasterKey wraps every key with m before it is stored. Without it keys
// are stored as they are.
func WithMasterKey(m *encryption.MasterKey) Option { return func(s *Store) { s.master = m } }

// New returns a key store on js. It does no I/O: the bucket is opened, or
// created, on first use.
func New(js jetstream.JetStream, opts ...Option) *Store {
	s := &Store{js: js, bucket: "es_keys", replicas: 1}
	for _, o := range opts {
		o(s)
	}
	return s
}

// entry is one subject's stored value.
type entry struct {
	Shredded bool     `json:"shredded,omitempty"`
	Keys     [][]byte `json:"keys,omitempty"` // version i+1 at i, wrapped when a master key is set
}

func (s *Store) open(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	if s.js == nil {
		return nil, fmt.Errorf("%w: natskeys: nil JetStream", eventsource.ErrInvalidConfig)
	}
	kv, err := s.js.KeyValue(ctx, s.bucket)
	// The server can fail to create a stream's store under load (error
	// 10049, seen with parallel tests): a few tries before giving up.
	for try := 0; errors.Is(err, jetstream.ErrBucketNotFound) || (try > 0 && try < 4 && storeCreationFailed(err)); try++ {
		if try > 0 {
			time.Sleep(time.Duration(try) * 50 * time.Millisecond)
		}
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: s.bucket, History: 1, Replicas: s.replicas, Storage: jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = s.js.KeyValue(ctx, s.bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natskeys: bucket %s: %w", s.bucket, err)
	}
	s.kv = kv
	return kv, nil
}

func storeCreationFailed(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == 10049
}

func kvKey(subject string) string {
	return "s." + base64.RawURLEncoding.EncodeToString([]byte(subject))
}

// load returns subject's entry and its revision (0 when there is none).
func (s *Store) load(ctx context.Context, subject string) (jetstream.KeyValue, entry, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, entry{}, 0, err
	}
	if err := encryption.ValidateSubject(subject); err != nil {
		return nil, entry{}, 0, err
	}
	kv, err := s.open(ctx)
	if err != nil {
		return nil, entry{}, 0, err
	}
	got, err := kv.Get(ctx, kvKey(subject))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return kv, entry{}, 0, nil
	}
	if err != nil {
		return nil, entry{}, 0, fmt.Errorf("natskeys: read keys of subject %q: %w", subject, err)
	}
	var e entry
	if err := json.Unmarshal(got.Value(), &e); err != nil {
		return nil, entry{}, 0, fmt.Errorf("%w: natskeys: entry of subject %q does not decode", eventsource.ErrCorruptData, subject)
	}
	if e.Shredded {
		return nil, entry{}, 0, &encryption.ShreddedError{Subject: subject}
	}
	return kv, e, got.Revision(), nil
}

func (s *Store) key(subject string, e entry, version uint32) (encryption.Key, error) {
	if version < 1 || int(version) > len(e.Keys) {
		return encryption.Key{}, &encryption.KeyNotFoundError{Subject: subject, Version: version}
	}
	mat := e.Keys[version-1]
	if s.master != nil {
		return s.master.Unwrap(subject, version, mat)
	}
	if len(mat) != encryption.KeySize {
		return encryption.Key{}, fmt.Errorf("%w: natskeys: key of subject %q version %d has %d bytes", eventsource.ErrCorruptData, subject, version, len(mat))
	}
	return encryption.Key{Version: version, Material: mat}, nil
}

// Current implements encryption.KeyStore.
func (s *Store) Current(ctx context.Context, subject string) (encryption.Key, error) {
	return s.next(ctx, subject, true)
}

// Rotate implements encryption.KeyStore.
func (s *Store) Rotate(ctx context.Context, subject string) (encryption.Key, error) {
	return s.next(ctx, subject, false)
}

// next returns the current key (when current is set and one exists) or
// stores a new version, retrying when another writer got there first.
func (s *Store) next(ctx context.Context, subject string, current bool) (encryption.Key, error) {
	for {
		kv, e, rev, err := s.load(ctx, subject)
		if err != nil {
			return encryption.Key{}, err
		}
		if current && len(e.Keys) > 0 {
			return s.key(subject, e, uint32(len(e.Keys)))
		}
		k, err := encryption.NewKey(uint32(len(e.Keys) + 1))
		if err != nil {
			return encryption.Key{}, err
		}
		stored := k.Material
		if s.master != nil {
			if stored, err = s.master.Wrap(subject, k); err != nil {
				return encryption.Key{}, err
			}
		}
		e.Keys = append(e.Keys, stored)
		data, err := json.Marshal(e)
		if err != nil {
			return encryption.Key{}, err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, kvKey(subject), data)
		} else {
			_, err = kv.Update(ctx, kvKey(subject), data, rev)
		}
		switch {
		case err == nil:
			return k, nil
		case errors.Is(err, jetstream.ErrKeyExists):
			continue // lost a race: read what the winner (or a Delete) wrote
		default:
			return encryption.Key{}, fmt.Errorf("natskeys: store key version %d of subject %q: %w", k.Version, subject, err)
		}
	}
}

// Key implements encryption.KeyStore.
func (s *Store) Key(ctx context.Context, subject string, version uint32) (encryption.Key, error) {
	_, e, _, err := s.load(ctx, subject)
	if err != nil {
		return encryption.Key{}, err
	}
	return s.key(subject, e, version)
}

// Delete implements encryption.KeyStore: the subject's entry becomes a
// tombstone, replacing the only revision that held its keys.
func (s *Store) Delete(ctx context.Context, subject string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := encryption.ValidateSubject(subject); err != nil {
		return err
	}
	kv, err := s.open(ctx)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(entry{Shredded: true})
	if _, err := kv.Put(ctx, kvKey(subject), data); err != nil {
		return fmt.Errorf("natskeys: delete keys of subject %q: %w", subject, err)
	}
	return nil
}

var _ encryption.KeyStore = (*Store)(nil)
