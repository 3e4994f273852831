package encryption_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
	"github.com/eventsource-go/eventsource/encryption"
)

type Registered struct {
	eventsource.Model
	CustomerID string
	Email      string
}

type Renamed struct {
	eventsource.Model
	Name string
}

const secret = "alice@example.com"

func event(id string) *Registered {
	// No Version: a codec alone round-trips the payload, and the version is
	// the record's envelope (Model), not part of it.
	return &Registered{Model: eventsource.Model{ID: id}, CustomerID: "cust-" + id, Email: secret}
}

// spyKeys records every key it hands out, so tests can look for key bytes in
// error strings.
type spyKeys struct {
	encryption.KeyStore
	seen [][]byte
}

func (s *spyKeys) Current(ctx context.Context, subject string) (encryption.Key, error) {
	k, err := s.KeyStore.Current(ctx, subject)
	s.seen = append(s.seen, bytes.Clone(k.Material))
	return k, err
}

// assertNoSecrets fails when err's text holds plaintext, a key, or the
// ciphertext, in any of the usual spellings.
func assertNoSecrets(t *testing.T, err error, secrets ...[]byte) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		for _, form := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s)} {
			if strings.Contains(msg, form) {
				t.Errorf("error %q leaks a secret", msg)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	keys := encryption.NewMemoryKeyStore()
	c := encryption.NewCodec(jsoncodec.New(), keys)
	if c.Name() != "enc+json" {
		t.Fatalf("Name = %q", c.Name())
	}
	e := event("a1")
	data, err := c.MarshalContext(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(secret)) {
		t.Fatal("ciphertext holds the plaintext")
	}
	var got Registered
	if err := c.UnmarshalContext(ctx, data, &got); err != nil {
		t.Fatal(err)
	}
	if got != *e {
		t.Fatalf("got %+v, want %+v", got, *e)
	}
	// The plain methods are the context ones with Background.
	data2, err := c.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var got2 Registered
	if err := c.Unmarshal(data2, &got2); err != nil || got2 != *e {
		t.Fatalf("Unmarshal: %+v, %v", got2, err)
	}
}

func TestFreshNoncePerRecord(t *testing.T) {
	c := encryption.NewCodec(jsoncodec.New(), encryption.NewMemoryKeyStore())
	seen := map[string]bool{}
	nonces := map[string]bool{}
	for range 100 {
		data, err := c.Marshal(event("a1"))
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(data)] {
			t.Fatal("two encryptions of one event are equal")
		}
		seen[string(data)] = true
		n := string(data[2+len("a1")+4 : 2+len("a1")+4+12])
		if nonces[n] {
			t.Fatal("nonce reused")
		}
		nonces[n] = true
	}
}

func TestHeader(t *testing.T) {
	c := encryption.NewCodec(jsoncodec.New(), encryption.NewMemoryKeyStore())
	data, err := c.Marshal(event("agg-7"))
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != encryption.FormatVersion || int(data[1]) != len("agg-7") || string(data[2:7]) != "agg-7" {
		t.Fatalf("header % x", data[:12])
	}
	if v := data[7:11]; !bytes.Equal(v, []byte{0, 0, 0, 1}) {
		t.Fatalf("key version bytes % x", v)
	}
}

