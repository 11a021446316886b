package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// schedule yields the fire times of a cron expression.
type schedule interface {
	// next returns the first fire time strictly after t.
	next(t time.Time) time.Time
}

// every is "@every <duration>": ticks at the multiples of d since the Unix
// epoch, so each tick has an absolute time that survives a restart.
type every struct{ d time.Duration }

func (e every) next(t time.Time) time.Time {
	n := t.UnixNano()/int64(e.d) + 1
	return time.Unix(0, n*int64(e.d)).In(t.Location())
}

// spec is a parsed cron expression; each field is a bit set of allowed
// values, starBit marks a field written as * or ?.
type spec struct {
	sec, min, hour, dom, month, dow uint64
	loc                             *time.Location
}

const starBit = 1 << 63

type bounds struct {
	min, max int
	names    map[string]int
}

var (
	secondsB = bounds{0, 59, nil}
	minutesB = bounds{0, 59, nil}
	hoursB   = bounds{0, 23, nil}
	domB     = bounds{1, 31, nil}
	monthsB  = bounds{1, 12, map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}}
	dowB     = bounds{0, 7, map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}}
)

var descriptors = map[string]string{
	"@yearly":   "0 0 0 1 1 *",
	"@annually": "0 0 0 1 1 *",
	"@monthly":  "0 0 0 1 * *",
	"@weekly":   "0 0 0 * * 0",
	"@daily":    "0 0 0 * * *",
	"@midnight": "0 0 0 * * *",
	"@hourly":   "0 0 * * * *",
}

// parseSchedule parses robfig/cron-style schedules as Dapr's bindings.cron
// accepts them: 5 fields (minute hour day-of-month month day-of-week) or 6
// with seconds first, the descriptors @yearly … @hourly, "@every <Go
// duration>" (at least 1s), and an optional "CRON_TZ=<zone> " or
// "TZ=<zone> " prefix.
func parseSchedule(s string, loc *time.Location) (schedule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty schedule")
	}
	if strings.HasPrefix(s, "CRON_TZ=") || strings.HasPrefix(s, "TZ=") {
		zone, rest, _ := strings.Cut(s, " ")
		_, name, _ := strings.Cut(zone, "=")
		l, err := time.LoadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: time zone %q: %w", s, name, err)
		}
		loc, s = l, strings.TrimSpace(rest)
	}
	if d, ok := strings.CutPrefix(s, "@every "); ok {
		dur, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", s, err)
		}
		if dur < time.Second {
			return nil, fmt.Errorf("schedule %q: @every needs at least 1s", s)
		}
		return every{dur.Truncate(time.Second)}, nil
	}
	if strings.HasPrefix(s, "@") {
		expanded, ok := descriptors[strings.ToLower(s)]
		if !ok {
			return nil, fmt.Errorf("schedule %q: unknown descriptor", s)
		}
		s = expanded
	}
	fields := strings.Fields(s)
	switch len(fields) {
	case 5:
		fields = append([]string{"0"}, fields...)
	case 6:
	default:
		return nil, fmt.Errorf("schedule %q: want 5 or 6 fields (seconds optional), got %d", s, len(fields))
	}
	sp := &spec{loc: loc}
	var err error
	for i, f := range []struct {
		dst *uint64
		b   bounds
		n   string
	}{{&sp.sec, secondsB, "second"}, {&sp.min, minutesB, "minute"}, {&sp.hour, hoursB, "hour"},
		{&sp.dom, domB, "day of month"}, {&sp.month, monthsB, "month"}, {&sp.dow, dowB, "day of week"}} {
		if *f.dst, err = parseField(fields[i], f.b); err != nil {
			return nil, fmt.Errorf("schedule %q: %s field %q: %w", s, f.n, fields[i], err)
		}
	}
	if sp.dow&(1<<7) != 0 { // 7 is Sunday too
		sp.dow |= 1
	}
	return sp, nil
}

func parseField(f string, b bounds) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(f, ",") {
		v, err := parseRange(part, b)
		if err != nil {
			return 0, err
		}
		bits |= v
	}
	return bits, nil
}

func parseRange(r string, b bounds) (uint64, error) {
	rangePart, stepPart, hasStep := strings.Cut(r, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepPart)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("bad step %q", stepPart)
		}
		step = n
	}
	var lo, hi int
	var extra uint64
	switch {
	case rangePart == "*" || rangePart == "?":
		lo, hi = b.min, b.max
		if !hasStep {
			extra = starBit
		}
	default:
		l, h, isRange := strings.Cut(rangePart, "-")
		var err error
		if lo, err = value(l, b); err != nil {
			return 0, err
		}
		hi = lo
		if isRange {
			if hi, err = value(h, b); err != nil {
				return 0, err
			}
		} else if hasStep {
			hi = b.max
		}
	}
	if lo > hi {
		return 0, fmt.Errorf("range %d-%d is backwards", lo, hi)
	}
	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << uint(v)
	}
	return bits | extra, nil
}

func value(s string, b bounds) (int, error) {
	if n, ok := b.names[strings.ToLower(s)]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("bad value %q", s)
	}
	if n < b.min || n > b.max {
		return 0, fmt.Errorf("value %d out of range [%d, %d]", n, b.min, b.max)
	}
	return n, nil
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

// dayMatches applies cron's day rule: when both day fields are restricted,
// either may match; otherwise both must.
func (s *spec) dayMatches(t time.Time) bool {
	dom, dow := has(s.dom, t.Day()), has(s.dow, int(t.Weekday()))
	if s.dom&starBit != 0 || s.dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

func (s *spec) next(t time.Time) time.Time {
	orig := t.Location()
	if s.loc != nil {
		t = t.In(s.loc)
	}
	t = t.Add(time.Second - time.Duration(t.Nanosecond())).Truncate(time.Second)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if !has(s.month, int(t.Month())) {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, t.Location())
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
			continue
		}
		if !has(s.hour, t.Hour()) {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, t.Location())
			continue
		}
		if !has(s.min, t.Minute()) {
			t = t.Truncate(time.Minute).Add(time.Minute)
			continue
		}
		if !has(s.sec, t.Second()) {
			t = t.Add(time.Second)
			continue
		}
		return t.In(orig)
	}
	return time.Time{} // never (e.g. 30 February)
}
