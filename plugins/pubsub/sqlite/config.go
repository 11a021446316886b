package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
)

const (
	defaultTablePrefix       = "pubsub_"
	defaultVisibilityTimeout = 30 * time.Second
	defaultRetentionPeriod   = 24 * time.Hour
	defaultTimeout           = 20 * time.Second
	defaultBusyTimeout       = 5 * time.Second
	defaultMaxInFlight       = 128
	offsetOldest             = "oldest"
	offsetNewest             = "newest"
)

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// config is the parsed component metadata.
type config struct {
	connectionString  string
	tablePrefix       string
	consumerID        string
	visibilityTimeout time.Duration
	retentionPeriod   time.Duration
	initialOffset     string
	maxInFlight       int
	timeout           time.Duration
	busyTimeout       time.Duration
	disableWAL        bool
}

func parseConfig(md sdk.Metadata) (config, error) {
	get := func(names ...string) string {
		for _, n := range names {
			for k, v := range md {
				if strings.EqualFold(k, n) {
					return strings.TrimSpace(v)
				}
			}
		}
		return ""
	}
	c := config{
		connectionString: get("connectionString"),
		tablePrefix:      get("tablePrefix"),
		consumerID:       get(sdk.ConsumerIDKey),
		initialOffset:    strings.ToLower(get("initialOffset")),
	}
	if c.connectionString == "" {
		return c, errors.New(`metadata "connectionString" is required (a file path, a "file:" URI or ":memory:")`)
	}
	if c.consumerID == "" {
		return c, errors.New(`metadata "consumerID" is required (the host sets it to the app id)`)
	}
	if c.tablePrefix == "" {
		c.tablePrefix = defaultTablePrefix
	}
	if !identifier.MatchString(c.tablePrefix + "x") {
		return c, fmt.Errorf("tablePrefix %q: use letters, digits and underscores only", c.tablePrefix)
	}
	switch c.initialOffset {
	case "":
		c.initialOffset = offsetOldest
	case offsetOldest, offsetNewest:
	default:
		return c, fmt.Errorf(`metadata "initialOffset"=%q: want "oldest" or "newest"`, c.initialOffset)
	}
	var err error
	durations := []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{
		{"visibilityTimeout", &c.visibilityTimeout, defaultVisibilityTimeout},
		{"retentionPeriod", &c.retentionPeriod, defaultRetentionPeriod},
		{"timeout", &c.timeout, defaultTimeout},
		{"busyTimeout", &c.busyTimeout, defaultBusyTimeout},
	}
	for _, d := range durations {
		if *d.dst, err = parseDuration(d.name, get(d.name), d.def); err != nil {
			return c, err
		}
		if *d.dst <= 0 {
			return c, fmt.Errorf("metadata %q must be positive", d.name)
		}
	}
	c.maxInFlight = defaultMaxInFlight
	if v := get("maxInFlight"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > sdk.MaxInFlightPerStream {
			return c, fmt.Errorf(`metadata "maxInFlight"=%q: want a whole number from 1 to %d`, v, sdk.MaxInFlightPerStream)
		}
		c.maxInFlight = n
	}
	if v := get("disableWAL"); v != "" {
		if c.disableWAL, err = strconv.ParseBool(v); err != nil {
			return c, fmt.Errorf(`metadata "disableWAL"=%q: not a boolean`, v)
		}
	}
	return c, nil
}

// parseDuration accepts Go durations ("20s", "1h") or whole seconds ("20").
func parseDuration(name, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("metadata %q=%q: want a duration like 30s or a number of seconds", name, v)
	}
	return d, nil
}

func (c config) inMemory() bool {
	return c.connectionString == ":memory:" || strings.Contains(c.connectionString, "mode=memory") ||
		strings.HasPrefix(c.connectionString, "file::memory:")
}

// dsn adds the driver parameters: busy timeout, BEGIN IMMEDIATE for
// transactions, WAL journal.
func (c config) dsn() string {
	params := []string{
		"_txlock=immediate",
		"_pragma=busy_timeout(" + strconv.FormatInt(c.busyTimeout.Milliseconds(), 10) + ")",
	}
	if !c.disableWAL && !c.inMemory() {
		params = append(params, "_pragma=journal_mode(WAL)", "_pragma=synchronous(NORMAL)")
	}
	sep := "?"
	if strings.Contains(c.connectionString, "?") {
		sep = "&"
	}
	return c.connectionString + sep + strings.Join(params, "&")
}
