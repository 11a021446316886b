package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/outrigger/outrigger/proxy/hostreg"
)

// statusPages are the admin pages `outrigger status` shows, in order.
var statusPages = []string{"members", "clusters", "breakers", "plugins", "components"}

// sidecarStatus is one sidecar in `outrigger status -o json`: its registry
// record and each admin page as the admin endpoint answered it.
type sidecarStatus struct {
	AppID     string                     `json:"appId"`
	PID       int                        `json:"pid"`
	AdminPort int                        `json:"adminPort"`
	Pages     map[string]json.RawMessage `json:"pages"`
	Errors    map[string]string          `json:"errors,omitempty"`
}

func newStatusCmd(s *streams) *cobra.Command {
	var appID, output string
	cmd := &cobra.Command{
		Use:   "status --app-id <id>",
		Short: "Show a sidecar's members, clusters, circuit breakers, plugins and components (its admin endpoint)",
		Long: `Show what a running sidecar's admin endpoint shows: gossip members, target
instances (outstanding requests, ejection), circuit breakers, plugin processes
and components. The sidecar is found in this host's registry by app id; every
sidecar with that app id is shown. -o json prints the pages as JSON (an array,
one object per sidecar).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if appID == "" {
				return errors.New("give --app-id")
			}
			if output != "" && output != "table" && output != "json" {
				return fmt.Errorf("unknown output format %q (want table or json)", output)
			}
			all, err := hostreg.List()
			if err != nil {
				return err
			}
			var entries []hostreg.Entry
			for _, e := range all {
				if e.AppID == appID {
					entries = append(entries, e)
				}
			}
			if len(entries) == 0 {
				return fmt.Errorf("%w with app id %q on this host (see `outrigger list`)", hostreg.ErrNotFound, appID)
			}
			if output == "json" {
				return statusJSON(cmd.Context(), s.out, entries)
			}
			return statusText(cmd.Context(), s.out, entries)
		},
	}
	cmd.Flags().StringVarP(&appID, "app-id", "a", "", "app id of the sidecar")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: table or json")
	return cmd
}

// noAdmin is the error for a sidecar that serves no admin endpoint.
func noAdmin(e hostreg.Entry) error {
	return fmt.Errorf("sidecar %s (pid %d) has no admin endpoint (started with --admin-port -1?)", e.AppID, e.PID)
}

func statusJSON(ctx context.Context, w io.Writer, entries []hostreg.Entry) error {
	out := make([]sidecarStatus, 0, len(entries))
	var errs []error
	for _, e := range entries {
		st := sidecarStatus{AppID: e.AppID, PID: e.PID, AdminPort: e.AdminPort, Pages: map[string]json.RawMessage{}}
		if e.AdminPort <= 0 {
			errs = append(errs, noAdmin(e))
			out = append(out, st)
			continue
		}
		for _, p := range statusPages {
			b, err := adminGet(ctx, e, p, false)
			if err == nil && !json.Valid(b) {
				err = fmt.Errorf("admin page /%s of %s (pid %d) is not JSON", p, e.AppID, e.PID)
			}
			if err != nil {
				if st.Errors == nil {
					st.Errors = map[string]string{}
				}
				st.Errors[p] = err.Error()
				errs = append(errs, err)
				continue
			}
			st.Pages[p] = b
		}
		out = append(out, st)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func statusText(ctx context.Context, w io.Writer, entries []hostreg.Entry) error {
	var errs []error
	for i, e := range entries {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Sidecar %s  pid %d  http %d  grpc %d  admin %d\n", e.AppID, e.PID, e.HTTPPort, e.GRPCPort, e.AdminPort)
		if e.AdminPort <= 0 {
			errs = append(errs, noAdmin(e))
			continue
		}
		for _, p := range statusPages {
			fmt.Fprintf(w, "\n%s\n", strings.ToUpper(p[:1])+p[1:])
			b, err := adminGet(ctx, e, p, true)
			if err != nil {
				fmt.Fprintf(w, "  error: %v\n", err)
				errs = append(errs, err)
				continue
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
	}
	return errors.Join(errs...)
}

// adminGet reads one admin page of the sidecar (JSON, or its text table).
func adminGet(ctx context.Context, e hostreg.Entry, page string, text bool) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://127.0.0.1:" + strconv.Itoa(e.AdminPort) + "/" + page
	if text {
		url += "?format=text"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint of %s (pid %d): %w", e.AppID, e.PID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read /%s of %s (pid %d): %w", page, e.AppID, e.PID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/%s of %s (pid %d) answered %s: %s", page, e.AppID, e.PID, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}
