package mdparse

import (
	"strings"
	"testing"
	"time"
)

func TestGetters(t *testing.T) {
	md := map[string]string{
		"n": " 42 ", "neg": "-1", "b": "true", "b1": "1", "ms": "250", "s": "7", "go": "1.5s", "zero": "0",
		"badN": "x", "badB": "yes", "badD": "5 sec", "empty": "  ",
	}
	r := New(md)
	if got := r.Int("n", 0); got != 42 {
		t.Errorf("Int(n) = %d", got)
	}
	if got := r.Int("neg", 0); got != -1 {
		t.Errorf("Int(neg) = %d", got)
	}
	if got := r.Int("missing", 9); got != 9 {
		t.Errorf("Int(missing) = %d, want default", got)
	}
	if got := r.Int("empty", 9); got != 9 {
		t.Errorf("Int(empty) = %d, want default", got)
	}
	if !r.Bool("b", false) || !r.Bool("b1", false) || r.Bool("missing", false) {
		t.Error("Bool")
	}
	for _, tc := range []struct {
		key  string
		unit time.Duration
		want time.Duration
	}{
		{"ms", time.Millisecond, 250 * time.Millisecond},
		{"s", time.Second, 7 * time.Second},
		{"go", time.Millisecond, 1500 * time.Millisecond},
		{"go", time.Second, 1500 * time.Millisecond},
		{"zero", time.Second, 0},
		{"neg", time.Millisecond, -time.Millisecond},
		{"missing", time.Second, 3 * time.Second},
	} {
		if got := r.Duration(tc.key, 3*time.Second, tc.unit); got != tc.want {
			t.Errorf("Duration(%s, %v) = %v, want %v", tc.key, tc.unit, got, tc.want)
		}
	}
	if r.Err() != nil {
		t.Fatalf("unexpected error: %v", r.Err())
	}
}

func TestFirstErrorKept(t *testing.T) {
	for _, tc := range []struct {
		name string
		read func(*Reader)
		want string
	}{
		{"int", func(r *Reader) { r.Int("badN", 1) }, `metadata badN="x": want an integer`},
		{"bool", func(r *Reader) { r.Bool("badB", true) }, `metadata badB="yes": want true or false`},
		{"millis", func(r *Reader) { r.Duration("badD", 0, time.Millisecond) }, `metadata badD="5 sec": want a duration such as "5s" or an integer of milliseconds`},
		{"seconds", func(r *Reader) { r.Duration("badD", 0, time.Second) }, `metadata badD="5 sec": want a duration such as "10s" or an integer of seconds`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(map[string]string{"badN": "x", "badB": "yes", "badD": "5 sec"})
			tc.read(r)
			r.Int("badN", 0) // a later error must not replace the first
			if r.Err() == nil || r.Err().Error() != tc.want {
				t.Fatalf("Err() = %v, want %q", r.Err(), tc.want)
			}
		})
	}
	r := New(map[string]string{"badN": "x"})
	if got := r.Int("badN", 5); got != 5 || !strings.Contains(r.Err().Error(), "badN") {
		t.Fatalf("bad value must give the default and an error naming the key: %d %v", got, r.Err())
	}
}
