package host

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter is go-plugin's hclog.Logger writing into slog. go-plugin
// logs its own events through it and the plugin's stderr lines (under a
// sub-logger named after the binary).
type hclogAdapter struct {
	log  *slog.Logger
	name string
	args []any
}

func newHCLog(l *slog.Logger) hclog.Logger { return &hclogAdapter{log: l} }

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	lvl := slogLevel(level)
	// Plain-text plugin stderr lines arrive at Debug; a slog text or JSON
	// line (what the SDK writes) carries its own level: honour it.
	if level == hclog.Debug {
		lvl = sniffLevel(msg, lvl)
	}
	ctx := context.Background()
	if !a.log.Enabled(ctx, lvl) {
		return
	}
	all := make([]any, 0, len(a.args)+len(args)+2)
	if a.name != "" {
		all = append(all, "plugin", a.name)
	}
	all = append(all, a.args...)
	all = append(all, args...)
	a.log.Log(ctx, lvl, strings.TrimSpace(msg), all...)
}

// sniffLevel finds a "level=INFO" (slog text) or "\"level\":\"INFO\"" (slog
// JSON) marker in a raw line.
func sniffLevel(line string, def slog.Level) slog.Level {
	for _, l := range []slog.Level{slog.LevelError, slog.LevelWarn, slog.LevelInfo, slog.LevelDebug} {
		s := l.String()
		if strings.Contains(line, "level="+s+" ") || strings.Contains(line, `"level":"`+s+`"`) {
			return l
		}
	}
	return def
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) IsTrace() bool { return false }
func (a *hclogAdapter) IsDebug() bool { return a.log.Enabled(context.Background(), slog.LevelDebug) }
func (a *hclogAdapter) IsInfo() bool  { return a.log.Enabled(context.Background(), slog.LevelInfo) }
func (a *hclogAdapter) IsWarn() bool  { return a.log.Enabled(context.Background(), slog.LevelWarn) }
func (a *hclogAdapter) IsError() bool { return a.log.Enabled(context.Background(), slog.LevelError) }

func (a *hclogAdapter) ImpliedArgs() []any { return a.args }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	c := *a
	c.args = append(append([]any{}, a.args...), args...)
	return &c
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

// SetLevel is a no-op: the slog handler decides.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

// GetLevel reports Debug so that go-plugin hands every plugin line over;
// Log filters by the slog handler's level.
func (a *hclogAdapter) GetLevel() hclog.Level { return hclog.Debug }

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &lineWriter{emit: func(line string) { a.Info(line) }}
}

// lineWriter calls emit once per complete line written to it (a partial
// last line is kept until its newline arrives). It forwards a plugin's
// stdout/stderr into slog.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	emit func(line string)
}

const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			if w.buf.Len() > maxLine {
				w.emit(w.buf.String())
				w.buf.Reset()
			}
			return len(p), nil
		}
		line := string(bytes.TrimRight(w.buf.Next(i+1), "\r\n"))
		if line != "" {
			w.emit(line)
		}
	}
}

// pluginOutput returns a writer that logs each line at level, tagged with
// the plugin and stream name.
func pluginOutput(l *slog.Logger, plugin, stream string, level slog.Level) io.Writer {
	return &lineWriter{emit: func(line string) {
		l.Log(context.Background(), sniffLevel(line, level), line, "plugin", plugin, "stream", stream)
	}}
}
