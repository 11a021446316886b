package mdparse

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Reader reads typed values from metadata, keeping the first error.
type Reader struct {
	md  map[string]string
	err error
}

// New returns a Reader over md. The map is read, never changed.
func New(md map[string]string) *Reader { return &Reader{md: md} }

// Err is the first error a getter met, or nil.
func (r *Reader) Err() error { return r.err }

// Fail records `metadata key="v": want <want>` unless an error is already
// kept; parsers use it for checks the getters do not know.
func (r *Reader) Fail(key, v, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("metadata %s=%q: want %s", key, v, want)
	}
}

// String is the trimmed value of key ("" when missing).
func (r *Reader) String(key string) string { return strings.TrimSpace(r.md[key]) }

// Int reads a decimal integer; def when the key is missing or empty.
func (r *Reader) Int(key string, def int) int {
	v := r.String(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.Fail(key, v, "an integer")
		return def
	}
	return n
}

// Bool reads what strconv.ParseBool accepts (true, false, 1, 0, t, f, …).
func (r *Reader) Bool(key string, def bool) bool {
	v := r.String(key)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.Fail(key, v, "true or false")
		return def
	}
	return b
}

// Duration reads a Go duration ("5s", "250ms") or a plain integer counted
// in unit, which is time.Millisecond or time.Second depending on how Dapr
// reads that key (e.g. redis timeouts are milliseconds, RabbitMQ's heartBeat
// is seconds). A Go duration wins when the text is both ("0").
func (r *Reader) Duration(key string, def, unit time.Duration) time.Duration {
	v := r.String(key)
	if v == "" {
		return def
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.Fail(key, v, wantDuration(unit))
		return def
	}
	return time.Duration(n) * unit
}

// wantDuration is the "want" text of a bad duration.
func wantDuration(unit time.Duration) string {
	if unit == time.Second {
		return `a duration such as "10s" or an integer of seconds`
	}
	if unit == time.Millisecond {
		return `a duration such as "5s" or an integer of milliseconds`
	}
	return fmt.Sprintf(`a duration such as "5s" or an integer of %v`, unit)
}
