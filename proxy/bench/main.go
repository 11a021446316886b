package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	os.Exit(mainExit(os.Args[1:], os.Stdout, os.Stderr))
}

// mainExit runs the bench (or a hidden child role) and returns the process exit code:
// 0 success, 1 failure or failed requests (or a missed goal with -strict), 2 bad flags.
func mainExit(args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if len(args) > 0 && isChildRole(args[0]) {
		if err := runChild(args[0], args[1:], log); err != nil {
			fmt.Fprintln(stderr, "bench child:", err)
			return 1
		}
		return 0
	}
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		if !errors.As(err, new(usageError)) {
			fmt.Fprintln(stderr, "bench:", err)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, rep); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	code := 0
	for _, s := range rep.Scenarios {
		if s.Errors > 0 {
			fmt.Fprintf(stderr, "bench: %s had %d failed requests\n", s.Name, s.Errors)
			code = 1
		}
	}
	for _, s := range rep.Suites {
		for _, r := range s.Rows {
			if r.Errors > 0 {
				fmt.Fprintf(stderr, "bench: %s %s had %d failed operations\n", s.Name, r.Name, r.Errors)
				code = 1
			}
		}
	}
	if missed := rep.missed(); len(missed) > 0 && o.strict {
		fmt.Fprintf(stderr, "bench: goals missed (-strict): %s\n", strings.Join(missed, ", "))
		code = 1
	}
	return code
}
