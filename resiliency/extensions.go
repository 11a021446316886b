package resiliency

import (
	"fmt"
	"strconv"

	"github.com/outrigger/outrigger/proxy/resources"
)

// extSpec holds the Outrigger extensions of a Resiliency spec, the fields
// Dapr v1.14 does not have (see doc.go for the YAML):
//
//	spec.policies.retries.<name>.matching.{httpStatusCodes,gRPCStatusCodes}
//	spec.policies.retries.<name>.budget.{percent,minRetriesPerSecond}
//	spec.policies.outlierDetections.<name>.{consecutiveFailures,baseEjectionTime,maxEjectionTime,maxEjectionPercent}
//	spec.targets.apps.<id>.outlierDetection
//
// proxy/resources loads them into its typed fields (Retry.Matching,
// Retry.Budget, Policies.OutlierDetections,
// EndpointPolicyNames.OutlierDetection); extReader gathers them here, in the
// shape the compiler reads.
type extSpec struct {
	Policies struct {
		Retries           map[string]extRetry
		OutlierDetections map[string]extOutlier
	}
	Targets struct {
		Apps map[string]extApp
	}
}

// extRetry are a retry policy's extensions (the tags match the compiler's
// parameter types).
type extRetry struct {
	Matching *struct {
		HTTPStatusCodes text `json:"httpStatusCodes"`
		GRPCStatusCodes text `json:"gRPCStatusCodes"`
	}
	Budget *struct {
		Percent             *float64 `json:"percent"`
		MinRetriesPerSecond *float64 `json:"minRetriesPerSecond"`
	}
}

type extOutlier struct {
	ConsecutiveFailures *int
	BaseEjectionTime    text
	MaxEjectionTime     text
	MaxEjectionPercent  *float64
}

type extApp struct {
	OutlierDetection string
}

// text is a scalar as written in the manifest: "503" and 503, "30s" and 30
// (proxy/resources keeps a number as its text).
type text string

// extReader gathers the extension fields of Resiliency manifests from the
// typed fields proxy/resources loaded.
type extReader struct{}

// read returns r's extension fields; it does not fail (the error is kept
// for the compiler's loop, which reports one per manifest).
func (extReader) read(r resources.Resiliency) (*extSpec, error) {
	x := &extSpec{}
	for name, rt := range r.Policies.Retries {
		if rt.Matching == nil && rt.Budget == nil {
			continue
		}
		var e extRetry
		if m := rt.Matching; m != nil {
			e.Matching = &struct {
				HTTPStatusCodes text `json:"httpStatusCodes"`
				GRPCStatusCodes text `json:"gRPCStatusCodes"`
			}{text(m.HTTPStatusCodes), text(m.GRPCStatusCodes)}
		}
		if b := rt.Budget; b != nil {
			e.Budget = &struct {
				Percent             *float64 `json:"percent"`
				MinRetriesPerSecond *float64 `json:"minRetriesPerSecond"`
			}{b.Percent, b.MinRetriesPerSecond}
		}
		if x.Policies.Retries == nil {
			x.Policies.Retries = map[string]extRetry{}
		}
		x.Policies.Retries[name] = e
	}
	for name, od := range r.Policies.OutlierDetections {
		if x.Policies.OutlierDetections == nil {
			x.Policies.OutlierDetections = map[string]extOutlier{}
		}
		x.Policies.OutlierDetections[name] = extOutlier{ConsecutiveFailures: od.ConsecutiveFailures,
			BaseEjectionTime: text(od.BaseEjectionTime), MaxEjectionTime: text(od.MaxEjectionTime),
			MaxEjectionPercent: od.MaxEjectionPercent}
	}
	for id, a := range r.Targets.Apps {
		if a.OutlierDetection == "" {
			continue
		}
		if x.Targets.Apps == nil {
			x.Targets.Apps = map[string]extApp{}
		}
		x.Targets.Apps[id] = extApp{OutlierDetection: a.OutlierDetection}
	}
	return x, nil
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
