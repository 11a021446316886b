package launch

import (
	"bytes"
	"io"
	"sync"
)

// Console serialises whole lines from many processes onto one writer, so
// lines of different processes never interleave mid-line.
type Console struct {
	mu sync.Mutex
	w  io.Writer
}

// NewConsole returns a Console writing to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

func (c *Console) writeLine(prefix string, line []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(buf, prefix...)
	buf = append(buf, line...)
	buf = append(buf, '\n')
	_, _ = c.w.Write(buf)
}

// LineWriter is an io.Writer that splits what a process writes into lines,
// writes each line with its prefix to a Console (if any) and the raw line to
// a file (if any). Call Flush after the process ended to emit a final line
// that had no newline.
type LineWriter struct {
	console *Console
	prefix  string
	file    io.Writer

	mu      sync.Mutex
	partial []byte
}

// NewLineWriter returns a LineWriter; console and file may each be nil.
func NewLineWriter(console *Console, prefix string, file io.Writer) *LineWriter {
	return &LineWriter{console: console, prefix: prefix, file: file}
}

// Write implements io.Writer. It never fails: output of a child must not
// break because the console or log file went away.
func (l *LineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			// Bound memory for output that never ends a line.
			if len(l.partial) >= 64<<10 {
				l.emit(l.partial)
				l.partial = l.partial[:0]
			}
			break
		}
		line := p[:i]
		if len(l.partial) > 0 {
			line = append(l.partial, line...)
		}
		l.emit(line)
		l.partial = l.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Flush writes a pending partial line, if any.
func (l *LineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.emit(l.partial)
		l.partial = l.partial[:0]
	}
}

func (l *LineWriter) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if l.console != nil {
		l.console.writeLine(l.prefix, line)
	}
	if l.file != nil {
		_, _ = l.file.Write(append(append([]byte(nil), line...), '\n'))
	}
}
