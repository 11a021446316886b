package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Goals (docs: the brief for `make bench`): the two-hop path through Outrigger against the same
// path through a minimal reverse-proxy pair, and the sidecar's footprint.
const (
	goalLatencyRatio    = 1.5  // p50 and p99: Outrigger ≤ 1.5× the proxy pair
	goalThroughputRatio = 0.67 // requests/s: Outrigger ≥ 0.67× the proxy pair
	goalIdleRSS         = 25 << 20
	goalStartup         = 100 * time.Millisecond
)

func (r *report) scenario(prefix string) *scenarioResult {
	for i := range r.Scenarios {
		if strings.HasPrefix(r.Scenarios[i].Name, prefix) {
			return &r.Scenarios[i]
		}
	}
	return nil
}

// computeGoals fills Ratios and Goals from the measured scenarios.
func (r *report) computeGoals() {
	met := func(ok bool) *bool { return &ok }
	var errs uint64
	for _, s := range r.Scenarios {
		errs += s.Errors
	}
	r.Goals = []goal{{Name: "errors (all scenarios)", Value: fmt.Sprint(errs), Target: "0", Met: met(errs == 0)}}

	out, base := r.scenario("3 "), r.scenario("4 ")
	if out != nil && base != nil && base.P50 > 0 && base.P99 > 0 && base.RPS > 0 {
		r.Ratios = &ratios{
			P50:        float64(out.P50) / float64(base.P50),
			P99:        float64(out.P99) / float64(base.P99),
			Throughput: out.RPS / base.RPS,
		}
		if base.ProxyCPU1k > 0 {
			r.Ratios.CPUPerReq = out.ProxyCPU1k / base.ProxyCPU1k
		}
		x := r.Ratios
		r.Goals = append(r.Goals,
			goal{Name: "two-hop p50 vs proxy pair", Value: ratio(x.P50), Target: "≤ " + ratio(goalLatencyRatio), Met: met(x.P50 <= goalLatencyRatio)},
			goal{Name: "two-hop p99 vs proxy pair", Value: ratio(x.P99), Target: "≤ " + ratio(goalLatencyRatio), Met: met(x.P99 <= goalLatencyRatio)},
			goal{Name: "two-hop throughput vs proxy pair", Value: ratio(x.Throughput), Target: "≥ " + ratio(goalThroughputRatio), Met: met(x.Throughput >= goalThroughputRatio)},
			goal{Name: "two-hop proxy CPU/request vs proxy pair", Value: ratio(x.CPUPerReq), Target: "(no goal)"},
		)
	} else {
		for _, n := range []string{"two-hop p50 vs proxy pair", "two-hop p99 vs proxy pair", "two-hop throughput vs proxy pair"} {
			r.Goals = append(r.Goals, goal{Name: n, Value: "not measured", Target: "see brief"})
		}
	}
	if st := r.Startup; st != nil {
		r.Goals = append(r.Goals,
			goal{Name: "sidecar idle RSS", Value: fmt.Sprintf("%.1f MiB", float64(st.IdleRSS)/(1<<20)), Target: "< 25 MiB", Met: met(st.IdleRSS < goalIdleRSS)},
			goal{Name: fmt.Sprintf("start → healthz/outbound 204 (median of %d)", len(st.Runs)),
				Value:  fmt.Sprintf("%s (min %s, max %s)", dur(st.Median), dur(st.Min), dur(st.Max)),
				Target: "< 100ms", Met: met(st.Median < goalStartup)},
		)
	} else {
		r.Goals = append(r.Goals,
			goal{Name: "sidecar idle RSS", Value: "not measured", Target: "< 25 MiB"},
			goal{Name: "start → healthz/outbound 204", Value: "not measured", Target: "< 100ms"})
	}
}

// missed lists the goals this run measured and missed.
func (r *report) missed() []string {
	var out []string
	for _, g := range r.Goals {
		if g.Met != nil && !*g.Met {
			out = append(out, g.Name)
		}
	}
	for _, s := range r.Suites {
		for _, g := range s.Goals {
			if g.Met != nil && !*g.Met {
				out = append(out, s.Name+": "+g.Name)
			}
		}
	}
	return out
}

func printReport(w io.Writer, r *report) {
	fmt.Fprintf(w, "\nOutrigger invocation benchmark: %d connections, %d-byte bodies echoed, %v warm-up + %v per scenario",
		r.Concurrency, r.BodyBytes, r.Warmup, r.Duration)
	if r.Rounds > 1 {
		fmt.Fprintf(w, " × %d interleaved rounds (pooled)", r.Rounds)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%d CPUs shared by load generator, proxies and apps; %s\n", r.NumCPU, r.GoVersion)
	if r.Skipped != "" {
		fmt.Fprintf(w, "NOTE: Outrigger scenarios SKIPPED (%s): only the baselines were measured.\n", r.Skipped)
	}
	fmt.Fprintln(w)

	rows := [][]string{{"scenario", "path", "req/s", "p50", "p99", "max", "errors", "proxy CPU-s/1k req"}}
	for _, s := range r.Scenarios {
		cpu := "-"
		if s.ProxyCPU1k > 0 {
			cpu = fmt.Sprintf("%.3f", s.ProxyCPU1k)
		}
		rows = append(rows, []string{s.Name, s.Path, fmt.Sprintf("%.0f", s.RPS), dur(s.P50), dur(s.P99), dur(s.Max), fmt.Sprint(s.Errors), cpu})
	}
	writeTable(w, rows, 2) // first two columns left-aligned, numbers right-aligned
	for _, s := range r.Scenarios {
		if len(s.ProxyCPUBy) > 1 {
			var parts []string
			for _, pc := range s.ProxyCPUBy {
				parts = append(parts, fmt.Sprintf("%s %.3f", pc.Process, pc.CPU1k))
			}
			fmt.Fprintf(w, "  %s CPU-s/1k req by process: %s\n", s.Name, strings.Join(parts, ", "))
		}
	}
	for _, s := range r.Scenarios {
		if s.Capped {
			fmt.Fprintf(w, "note: %s reached -max-requests; its window was cut short (%v)\n", s.Name, s.Window.Round(time.Millisecond))
		}
		if s.Errors > 0 || len(s.ErrSample) > 0 {
			fmt.Fprintf(w, "errors in %s (%d in window): %s\n", s.Name, s.Errors, strings.Join(s.ErrSample, "; "))
		}
	}

	fmt.Fprintln(w, "\nGoals (scenario 3 ÷ scenario 4 for the ratios):")
	printGoals(w, r.Goals)
}

// printGoals prints goals as aligned rows: name, measured value, target, verdict.
func printGoals(w io.Writer, goals []goal) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, g := range goals {
		verdict := "n/a"
		if g.Met != nil {
			verdict = map[bool]string{true: "ok", false: "MISSED"}[*g.Met]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", g.Name, g.Value, g.Target, verdict)
	}
	tw.Flush()
}

func writeJSON(path string, r *report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write -json %s: %w", path, err)
	}
	return nil
}

func ratio(x float64) string { return fmt.Sprintf("%.2f×", x) }

// dur formats a latency with about three significant digits.
func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// writeTable prints rows in columns two spaces apart: the first `left` columns left-aligned, the
// rest right-aligned. Widths count runes, so arrows and µ line up.
func writeTable(w io.Writer, rows [][]string, left int) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < left {
				b.WriteString(cell + pad)
			} else {
				b.WriteString(pad + cell)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