func TestTampering(t *testing.T) {
	ctx := context.Background()
	keys := encryption.NewMemoryKeyStore()
	c := encryption.NewCodec(jsoncodec.New(), keys)
	// Another subject with a key, so a changed subject finds a real key.
	if _, err := c.Marshal(event("a2")); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Current(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if k, err := keys.Rotate(ctx, "a1"); err != nil || k.Version != 2 { // a1 now has versions 1 and 2
		t.Fatalf("Rotate = %v, %v", k, err)
	}
	data, err := c.Marshal(event("a1")) // written with version 2
	if err != nil {
		t.Fatal(err)
	}
	sub := 2           // subject offset
	ver := sub + 2     // key version offset
	nonce := ver + 4   // nonce offset
	body := nonce + 12 // sealed data offset
	cases := []struct {
		name   string
		change func(b []byte) []byte
	}{
		{"format version", func(b []byte) []byte { b[0] = 9; return b }},
		{"subject", func(b []byte) []byte { b[sub+1] = '2'; return b }},
		{"subject length", func(b []byte) []byte { b[1] = 1; return b }},
		{"key version", func(b []byte) []byte { b[ver+3] = 1; return b }},
		{"unknown key version", func(b []byte) []byte { b[ver+3] = 7; return b }},
		{"nonce", func(b []byte) []byte { b[nonce] ^= 1; return b }},
		{"ciphertext", func(b []byte) []byte { b[body] ^= 1; return b }},
		{"tag", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"header only", func(b []byte) []byte { return b[:body] }},
		{"empty", func([]byte) []byte { return nil }},
		{"plain json", func([]byte) []byte { return []byte(`{"Email":"x"}`) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got Registered
			err := c.Unmarshal(tc.change(bytes.Clone(data)), &got)
			if !errors.Is(err, eventsource.ErrCorruptData) {
				t.Fatalf("err = %v, want ErrCorruptData", err)
			}
			if got.Email != "" {
				t.Fatal("tampered data decoded")
			}
			assertNoSecrets(t, err, []byte(secret), data, data[body:])
		})
	}
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	keys := encryption.NewMemoryKeyStore()
	c := encryption.NewCodec(jsoncodec.New(), keys)
	old, err := c.Marshal(event("a1"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := keys.Rotate(ctx, "a1")
	if err != nil || k2.Version != 2 {
		t.Fatalf("Rotate = %v, %v", k2, err)
	}
	fresh, err := c.Marshal(event("a1"))
	if err != nil {
		t.Fatal(err)
	}
	if old[2+2+3] != 1 || fresh[2+2+3] != 2 {
		t.Fatalf("key versions %d and %d, want 1 and 2", old[7], fresh[7])
	}
	for _, data := range [][]byte{old, fresh} {
		var got Registered
		if err := c.Unmarshal(data, &got); err != nil || got.Email != secret {
			t.Fatalf("decode after rotation: %+v, %v", got, err)
		}
	}
}

func TestShredding(t *testing.T) {
	ctx := context.Background()
	keys := &spyKeys{KeyStore: encryption.NewMemoryKeyStore()}
	// Per data subject: the key is the customer's, not the aggregate's.
	bySubject := encryption.WithSubject(func(e eventsource.Event) string { return e.(*Registered).CustomerID })
	c := encryption.NewCodec(jsoncodec.New(), keys, bySubject)
	redacting := encryption.NewCodec(jsoncodec.New(), keys, bySubject, encryption.WithRedaction())
	data, err := c.Marshal(event("a1"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.Marshal(event("a2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Delete(ctx, "cust-a1"); err != nil {
		t.Fatal(err)
	}
	if err := keys.Delete(ctx, "cust-a1"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}

	var got Registered
	err = c.Unmarshal(data, &got)
	var se *encryption.ShreddedError
	if !errors.As(err, &se) || se.Subject != "cust-a1" || !errors.Is(err, eventsource.ErrShredded) {
		t.Fatalf("err = %v, want *ShreddedError for cust-a1", err)
	}
	if errors.Is(err, eventsource.ErrCorruptData) {
		t.Fatal("shredded data reported as corrupt")
	}
	if got.Email != "" {
		t.Fatal("shredded data decoded")
	}
	assertNoSecrets(t, err, append(keys.seen, []byte(secret), data)...)

	got = Registered{}
	if err := redacting.Unmarshal(data, &got); err != nil || got != (Registered{}) {
		t.Fatalf("redaction: %+v, %v; want the zero value and no error", got, err)
	}
	// Other subjects are untouched.
	if err := c.Unmarshal(other, &got); err != nil || got.Email != secret {
		t.Fatalf("other subject: %+v, %v", got, err)
	}
	// A shredded subject takes no new data.
	_, err = c.Marshal(event("a1"))
	if !errors.As(err, &se) {
		t.Fatalf("Marshal after Delete: %v, want *ShreddedError", err)
	}
	assertNoSecrets(t, err, append(keys.seen, []byte(secret))...)
}

func TestErrorsNeverHoldSecrets(t *testing.T) {
	keys := &spyKeys{KeyStore: encryption.NewMemoryKeyStore()}
	c := encryption.NewCodec(jsoncodec.New(), keys)
	data, err := c.Marshal(event("a1"))
	if err != nil {
		t.Fatal(err)
	}
	// Decoding into the wrong type: the inner decoder's message could
	// quote plaintext, so it is withheld.
	var wrong struct{ Email int }
	err = c.Unmarshal(data, &wrong)
	if err == nil {
		t.Fatal("decoding into a mismatched type succeeded")
	}
	assertNoSecrets(t, err, append(keys.seen, []byte(secret), data, []byte("alice"))...)
	// Keys printed or logged show no bytes.
	k, _ := keys.Current(context.Background(), "a1")
	for _, s := range []string{k.String(), k.GoString(), k.LogValue().String()} {
		assertNoSecrets(t, errors.New(s), k.Material)
	}
}

func TestBadInput(t *testing.T) {
	c := encryption.NewCodec(jsoncodec.New(), encryption.NewMemoryKeyStore())
	if _, err := c.Marshal(struct{ X int }{1}); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Errorf("non-event: %v", err)
	}
	if _, err := c.Marshal(event("")); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Errorf("empty subject: %v", err)
	}
	if _, err := c.Marshal(event(strings.Repeat("x", 256))); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Errorf("long subject: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.MarshalContext(ctx, event("a1")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
