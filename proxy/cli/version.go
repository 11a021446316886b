package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildInfo is what `outrigger version` reports.
type buildInfo struct {
	Version   string `json:"version"`
	GitCommit string `json:"gitCommit"`
	GitDirty  bool   `json:"gitDirty,omitempty"`
	GitTime   string `json:"gitTime,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func readBuildInfo() buildInfo {
	bi := buildInfo{Version: "(devel)", GitCommit: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	if v := info.Main.Version; v != "" {
		bi.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			bi.GitCommit = s.Value
		case "vcs.modified":
			bi.GitDirty = s.Value == "true"
		case "vcs.time":
			bi.GitTime = s.Value
		}
	}
	return bi
}

func newVersionCmd(s *streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the Outrigger version, git commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			bi := readBuildInfo()
			switch output {
			case "json":
				enc := json.NewEncoder(s.out)
				enc.SetIndent("", "  ")
				return enc.Encode(bi)
			case "", "text":
				commit := bi.GitCommit
				if bi.GitDirty {
					commit += " (modified)"
				}
				fmt.Fprintf(s.out, "Outrigger version: %s\nGit commit: %s\nGo version: %s\nPlatform: %s\n", bi.Version, commit, bi.GoVersion, bi.Platform)
				return nil
			default:
				return fmt.Errorf("unknown output format %q (want text or json)", output)
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: text or json")
	return cmd
}
