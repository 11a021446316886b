package discovery

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// memberlistLogger adapts memberlist's *log.Logger output to slog. Every line
// goes out at debug level (memberlist is chatty: every failed probe, every
// push/pull); its own level tag ("[WARN]", "[ERR]"…) is kept as an attribute.
// What matters to an operator (joins, departures, join failures) is logged
// by discovery itself at info or warn.
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l: l}, "", 0)
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	if !w.l.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	msg := strings.TrimSpace(string(p))
	level := ""
	if strings.HasPrefix(msg, "[") {
		if i := strings.IndexByte(msg, ']'); i > 0 {
			level, msg = msg[1:i], strings.TrimSpace(msg[i+1:])
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	w.l.Debug("memberlist: "+msg, "memberlist_level", level)
	return len(p), nil
}
