// Package keystoretest is the conformance suite of encryption.KeyStore: every
// implementation's tests call Run against a fresh, empty store.
package keystoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption"
)

// Run tests the KeyStore that newStore returns; each subtest gets its own.
func Run(t *testing.T, newStore func(t *testing.T) encryption.KeyStore) {
	t.Run("CurrentCreatesOnce", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		k1, err := s.Current(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if k1.Version != 1 || len(k1.Material) != encryption.KeySize {
			t.Fatalf("first key: version %d, %d bytes", k1.Version, len(k1.Material))
		}
		again, err := s.Current(ctx, "s1")
		if err != nil || again.Version != 1 || !bytes.Equal(again.Material, k1.Material) {
			t.Fatalf("second Current differs (version %d, err %v)", again.Version, err)
		}
		other, err := s.Current(ctx, "s2")
		if err != nil || bytes.Equal(other.Material, k1.Material) {
			t.Fatalf("another subject shares the key (err %v)", err)
		}
	})
	t.Run("KeyVersions", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		var nf *encryption.KeyNotFoundError
		if _, err := s.Key(ctx, "s1", 1); !errors.As(err, &nf) || !errors.Is(err, eventsource.ErrNotFound) {
			t.Fatalf("Key of an unknown subject: %v", err)
		}
		k1, err := s.Current(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Key(ctx, "s1", 1)
		if err != nil || !bytes.Equal(got.Material, k1.Material) {
			t.Fatalf("Key(1): %v", err)
		}
		for _, v := range []uint32{0, 2} {
			if _, err := s.Key(ctx, "s1", v); !errors.As(err, &nf) {
				t.Fatalf("Key(%d): %v, want *KeyNotFoundError", v, err)
			}
		}
	})
	t.Run("Rotate", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		k1, err := s.Current(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		k2, err := s.Rotate(ctx, "s1")
		if err != nil || k2.Version != 2 || bytes.Equal(k2.Material, k1.Material) {
			t.Fatalf("Rotate: version %d, err %v", k2.Version, err)
		}
		cur, err := s.Current(ctx, "s1")
		if err != nil || cur.Version != 2 || !bytes.Equal(cur.Material, k2.Material) {
			t.Fatalf("Current after Rotate: version %d, err %v", cur.Version, err)
		}
		old, err := s.Key(ctx, "s1", 1)
		if err != nil || !bytes.Equal(old.Material, k1.Material) {
			t.Fatalf("old version after Rotate: %v", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		if _, err := s.Current(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rotate(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		keep, err := s.Current(ctx, "s2")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "s1"); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
		if err := s.Delete(ctx, "never-used"); err != nil {
			t.Fatalf("Delete of an unused subject: %v", err)
		}
		check := func(what string, err error) {
			t.Helper()
			var se *encryption.ShreddedError
			if !errors.As(err, &se) || se.Subject != "s1" || !errors.Is(err, eventsource.ErrShredded) {
				t.Fatalf("%s after Delete: %v, want *ShreddedError", what, err)
			}
		}
		for _, v := range []uint32{1, 2} {
			_, err := s.Key(ctx, "s1", v)
			check(fmt.Sprintf("Key(%d)", v), err)
		}
		_, err = s.Current(ctx, "s1")
		check("Current", err)
		_, err = s.Rotate(ctx, "s1")
		check("Rotate", err)
		got, err := s.Key(ctx, "s2", 1)
		if err != nil || !bytes.Equal(got.Material, keep.Material) {
			t.Fatalf("other subject after Delete: %v", err)
		}
	})
	t.Run("ConcurrentFirstUse", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		const n = 16
		keys := make([]encryption.Key, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { keys[i], errs[i] = s.Current(ctx, "race") })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("goroutine %d: %v", i, errs[i])
			}
			if keys[i].Version != 1 || !bytes.Equal(keys[i].Material, keys[0].Material) {
				t.Fatalf("goroutine %d got another key (version %d)", i, keys[i].Version)
			}
		}
		if _, err := s.Key(ctx, "race", 2); err == nil {
			t.Fatal("a second version exists after concurrent first use")
		}
	})
	t.Run("ConcurrentRotate", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		if _, err := s.Current(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		const n = 8
		versions := make([]uint32, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				k, err := s.Rotate(ctx, "s1")
				versions[i], errs[i] = k.Version, err
			})
		}
		wg.Wait()
		seen := map[uint32]bool{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("goroutine %d: %v", i, errs[i])
			}
			if seen[versions[i]] {
				t.Fatalf("version %d handed out twice", versions[i])
			}
			seen[versions[i]] = true
		}
		cur, err := s.Current(ctx, "s1")
		if err != nil || cur.Version != n+1 {
			t.Fatalf("Current = version %d, %v; want %d", cur.Version, err, n+1)
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		if _, err := s.Current(ctx, ""); !errors.Is(err, eventsource.ErrInvalidEvent) {
			t.Fatalf("empty subject: %v", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Current(cctx, "s1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: %v", err)
		}
	})
}
