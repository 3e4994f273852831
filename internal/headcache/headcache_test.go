package headcache

import (
	"fmt"
	"testing"
)

func TestCache(t *testing.T) {
	c := New(func(a, b int) bool { return a > b })
	if _, ok := c.Get("s"); ok {
		t.Fatal("empty cache has a head")
	}
	c.Put("s", 5)
	c.Put("s", 3) // a slower append's older head
	if v, ok := c.Get("s"); !ok || v != 5 {
		t.Fatalf("Get = %d, %v; want 5", v, ok)
	}
	c.Put("s", 7)
	if v, _ := c.Get("s"); v != 7 {
		t.Fatalf("Get = %d, want 7", v)
	}
	c.Drop("s")
	if _, ok := c.Get("s"); ok {
		t.Fatal("dropped head still there")
	}
	for i := 0; i < 2*Size; i++ {
		c.Put(fmt.Sprint(i), i)
	}
	if n := len(c.m); n > Size {
		t.Fatalf("cache holds %d heads, at most %d", n, Size)
	}
}
