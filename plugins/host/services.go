package host

import (
	"slices"
	"strings"
)

// ServiceType maps a gRPC service a plugin serves to the component category
// it provides. Init, Ping and (when HasFeatures) Features are called on it
// with the common dapr.proto.components.v1 message shapes (every component
// service's Init request carries MetadataRequest as field 1).
type ServiceType struct {
	Service     string // fully qualified, e.g. "dapr.proto.components.v1.StateStore"
	Category    string // e.g. "state"
	HasFeatures bool
}

const daprComponents = "dapr.proto.components.v1."

// daprServiceTypes is Dapr's discovery table (compat reference §4.1).
func daprServiceTypes() []ServiceType {
	return []ServiceType{
		{Service: daprComponents + "StateStore", Category: "state", HasFeatures: true},
		{Service: daprComponents + "PubSub", Category: "pubsub", HasFeatures: true},
		{Service: daprComponents + "InputBinding", Category: "bindings"},
		{Service: daprComponents + "OutputBinding", Category: "bindings"},
		{Service: daprComponents + "SecretStore", Category: "secretstores", HasFeatures: true},
	}
}

// serviceTable answers "which category does this service provide" and
// "which services provide this category".
type serviceTable []ServiceType

func (t serviceTable) byService(name string) (ServiceType, bool) {
	for _, s := range t {
		if s.Service == name {
			return s, true
		}
	}
	return ServiceType{}, false
}

// forCategory returns the services of category among served (all of them
// when served is nil).
func (t serviceTable) forCategory(category string, served []string) []ServiceType {
	var out []ServiceType
	for _, s := range t {
		if s.Category != category {
			continue
		}
		if served == nil || slices.Contains(served, s.Service) {
			out = append(out, s)
		}
	}
	return out
}

// categories returns the categories served lists, deduplicated, in table
// order.
func (t serviceTable) categories(served []string) []string {
	var out []string
	for _, s := range t {
		if slices.Contains(served, s.Service) && !slices.Contains(out, s.Category) {
			out = append(out, s.Category)
		}
	}
	return out
}

// method builds a full gRPC method name: "/<service>/<name>".
func method(service, name string) string { return "/" + service + "/" + name }

// splitType splits "state.redis" into ("state", "redis").
func splitType(t string) (category, impl string, ok bool) {
	category, impl, ok = strings.Cut(t, ".")
	return category, impl, ok && category != "" && impl != ""
}
