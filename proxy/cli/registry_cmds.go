package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/outrigger/outrigger/proxy/hostreg"
)

// listRow is one line of `outrigger list` (JSON names as `dapr list -o json`).
type listRow struct {
	AppID       string `json:"appId"`
	HTTPPort    int    `json:"httpPort"`
	GRPCPort    int    `json:"grpcPort"`
	AppPort     int    `json:"appPort"`
	MetricsPort int    `json:"metricsEnabled,omitempty"`
	Command     string `json:"command"`
	Age         string `json:"age"`
	Created     string `json:"created"`
	PID         int    `json:"daprdPid"`
	CLIPID      int    `json:"cliPid,omitempty"`
	AppPID      int    `json:"appPid,omitempty"`
	AdminPort   int    `json:"adminPort,omitempty"`
	GossipAddr  string `json:"gossipAddr,omitempty"`
}

// sidecarMetadata fills in what only the sidecar knows (the dapr CLI's
// PUTs): appCommand, appPID, cliPID. Best effort, short timeout.
func sidecarMetadata(ctx context.Context, e *hostreg.Entry) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/v1.0/metadata", e.HTTPPort), nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var md struct {
		Extended map[string]string `json:"extended"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&md) != nil {
		return
	}
	// The app's command says more than the sidecar's own command line.
	if v := md.Extended["appCommand"]; v != "" {
		e.Command = v
	}
	if n, err := strconv.Atoi(md.Extended["appPID"]); err == nil && e.AppPID == 0 {
		e.AppPID = n
	}
	if n, err := strconv.Atoi(md.Extended["cliPID"]); err == nil && e.CLIPID == 0 {
		e.CLIPID = n
	}
}

func liveEntries(ctx context.Context) ([]hostreg.Entry, error) {
	all, err := hostreg.List()
	if err != nil {
		return nil, err
	}
	for i := range all {
		sidecarMetadata(ctx, &all[i])
	}
	return all, nil
}

func newListCmd(s *streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the sidecars running on this host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "table" && output != "json" && output != "yaml" {
				return fmt.Errorf("unknown output format %q (want table, json or yaml)", output)
			}
			entries, err := liveEntries(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([]listRow, 0, len(entries))
			for _, e := range entries {
				rows = append(rows, listRow{
					AppID: e.AppID, HTTPPort: e.HTTPPort, GRPCPort: e.GRPCPort, AppPort: e.AppPort,
					MetricsPort: e.MetricsPort, Command: e.Command, Age: age(time.Since(e.Started)),
					Created: e.Started.Format(time.RFC3339), PID: e.PID, CLIPID: e.CLIPID, AppPID: e.AppPID,
					AdminPort: e.AdminPort, GossipAddr: e.GossipAddr,
				})
			}
			switch output {
			case "json":
				enc := json.NewEncoder(s.out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			case "yaml":
				b, err := yaml.Marshal(rows)
				if err != nil {
					return err
				}
				_, err = s.out.Write(b)
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintln(s.out, "No Outrigger sidecars found.")
				return nil
			}
			tw := tabwriter.NewWriter(s.out, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "APP ID\tHTTP PORT\tGRPC PORT\tAPP PORT\tPID\tAGE\tCOMMAND")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.AppID, r.HTTPPort, r.GRPCPort, r.AppPort, r.PID, r.Age, r.Command)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: table, json or yaml")
	return cmd
}

// age renders a duration the way `dapr list` does: 5s, 3m, 2h, 4d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func newStopCmd(s *streams) *cobra.Command {
	var appIDs []string
	cmd := &cobra.Command{
		Use:   "stop --app-id <id>",
		Short: "Stop a running app and its sidecar (the `outrigger run` process, or the sidecar)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(appIDs) == 0 {
				return errors.New("give --app-id")
			}
			entries, err := liveEntries(cmd.Context())
			if err != nil {
				return err
			}
			var errs []error
			for _, id := range appIDs {
				found := false
				for _, e := range entries {
					if e.AppID != id {
						continue
					}
					found = true
					pid := e.PID
					if e.CLIPID > 0 && e.CLIPID != os.Getpid() && hostreg.Alive(e.CLIPID) {
						pid = e.CLIPID
					}
					if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
						errs = append(errs, fmt.Errorf("stop %s (pid %d): %w", id, pid, err))
						continue
					}
					fmt.Fprintf(s.out, "app stopped successfully: %s\n", id)
				}
				if !found {
					errs = append(errs, fmt.Errorf("%w with app id %q on this host", hostreg.ErrNotFound, id))
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringSliceVarP(&appIDs, "app-id", "a", nil, "app id to stop (repeatable)")
	return cmd
}

// payload reads --data or --data-file.
func payload(data, file string) ([]byte, error) {
	if data != "" && file != "" {
		return nil, errors.New("give --data or --data-file, not both")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read --data-file: %w", err)
		}
		return b, nil
	}
	if data == "" {
		return nil, nil
	}
	return []byte(data), nil
}

func doRequest(ctx context.Context, method, url string, body []byte, contentType string) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if tok := os.Getenv("DAPR_API_TOKEN"); tok != "" {
		req.Header.Set("dapr-api-token", tok)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func contentTypeOf(body []byte) string {
	if json.Valid(body) {
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}

func newInvokeCmd(s *streams) *cobra.Command {
	var appID, method, verb, data, dataFile string
	cmd := &cobra.Command{
		Use:   "invoke --app-id <id> --method <method>",
		Short: "Invoke a method of an app through a local sidecar",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if appID == "" || method == "" {
				return errors.New("give --app-id and --method")
			}
			body, err := payload(data, dataFile)
			if err != nil {
				return err
			}
			// Any local sidecar routes the call; prefer the app's own.
			e, err := hostreg.Find(appID)
			if err != nil {
				all, lerr := hostreg.List()
				if lerr != nil || len(all) == 0 {
					return fmt.Errorf("no Outrigger sidecar runs on this host (start one with `outrigger run`)")
				}
				e = all[len(all)-1]
			}
			u := fmt.Sprintf("http://127.0.0.1:%d/v1.0/invoke/%s/method/%s", e.HTTPPort, url.PathEscape(appID), strings.TrimPrefix(method, "/"))
			status, resp, err := doRequest(cmd.Context(), strings.ToUpper(verb), u, body, contentTypeOf(body))
			if err != nil {
				return fmt.Errorf("invoke %s/%s: %w", appID, method, err)
			}
			if len(resp) > 0 {
				s.out.Write(resp)
				if resp[len(resp)-1] != '\n' {
					fmt.Fprintln(s.out)
				}
			}
			if status/100 != 2 {
				return fmt.Errorf("invoke %s/%s: HTTP %d", appID, method, status)
			}
			fmt.Fprintln(s.errOut, "App invoked successfully")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&appID, "app-id", "a", "", "the app to invoke")
	f.StringVarP(&method, "method", "m", "", "the method to invoke")
	f.StringVarP(&verb, "verb", "v", "POST", "HTTP verb")
	f.StringVarP(&data, "data", "d", "", "request body")
	f.StringVarP(&dataFile, "data-file", "f", "", "file holding the request body")
	return cmd
}

func newPublishCmd(s *streams) *cobra.Command {
	var appID, pubsub, topic, data, dataFile, metadata string
	cmd := &cobra.Command{
		Use:   "publish --publish-app-id <id> --pubsub <name> --topic <topic>",
		Short: "Publish an event through an app's sidecar",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if appID == "" || pubsub == "" || topic == "" {
				return errors.New("give --publish-app-id, --pubsub and --topic")
			}
			body, err := payload(data, dataFile)
			if err != nil {
				return err
			}
			q := url.Values{}
			if metadata != "" {
				var md map[string]any
				if err := json.Unmarshal([]byte(metadata), &md); err != nil {
					return fmt.Errorf("--metadata must be a JSON object: %w", err)
				}
				for k, v := range md {
					q.Set("metadata."+k, fmt.Sprint(v))
				}
			}
			e, err := hostreg.Find(appID)
			if err != nil {
				return fmt.Errorf("%w (is it running? see `outrigger list`)", err)
			}
			u := fmt.Sprintf("http://127.0.0.1:%d/v1.0/publish/%s/%s", e.HTTPPort, url.PathEscape(pubsub), url.PathEscape(topic))
			if len(q) > 0 {
				u += "?" + q.Encode()
			}
			ct := "application/json"
			if body != nil {
				ct = contentTypeOf(body)
				if ct == "application/json" && strings.Contains(string(body), `"specversion"`) {
					ct = "application/cloudevents+json"
				}
			}
			status, resp, err := doRequest(cmd.Context(), http.MethodPost, u, body, ct)
			if err != nil {
				return fmt.Errorf("publish to %s/%s: %w", pubsub, topic, err)
			}
			if status/100 != 2 {
				return fmt.Errorf("publish to %s/%s: HTTP %d: %s", pubsub, topic, status, strings.TrimSpace(string(resp)))
			}
			fmt.Fprintln(s.out, "Event published successfully")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&appID, "publish-app-id", "i", "", "the app whose sidecar publishes")
	f.StringVarP(&pubsub, "pubsub", "p", "", "the pub/sub component")
	f.StringVarP(&topic, "topic", "t", "", "the topic")
	f.StringVarP(&data, "data", "d", "", "event body (JSON)")
	f.StringVarP(&dataFile, "data-file", "f", "", "file holding the event body")
	f.StringVarP(&metadata, "metadata", "m", "", `metadata as a JSON object, e.g. '{"ttlInSeconds":"10"}'`)
	return cmd
}
