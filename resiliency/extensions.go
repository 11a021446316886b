package resiliency

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/outrigger/outrigger/proxy/resources"
)

// extSpec holds the Outrigger extensions of a Resiliency spec, the fields
// Dapr v1.14 does not have (see doc.go for the YAML):
//
//	spec.policies.retries.<name>.matching.{httpStatusCodes,gRPCStatusCodes}
//	spec.policies.retries.<name>.budget.{percent,minRetriesPerSecond}
//	spec.policies.outlierDetections.<name>.{consecutiveFailures,baseEjectionTime,maxEjectionTime,maxEjectionPercent}
//	spec.targets.apps.<id>.outlierDetection
type extSpec struct {
	Policies struct {
		Retries map[string]struct {
			Matching *struct {
				HTTPStatusCodes text `json:"httpStatusCodes"`
				GRPCStatusCodes text `json:"gRPCStatusCodes"`
			} `json:"matching"`
			Budget *struct {
				Percent             *float64 `json:"percent"`
				MinRetriesPerSecond *float64 `json:"minRetriesPerSecond"`
			} `json:"budget"`
		} `json:"retries"`
		OutlierDetections map[string]struct {
			ConsecutiveFailures *int     `json:"consecutiveFailures"`
			BaseEjectionTime    text     `json:"baseEjectionTime"`
			MaxEjectionTime     text     `json:"maxEjectionTime"`
			MaxEjectionPercent  *float64 `json:"maxEjectionPercent"`
		} `json:"outlierDetections"`
	} `json:"policies"`
	Targets struct {
		Apps map[string]struct {
			OutlierDetection string `json:"outlierDetection"`
		} `json:"apps"`
	} `json:"targets"`
}

// text is a scalar read as its text: "503" and 503, "30s" and 30 are both
// accepted, as Dapr accepts numbers where it expects durations.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = text(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %s", b)
	}
	*t = text(n.String())
	return nil
}

// extReader reads the extension fields of Resiliency manifests from their
// files. proxy/resources keeps only Dapr's fields, so the extensions are
// read from the manifest's own document (found by file, line and name);
// each file is parsed once per Build.
type extReader struct {
	docs map[string][]*yaml.Node // file → document roots
}

func (x *extReader) read(r resources.Resiliency) (*extSpec, error) {
	if r.File == "" {
		return &extSpec{}, nil // built in memory: no extensions
	}
	if x.docs == nil {
		x.docs = map[string][]*yaml.Node{}
	}
	roots, ok := x.docs[r.File]
	if !ok {
		var err error
		if roots, err = parseDocs(r.File); err != nil {
			return nil, err
		}
		x.docs[r.File] = roots
	}
	for _, root := range roots {
		if r.Line > 0 && root.Line != r.Line {
			continue
		}
		var doc struct {
			Kind     string         `yaml:"kind"`
			Metadata map[string]any `yaml:"metadata"`
			Spec     any            `yaml:"spec"`
		}
		if err := root.Decode(&doc); err != nil {
			continue // not a manifest we can read; resources reported it
		}
		if doc.Kind != "Resiliency" || fmt.Sprint(doc.Metadata["name"]) != r.Name {
			continue
		}
		js, err := json.Marshal(doc.Spec)
		if err != nil {
			return nil, fmt.Errorf("%s: spec: %w", location(r), err)
		}
		var ext extSpec
		if err := json.Unmarshal(js, &ext); err != nil {
			return nil, fmt.Errorf("%s: Outrigger extension fields: %w", location(r), err)
		}
		return &ext, nil
	}
	return nil, fmt.Errorf("%s: Resiliency %q no longer in the file (changed while loading?)", location(r), r.Name)
}

func parseDocs(file string) ([]*yaml.Node, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s for Outrigger extension fields: %w", file, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var roots []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return roots, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: invalid YAML: %w", file, err)
		}
		if len(n.Content) > 0 && n.Content[0].Kind == yaml.MappingNode {
			roots = append(roots, n.Content[0])
		}
	}
}

// location is "file:line" of a manifest, or its name when it has no file.
func location(r resources.Resiliency) string {
	switch {
	case r.File == "":
		return fmt.Sprintf("Resiliency %q", r.Name)
	case r.Line > 0:
		return r.File + ":" + strconv.Itoa(r.Line)
	}
	return r.File
}
